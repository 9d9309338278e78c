"""What the benchmark scripts share: command-line options, stores filled with sessions,
interleaved timing, and plain-text tables.

Every script prints figures measured in one run side by side, as ratios: absolute times
vary from machine to machine, ratios much less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wafer_py.config import DEFAULT_AVATAR, DEFAULT_NICKNAME, DEMO_APPID
from wafer_py.crypto import SecretBox, new_session_id, new_skey
from wafer_py.models import Session
from wafer_py.stores import SessionStore, SQLiteStore, open_store

#: The secret key of every benchmark auth (skeys are hashed and session keys sealed
#: under keys derived from it, as in production).
SECRET = "wafer_py benchmark secret, not for production"
#: Skey hashes are scoped by the auth's AppID: the benchmark auths have the default one.
BOX = SecretBox([SECRET], scope=DEMO_APPID)
#: Every store the scripts know, in the order tables list them.
STORES = ("memory", "sqlite", "redis", "postgres")
SERVER_STORES = ("redis", "postgres")
#: The same stores validated through wafer_py's per-process session cache (issue #17):
#: "redis+cache" shares the "redis" store's data. A store measured so must offer an
#: invalidation channel (SQLite's is its change log, polled before each lookup);
#: "memory+cache" is a memory store driven by the tests' channel (no server: it measures
#: the cache's hit path alone).
CACHED_STORES = ("memory+cache", "sqlite+cache", "redis+cache", "postgres+cache")
#: Entries of the cached variants' caches (``session_cache``).
CACHE_SIZE = 10_000
DEFAULT_URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
}
#: A session lives a week, as by default.
TTL = 7 * 24 * 3600.0
#: What a login without a profile stores for a user (WeChat's defaults).
DEFAULT_PROFILE = {"nickName": DEFAULT_NICKNAME, "avatarUrl": DEFAULT_AVATAR}
#: A sealed session_key stands for every filler session's: it is never opened when a
#: session is validated, and all sealed keys have the same length.
_FILLER_SEAL = BOX.seal("c2Vzc2lvbmtleTEyMzQ1Ng==", context="o" + "0" * 27)


# ----------------------------------------------------------------------- options


def base_store(name: str) -> str:
    """The store a variant name measures: ``redis+cache`` -> ``redis``."""
    return name.removesuffix("+cache")


def parser(description: str | None, *, cached: bool = False) -> argparse.ArgumentParser:
    """The options every script takes: ``--smoke``, ``--json``, ``--stores`` and URLs
    (``cached``: the stores default to the cached variants too)."""
    doc = (description or "").strip().splitlines()
    parser = argparse.ArgumentParser(description=doc[0] if doc else None)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, a few seconds: does every path run?"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    default = ",".join(_ordered(STORES + CACHED_STORES) if cached else STORES)
    parser.add_argument(
        "--stores",
        default=default,
        help=f"comma-separated stores to measure (default: {default}); a server "
        "store whose server does not answer is left out with a note",
    )
    for kind, url in DEFAULT_URLS.items():
        parser.add_argument(
            f"--{kind}-url",
            default=os.environ.get(f"WAFER_BENCH_{kind.upper()}_URL", url),
            help=f"the {kind} server (default $WAFER_BENCH_{kind.upper()}_URL or {url})",
        )
    return parser


#: uvicorn's HTTP parser and event loop, pinned so that a run does not depend on what
#: happens to be installed: "plain" is what ``pip install uvicorn`` runs (h11, asyncio),
#: "standard" what ``uvicorn[standard]`` adds (httptools, uvloop).
UVICORN = {
    "plain": ["--http", "h11", "--loop", "asyncio"],
    "standard": ["--http", "httptools", "--loop", "uvloop"],
}


def add_uvicorn_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--uvicorn",
        choices=sorted(UVICORN),
        default="plain",
        help="uvicorn's HTTP parser and loop: plain = h11 + asyncio (default), "
        "standard = httptools + uvloop (pip install 'uvicorn[standard]')",
    )


def uvicorn_label(kind: str) -> str:
    return "h11, asyncio" if kind == "plain" else "httptools, uvloop"


def chosen_stores(args: argparse.Namespace) -> list[str]:
    """The stores of ``--stores`` that can be measured here (a note for those left out)."""
    wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    known = _ordered(STORES + CACHED_STORES)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise SystemExit(f"unknown store(s) {unknown}; choose from {', '.join(known)}")
    chosen = []
    for name in known:
        if name not in wanted:
            continue
        if base_store(name) in SERVER_STORES:
            problem = server_problem(store_url(args, base_store(name)))
            if problem is not None:
                print(f"note: leaving out {name}: {problem}", flush=True)
                continue
        chosen.append(name)
    return chosen


def _ordered(names: Iterable[str]) -> list[str]:
    """Each store followed by its cached variant."""
    return sorted(names, key=lambda n: (STORES.index(base_store(n)), n != base_store(n)))


def store_url(args: argparse.Namespace, name: str) -> str:
    url: str = getattr(args, f"{name}_url")
    return url


def server_problem(url: str) -> str | None:
    """``None`` if the server of ``url`` accepts a connection, else why not."""
    parts = urlsplit(url)
    default = 6379 if parts.scheme.startswith("redis") else 5432
    host, port = parts.hostname or "127.0.0.1", parts.port or default
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"no server at {host}:{port} ({exc})"


def commit() -> str | None:
    """The code measured: ``$WAFER_BENCH_COMMIT`` (a snapshot says what it is), else the
    checkout's commit, with ``+changes`` when files differ from it."""
    if os.environ.get("WAFER_BENCH_COMMIT"):
        return os.environ["WAFER_BENCH_COMMIT"]
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "wafer_py", "bench"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        # Other work on the machine disturbs the figures: say how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "commit": commit(),
    }


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------ stores


