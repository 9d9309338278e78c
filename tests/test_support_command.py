"""The in-process command runner sees what a child process's stdout and stderr would."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import command
from tests.support.command import run_command
from wafer_py.stores import open_store


@pytest.fixture
def chatty_main(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """``main`` replaced by one that logs, prints, reads its environment and exits 3,
    while a thread that ran before it writes to stderr."""
    release, written = threading.Event(), threading.Event()

    def server() -> None:  # a test's server, logging while the command runs
        release.wait(10)
        logging.getLogger("server").warning("a server's line")
        print("a server's print", file=sys.stderr)
        written.set()

    thread = threading.Thread(target=server, daemon=True)

    def main(argv: list[str]) -> int:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("wafer_py.x").info("from the command")
        print(f"argv={argv} store={os.environ.get('WAFER_STORE_URL')}")
        release.set()
        written.wait(10)
        raise SystemExit(3)

    monkeypatch.setattr(command, "main", main)
    thread.start()
    yield written
    thread.join(10)


def test_output_status_environment_and_logs(chatty_main: threading.Event) -> None:
    before = logging.getLogger().handlers[:]
    done = run_command("a", "b", env={"WAFER_STORE_URL": "memory://"})
    assert chatty_main.is_set()
    assert done.returncode == 3
    assert done.stdout == "argv=['a', 'b'] store=memory://\n"
    assert done.stderr == "INFO wafer_py.x: from the command\n"  # not the server's lines
    assert logging.getLogger().handlers == before
    assert os.environ.get("WAFER_STORE_URL") != "memory://"


def test_a_real_command(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    open_store(store).close()
    done = run_command("sessions", "stats", "--store", store, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["users"] == 0
    missing = run_command("sessions", "stats", "--store", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 2 and missing.stderr.startswith("wafer-py sessions: no SQLite")


def test_an_argument_error_exits_2_with_usage() -> None:
    done = run_command("no-such-command")
    assert done.returncode == 2 and done.stdout == ""
    assert "usage: wafer-py" in done.stderr and "invalid choice" in done.stderr
