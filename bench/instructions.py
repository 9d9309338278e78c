"""Instructions per validated request, counted by callgrind: two versions side by side.

Timed runs on a shared 2-core machine move by a few microseconds from one to the next,
as much as a change to the hot path costs or saves. Valgrind's callgrind counts the
instructions the CPU executes instead: the same for the same code and inputs whatever
else the machine does (the hash seed is fixed, so dictionaries probe alike). The apps are
:mod:`bench.compare`'s (Starlette in process: the bare app, the signed cookie, and wafer_py
at ``--old`` and in the working tree validating v2 sessions on each store); this process
runs itself under callgrind, which dumps its counters at each marker call between the
apps' batches, so each batch is counted alone.

    python -m bench.instructions --old 2fa6975 [--stores memory,sqlite] [--smoke]

Needs ``valgrind`` (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import common
from bench.compare import ROOT, STORES, build_apps, check_answers
from bench.overhead import asgi_batch

#: Set in the child that callgrind runs (it measures; the parent reads the counts).
CHILD = "WAFER_BENCH_CALLGRIND_CHILD"
#: The marker: callgrind dumps its counters before each call of this C function.
MARKER = "getppid"
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def sizes(smoke: bool) -> dict[str, int]:
    # Counts, not times: a few hundred requests a batch are exact; the sessions only
    # need to be more than the probes (the dictionaries' sizes change the count little).
    if smoke:
        return {"sessions": 200, "probes": 20, "requests": 40}
    return {"sessions": 2_000, "probes": 100, "requests": 400}


def child(args: argparse.Namespace, order_file: Path) -> None:
    """Under callgrind: warm each app, then one marked batch per app."""
    size = sizes(args.smoke)
    stores = [s for s in args.stores.split(",") if s in STORES]
    with tempfile.TemporaryDirectory(prefix="wafer-instructions-") as tmp:
        apps, closing = build_apps(args.old, stores, size["sessions"], size["probes"], Path(tmp))
        loop = asyncio.new_event_loop()
        try:
            check_answers(loop, apps)
            for app, scopes, _ in apps.values():  # every code path run once before counting
                loop.run_until_complete(asgi_batch(app, scopes, size["requests"]))
            labels = list(apps)
            for label in labels:
                app, scopes, _ = apps[label]
                os.getppid()  # dump: what ran before this batch
                loop.run_until_complete(asgi_batch(app, scopes, size["requests"]))
            os.getppid()  # dump: the last batch
        finally:
            loop.close()
            for store in closing:
                store.close()
    order_file.write_text(json.dumps(labels))


def count(args: argparse.Namespace, argv: list[str]) -> dict[str, float]:
    """Run this module (with ``argv``) under callgrind; instructions per request of each
    app."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("bench.instructions needs valgrind (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="wafer-callgrind-") as tmp:
        out = Path(tmp) / "cg.out"
        order = Path(tmp) / "order.json"
        command = [
            valgrind,
            "--tool=callgrind",
            f"--dump-before={MARKER}",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            *argv,
        ]
        env = {**os.environ, CHILD: str(order), "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0 or not order.exists():
            raise SystemExit(f"the run under callgrind failed:\n{done.stderr[-3000:]}")
        labels: list[str] = json.loads(order.read_text())
        # Dump k (out.k) holds what ran since dump k-1: dump 1 is the set-up, dump 2 the
        # first batch's marker call... so the batches are dumps 2 to len(labels) + 1.
        totals = {}
        for k, label in enumerate(labels, start=2):
            text = Path(f"{out}.{k}").read_text()
            match = _TOTALS.search(text)
            if match is None:
                raise SystemExit(f"no totals in callgrind's dump {k}")
            totals[label] = int(match.group(1)) / sizes(args.smoke)["requests"]
    return totals


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--old", required=True, help="the git commit to compare with")
    parser.add_argument("--stores", default=",".join(STORES), help="memory, sqlite or both")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it run?")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    order = os.environ.get(CHILD)
    if order is not None:
        child(args, Path(order))
        return {}
    per_request = count(args, sys.argv[1:] if argv is None else argv)
    bare = per_request["bare app"]
    cookie = per_request.get("signed cookie", bare) - bare
    rows, figures = [], {}
    for label, instructions in per_request.items():
        overhead = instructions - bare
        ratio = overhead / cookie if cookie > 0 else None
        figures[label] = {"per_request": instructions, "overhead": overhead, "vs_cookie": ratio}
        rows.append(
            [
                label,
                f"{instructions:,.0f}",
                f"{overhead:,.0f}",
                "" if ratio is None else f"{ratio:.3f}",
            ]
        )
    for store in [s for s in args.stores.split(",") if s in STORES]:
        old = figures.get(f"{store} v2, {args.old}")
        new = figures.get(f"{store} v2, working tree")
        if old and new and old["overhead"] > 0:
            change = new["overhead"] / old["overhead"] - 1
            rows.append([f"{store}: working tree vs {args.old}", "", f"{change:+.1%}", ""])
    common.show(
        f"Starlette in process, instructions per request (callgrind), wafer_py {args.old} "
        f"against the working tree ({sizes(args.smoke)['requests']} requests a batch)",
        ["variant", "instructions", "overhead", "vs cookie"],
        rows,
    )
    results = {"old": args.old, "sizes": sizes(args.smoke), "variants": figures}
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