@dataclass(frozen=True)
class Probe:
    """A stored session the benchmark sends, with its secrets in the clear."""

    session_id: str
    skey: str
    openid: str

    def headers(self, generation: str) -> dict[str, str]:
        """The session headers a client of ``generation`` ("v1" or "v2") sends."""
        if generation == "v1":
            return {"X-WX-Id": self.session_id, "X-WX-Skey": self.skey}
        return {"X-WX-Skey": self.skey}


def new_openid() -> str:
    return "o" + secrets.token_hex(14)[:27]


def store_urls(args: argparse.Namespace) -> dict[str, str]:
    """The server URLs of the options, by store name."""
    return {name: store_url(args, name) for name in SERVER_STORES}


def run_tag() -> str:
    """A name for this run's files, keys and tables that no other run uses."""
    return f"{os.getpid()}_{secrets.token_hex(2)}"


def open_bench_store(
    name: str, tag: str, workdir: Path, urls: dict[str, str], *, fresh: bool = True
) -> SessionStore:
    """A new, empty store ``name`` of its own: ``tag`` (unique to the run, see
    :func:`run_tag`) names its file, key prefix or tables, so opening it again with the
    same tag finds the same data."""
    if name == "memory":
        return open_store("memory://")
    if name == "memory+cache":
        from tests.support.channel import ChannelStore  # the tests' channel, no server

        return ChannelStore()
    if name == "sqlite":
        path = workdir / f"{tag}.db"
        for leftover in workdir.glob(f"{tag}.db*") if fresh else ():
            leftover.unlink()
        return SQLiteStore(path)
    if name == "redis":
        from wafer_py.stores.redis import RedisStore

        return RedisStore.from_url(urls["redis"], prefix=_prefix(tag, ":"))
    if name == "postgres":
        from wafer_py.stores.sql import SQLStore

        # PostgreSQL names are short: a digest of the tag keeps them unique.
        digest = hashlib.sha256(tag.encode()).hexdigest()[:16]
        return SQLStore(urls["postgres"], table_prefix=f"bench_{digest}_")
    raise ValueError(name)


def _prefix(tag: str, end: str) -> str:
    """A name prefix no other run (nor test) uses."""
    safe = "".join(c if c.isalnum() else "_" for c in tag)
    return f"bench_{safe}{end}"


def drop_bench_store(store: SessionStore) -> None:
    """Delete what :func:`open_bench_store` made and close the store."""
    try:
        from bench import backends

        backends.drop(store)
    finally:
        store.close()


def fill(
    store: SessionStore,
    count: int,
    *,
    probes: int,
    now: float | None = None,
    progress: bool = False,
    box: SecretBox = BOX,
) -> list[Probe]:
    """Store ``count`` sessions, each with its own user, as a code-only login leaves them.

    ``probes`` of them (spread evenly) have skeys the benchmark knows (hashed by ``box``);
    it returns those.
    Stores with a bulk path (SQL ``executemany``/``COPY``, Redis pipelines) use it;
    others go through the store's own methods.
    """
    from bench import backends

    now = time.time() if now is None else now
    probes = min(probes, count)
    step = count // probes if probes else count + 1
    known: list[Probe] = []
    started = time.perf_counter()

    def rows() -> Iterable[tuple[Session, str]]:
        for i in range(count):
            openid = new_openid()
            if probes and i % step == 0 and len(known) < probes:
                skey = new_skey()
                session = Session(
                    id=new_session_id(),
                    openid=openid,
                    skey_hash=box.hash_skey(skey),
                    sealed_session_key=BOX.seal("c2Vzc2lvbmtleTEyMzQ1Ng==", context=openid),
                    created_at=now,
                    last_seen=now,
                    expires_at=now + TTL,
                )
                known.append(Probe(session.id, skey, openid))
            else:
                session = Session(
                    id=new_session_id(),
                    openid=openid,
                    skey_hash=secrets.token_hex(32),  # as long as a real keyed hash
                    sealed_session_key=_FILLER_SEAL,
                    created_at=now,
                    last_seen=now,
                    expires_at=now + TTL,
                )
            yield session, openid
            if progress and i and i % 200_000 == 0:
                elapsed = time.perf_counter() - started
                print(f"  ... {i:,} sessions in {elapsed:.0f} s", flush=True)

    backends.bulk_insert(store, rows(), DEFAULT_PROFILE, now)
    return known


# ------------------------------------------------------------------------ timing


def interleaved(
    runs: dict[str, Callable[[], float]], repetitions: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Call every run ``repetitions`` times, interleaved (a rotated order each round, so
    slow drift of the machine falls on every variant alike); each call returns seconds
    per operation. Returns every measurement by name."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    found: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repetitions):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            found[name].append(runs[name]())
    return found


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def us(seconds: float) -> str:
    """Seconds as microseconds, for a table."""
    return f"{seconds * 1e6:.1f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def ratio(value: float) -> str:
    return f"{value:.2f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# ------------------------------------------------------------------------ tables


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    body = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [list(header), *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "-" * len(line(list(header)))
    return "\n".join([title, rule, line(list(header)), rule, *map(line, body), rule])


def show(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    print(table(title, header, rows), flush=True)
    print(flush=True)


def note(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
