"""Two versions of wafer_py side by side in one process: the per-request overhead of the
Starlette middleware validating a session, the version at ``--old`` (a git commit)
against the working tree, interleaved batch by batch.

    python -m bench.compare --old fb04a85 [--stores memory,sqlite] [--smoke]

On a shared virtual machine two runs made minutes apart differ by more than the few
microseconds a change to the hot path saves; measured in one interleaving, both
versions share the machine's noise. The old version is extracted with ``git archive``
and imported under another name (wafer_py uses relative imports only); both validate
the same sessions: one SQLite file, memory stores filled alike, one secret key.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import inspect
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import common
from bench.apps import BASE_HEADERS, make_auth, starlette_cookie, starlette_stack
from bench.overhead import _asgi_run, asgi_answer, asgi_scope, sizes
from wafer_py.asgi import WaferMiddleware
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.crypto import SecretBox

ROOT = Path(__file__).resolve().parent.parent
STORES = ("memory", "sqlite")


def load_old(ref: str, into: Path) -> ModuleType:
    """wafer_py as of git ``ref``, importable as ``wafer_py_old``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "wafer_py"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "wafer_py").rename(into / "wafer_py_old")
    sys.path.insert(0, str(into))
    return importlib.import_module("wafer_py_old")


def wafer_stack(middleware: Any, auth: Any) -> Any:
    """The benchmark's wafer app (as in :mod:`bench.apps`) with a given middleware."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def view(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"who": user.openid if user.is_authenticated else "anonymous"})

    return Starlette(
        routes=[Route("/w/hello", view)], middleware=[Middleware(middleware, auth=auth)]
    )


#: One app under measurement: the app, the scopes to send it, the openid it must answer.
App = tuple[Any, list[dict[str, Any]], str]


def build_apps(
    old_ref: str, stores: list[str], sessions: int, probes: int, tmp: Path
) -> tuple[dict[str, App], list[Any]]:
    """The bare app, the signed cookie and, for each store, wafer_py at ``old_ref`` and the
    working tree validating v2 sessions (stores to close in the second item)."""
    old = load_old(old_ref, tmp / "old")
    old_asgi = importlib.import_module("wafer_py_old.asgi")
    old_stores = importlib.import_module("wafer_py_old.stores")
    # The fake WeChat's app named explicitly (a version with the defaults hardening
    # takes it only so; an older one takes it either way).
    old_options: dict[str, Any] = {}
    if "session_cache" in {f.name for f in dataclasses.fields(old.WaferConfig)}:
        old_options["session_cache"] = 0  # as make_auth's: every check asks the store
    old_config = old.WaferConfig(
        appid=DEMO_APPID,
        app_secret=DEMO_APP_SECRET,
        secret_keys=(common.SECRET,),
        **old_options,
    )
    # Before skey hashes were scoped by AppID, the old auth knows only unscoped ones.
    old_box = common.BOX
    old_crypto = importlib.import_module("wafer_py_old.crypto")
    if "scope" not in inspect.signature(old_crypto.SecretBox).parameters:
        old_box = SecretBox([common.SECRET])
    tag = common.run_tag()
    apps: dict[str, App] = {}
    bare = [asgi_scope("/bare/hello", BASE_HEADERS)]
    apps["bare app"] = (starlette_stack("bare", None), bare, "anonymous")
    closing = []
    for name in stores:
        store = common.open_bench_store(name, tag, tmp, {})
        found = common.fill(store, sessions, probes=probes)
        if name == "memory":  # as many sessions of its own
            old_store = old_stores.open_store("memory://")
            old_found = common.fill(old_store, sessions, probes=probes, box=old_box)
        else:  # the same file
            old_store = old_stores.open_store(f"sqlite:///{tmp / (tag + '.db')}")
            old_found = found
            if old_box is not common.BOX:  # probes the old auth can validate
                old_found = common.fill(store, probes, probes=probes, box=old_box)
        closing += [store, old_store]
        scopes = [asgi_scope("/w/hello", {**BASE_HEADERS, "X-WX-Skey": p.skey}) for p in found]
        old_scopes = [
            asgi_scope("/w/hello", {**BASE_HEADERS, "X-WX-Skey": p.skey}) for p in old_found
        ]
        cookies = [
            asgi_scope(
                "/cookie/hello",
                {**BASE_HEADERS, "Cookie": "session=" + starlette_cookie(p.openid)},
            )
            for p in found
        ]
        apps.setdefault("signed cookie", (starlette_stack("cookie", None), cookies, ""))
        old_auth = old.WaferAuth(old_config, store=old_store)
        apps[f"{name} v2, {old_ref}"] = (
            wafer_stack(old_asgi.WaferMiddleware, old_auth),
            old_scopes,
            old_found[-1].openid,
        )
        apps[f"{name} v2, working tree"] = (
            wafer_stack(WaferMiddleware, make_auth(store)),
            scopes,
            found[-1].openid,
        )
    return apps, closing


def check_answers(loop: asyncio.AbstractEventLoop, apps: dict[str, App]) -> None:
    """Every app answers 200 with the openid it must (a benchmark of errors is worthless)."""
    for label, (app, scopes, expected) in apps.items():
        status, body = loop.run_until_complete(asgi_answer(app, scopes[-1]))
        if status != 200 or (expected and expected.encode() not in body):
            raise RuntimeError(f"{label}: HTTP {status}: {body[:80]!r}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--old", required=True, help="the git commit to compare with")
    parser.add_argument("--stores", default=",".join(STORES), help="memory, sqlite or both")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it run?")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    stores = [s for s in args.stores.split(",") if s in STORES]
    size = sizes(args.smoke)
    count, reps = size["requests"], size["repetitions"]
    with tempfile.TemporaryDirectory(prefix="wafer-compare-") as tmp:
        apps, closing = build_apps(args.old, stores, size["sessions"], size["probes"], Path(tmp))
        loop = asyncio.new_event_loop()
        try:
            check_answers(loop, apps)
            runs = {
                label: _asgi_run(loop, app, scopes, count)
                for label, (app, scopes, _) in apps.items()
            }
            measured = common.interleaved(runs, reps)
        finally:
            loop.close()
            for store in closing:
                store.close()
    medians = {label: common.median(values) for label, values in measured.items()}
    bare_s = medians["bare app"]
    cookie = medians.get("signed cookie", bare_s) - bare_s
    rows, figures = [], {}
    for label, seconds in medians.items():
        overhead = seconds - bare_s
        ratio = overhead / cookie if cookie > 0 else None
        figures[label] = {"s_per_request": seconds, "overhead_s": overhead, "vs_cookie": ratio}
        rows.append(
            [
                label,
                common.us(seconds),
                common.us(overhead),
                "" if ratio is None else f"{ratio:.2f}",
            ]
        )
    common.show(
        f"Starlette in process, wafer_py {args.old} against the working tree "
        f"(median of {reps} interleaved batches of {count})",
        ["variant", "us/request", "overhead us", "vs cookie"],
        rows,
    )
    results = {"old": args.old, "sizes": size, "machine": common.machine(), "variants": figures}
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
