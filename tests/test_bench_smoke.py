"""The benchmarks keep working: each script's ``--smoke`` run exits 0 and prints its table.

Benchmarks are not tests: nothing here looks at a figure. The parts that need Redis and
PostgreSQL run where those servers answer (skipped otherwise, failed under CI=true), and
the HTTP benchmark needs wrk (Debian's package).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services
from tests.support.ci import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
#: Each script and the title its table starts with.
TITLES = {
    "overhead": "Per-request overhead, starlette in process",
    "http_load": "Over HTTP: starlette on uvicorn",
    "logins": "Logins under load",
    "stores": "Validation latency",
    "metrics_cost": "Metrics on the validation path",
    "churn": "Login churn",
}
LOCAL = {
    "overhead": "memory,memory+cache,sqlite,sqlite+cache",
    "http_load": "memory,memory+cache,sqlite,sqlite+cache",
    "logins": "memory,sqlite",
}
LOCAL["stores"] = "sqlite"
LOCAL["metrics_cost"] = "memory,sqlite"
LOCAL["churn"] = "memory,sqlite"


def run(*args: str, timeout: float = 120) -> str:
    """``python -m <args>`` from the repository root; its output (it must exit 0)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def needs_wrk(script: str) -> None:
    if script == "http_load" and shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (Debian: apt-get install wrk)")


@pytest.mark.parametrize("script", list(TITLES))
def test_smoke_local_stores(script: str, tmp_path: Path) -> None:
    needs_wrk(script)
    out = tmp_path / "results.json"
    printed = run(f"bench.{script}", "--smoke", "--stores", LOCAL[script], "--json", str(out))
    assert TITLES[script] in printed
    if "memory+cache" in LOCAL[script]:
        assert "wafer memory+cache v2" in printed
    assert json.loads(out.read_text())


@pytest.mark.parametrize("script", list(TITLES))
def test_smoke_server_stores(script: str, tmp_path: Path) -> None:
    needs_wrk(script)
    redis_url = services.require("redis")
    postgres_url = services.require("postgres")
    stores = ["redis", "postgres"]
    if script in LOCAL and "memory+cache" in LOCAL[script]:
        stores += [f"{name}+cache" for name in cacheable_server_stores()]
    printed = run(
        f"bench.{script}",
        "--smoke",
        "--stores",
        ",".join(stores),
        "--redis-url",
        redis_url,
        "--postgres-url",
        postgres_url,
    )
    assert TITLES[script] in printed
    assert "wafer redis" in printed or "redis " in printed
    assert "note: leaving out" not in printed


def test_smoke_sqlite_cache(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    printed = run("bench.sqlite_cache", "--smoke", "--json", str(out))
    assert "validate() sqlite+cache v2" in printed
    assert json.loads(out.read_text())["medians_s"]


def cacheable_server_stores() -> list[str]:
    """The server stores that offer an invalidation channel (a session cache)."""
    from wafer_py.stores.base import SessionStore
    from wafer_py.stores.redis import RedisStore
    from wafer_py.stores.sql import SQLStore

    default = SessionStore.invalidation_channel
    found: dict[str, type[SessionStore]] = {"redis": RedisStore, "postgres": SQLStore}
    return [name for name, cls in found.items() if cls.invalidation_channel is not default]


def test_run_all_then_plot(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    printed = run(
        "bench.run_all", "--smoke", "--only", "stores", "--stores", "sqlite", "--out", str(out)
    )
    assert TITLES["stores"] in printed
    results = json.loads(out.read_text())
    assert results["smoke"] is True and "sqlite" in results["stores"]["stores"]
    if importlib.util.find_spec("matplotlib") is None:
        return  # the plot is optional (bench/requirements.txt)
    run("bench.plot", "--results", str(out), "--out", str(tmp_path / "results.png"))
    assert (tmp_path / "results.png").stat().st_size > 0


def test_compare_with_a_commit(tmp_path: Path) -> None:
    """bench.compare imports the package as of a commit beside the working tree's."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        skip_or_fail("bench.compare needs a git checkout")
    out = tmp_path / "compare.json"
    printed = run("bench.compare", "--old", "HEAD", "--smoke", "--json", str(out))
    assert "against the working tree" in printed
    variants = json.loads(out.read_text())["variants"]
    assert {"memory v2, HEAD", "memory v2, working tree", "sqlite v2, HEAD"} <= set(variants)


def test_instructions_with_a_commit(tmp_path: Path) -> None:
    """bench.instructions counts each app's batch alone under callgrind (Debian's
    valgrind): every batch is counted, and the wafer rows cost more than the bare app."""
    if shutil.which("valgrind") is None:
        skip_or_fail("valgrind is not installed (Debian: apt-get install valgrind)")
    out = tmp_path / "instructions.json"
    printed = run(
        "bench.instructions", "--old", "HEAD", "--stores", "memory", "--smoke", "--json", str(out)
    )
    assert "instructions per request (callgrind)" in printed
    variants = json.loads(out.read_text())["variants"]
    assert set(variants) == {
        "bare app",
        "signed cookie",
        "memory v2, HEAD",
        "memory v2, working tree",
    }
    assert all(variants[name]["overhead"] > 0 for name in variants if name != "bare app")


def test_smoke_mysql_async_drivers() -> None:
    """The asyncio MySQL drivers side by side (aiomysql is left out with a note where
    bench/requirements.txt is not installed)."""
    mysql_url = services.require("mysql")
    printed = run("bench.mysql_async_drivers", "--smoke", "--mysql-url", mysql_url)
    assert "MySQL validation under asyncio" in printed
    assert "asyncmy" in printed and "PyMySQL, thread" in printed
