"""``wafer-py sessions``, run as an operator runs it, on a real store.

The store comes from ``STORES``: each entry makes the URL of an empty store of one kind
and cleans up after it. SQLite, and the shared Redis, PostgreSQL and MariaDB servers.
The commands run in the test's process (:func:`tests.support.command.run_command`: the
same output and exit status, without an interpreter's start-up); a real
``python -m wafer_py`` runs where the process is the point: the exit status of each
command as a shell sees it, and the progress bar drawn on a terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import services
from tests.support.command import run_command, without_wafer_variables
from wafer_py.models import Session
from wafer_py.stores import open_store
from wafer_py.testing import make_session


@contextmanager
def sqlite_store(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path}/sessions.db"


#: name -> a factory of an empty store's URL (a context manager that cleans up).
STORES: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "sqlite": sqlite_store,
    "redis": lambda tmp: services.fresh_store_url("redis"),
    "postgres": lambda tmp: services.fresh_store_url("postgres"),
    "mysql": lambda tmp: services.fresh_store_url("mysql"),
}

ALICE = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
BOB = "oGZUI0Wq3x8SvT5b1Iu9Ht7kq2fA"
CAROL = "oGZUI0cAr0lpURg3nEx9pIr3dXyZ"
#: Carol's expired sessions: enough for several batches of --batch 4.
CAROL_EXPIRED = 30


@dataclass
class Filled:
    """What the ``filled`` fixture put in the store."""

    url: str
    sessions: dict[str, list[Session]] = field(default_factory=dict)
    skeys: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        """Every value that must never be printed."""
        found = [s.skey_hash for group in self.sessions.values() for s in group]
        found += [s.sealed_session_key for group in self.sessions.values() for s in group]
        return found + self.skeys


@pytest.fixture(params=sorted(STORES))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with STORES[request.param](tmp_path) as url:
        yield url


@pytest.fixture
def filled(store_url: str) -> Filled:
    """Alice: 2 active sessions and 1 expired; Bob: 1 active; Carol: only expired ones."""
    now = time.time()
    filled = Filled(store_url)
    plan = {
        ALICE: [(now - 7200, 3600.0), (now - 60, 3600.0), (now - 30, 3600.0)],
        BOB: [(now - 10, 3600.0)],
        CAROL: [(now - 90_000 + i, 3600.0) for i in range(CAROL_EXPIRED)],
    }
    with open_store(store_url) as store:
        store.ensure_user(ALICE, unionid=None, profile={"nickName": "张三"}, now=now)
        store.ensure_user(BOB, unionid="oU1x", profile={"nickName": "李四 🐱"}, now=now)
        store.ensure_user(CAROL, unionid=None, profile={}, now=now)
        for openid, times in plan.items():
            for created, ttl in times:
                session, skey = make_session(openid, now=created, ttl=ttl)
                store.create_session(session)
                filled.sessions.setdefault(openid, []).append(session)
                filled.skeys.append(skey)
        store.set_entry("access_token:wx1", "not-a-secret", expires_at=now + 3600)
    return filled


def environment(url: str | None) -> dict[str, str]:
    """This environment with ``WAFER_STORE_URL=url`` and no other ``WAFER_*``."""
    env = without_wafer_variables()
    if url is not None:
        env["WAFER_STORE_URL"] = url
    return env


def wafer(url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``wafer-py ARGS`` in this process with ``WAFER_STORE_URL=url`` (no other WAFER_*)."""
    return run_command(*args, env=environment(url))


def wafer_process(
    url: str | None, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m wafer_py ARGS`` in a process of its own, environment as :func:`wafer`."""
    return subprocess.run(
        [sys.executable, "-m", "wafer_py", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(url),
        cwd=cwd,
    )


def assert_no_secret(filled: Filled, result: subprocess.CompletedProcess[str]) -> None:
    printed = result.stdout + result.stderr
    for secret in filled.secrets():
        assert secret not in printed
    assert "Traceback" not in printed


def stats_of(url: str) -> tuple[int, int, int, int]:
    with open_store(url) as store:
        stats = store.stats(time.time())
    return stats.users, stats.active_sessions, stats.expired_sessions, stats.entries


# -- list ------------------------------------------------------------------------------
def test_list_prints_a_table_without_secrets(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "list", "--openid", ALICE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"openid {ALICE}: 3 sessions (2 active, 1 expired; times in UTC)"
    assert lines[1].split() == ["SESSION", "CREATED", "LAST", "SEEN", "EXPIRES", "STATE"]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == [s.id for s in filled.sessions[ALICE]]  # oldest first
    assert [row[-1] for row in rows] == ["expired", "active", "active"]
    first = filled.sessions[ALICE][0]
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(first.created_at))
    assert " ".join(rows[0][1:3]) == created
    assert_no_secret(filled, result)


def test_list_json(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "list", "--openid", ALICE, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["openid"] == ALICE and body["user"] is True
    assert [s["id"] for s in body["sessions"]] == [s.id for s in filled.sessions[ALICE]]
    for listed, session in zip(body["sessions"], filled.sessions[ALICE], strict=True):
        assert set(listed) == {"id", "created_at", "last_seen", "expires_at", "state"}
        assert listed["created_at"] == pytest.approx(session.created_at)
        assert listed["last_seen"] == pytest.approx(session.last_seen)
        assert listed["expires_at"] == pytest.approx(session.expires_at)
    assert [s["state"] for s in body["sessions"]] == ["expired", "active", "active"]
    assert_no_secret(filled, result)


def test_list_of_an_unknown_user_matched_nothing(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "list", "--openid", "o-nobody")
    assert (result.returncode, result.stdout) == (
        1,  # nothing matched, as revoke
        "openid o-nobody: no sessions (no such user)\n",
    )
    result = wafer(filled.url, "sessions", "list", "--openid", "o-nobody", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"openid": "o-nobody", "user": False, "sessions": []}


# -- revoke ----------------------------------------------------------------------------
def test_revoke_every_session_of_a_user(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "revoke", "--openid", ALICE)
    assert (result.returncode, result.stdout) == (0, f"revoked 3 sessions of {ALICE}\n")
    with open_store(filled.url) as store:
        assert store.list_sessions(ALICE) == []
        assert [s.id for s in store.list_sessions(BOB)] == [filled.sessions[BOB][0].id]
    again = wafer(filled.url, "sessions", "revoke", "--openid", ALICE)
    assert (again.returncode, again.stdout) == (1, f"revoked 0 sessions of {ALICE}\n")
    assert_no_secret(filled, result)


def test_revoke_one_session(filled: Filled) -> None:
    target = filled.sessions[ALICE][1]
    result = wafer(filled.url, "sessions", "revoke", "--session", target.id, "--json")
    assert (result.returncode, json.loads(result.stdout)) == (0, {"revoked": 1})
    with open_store(filled.url) as store:
        left = [s.id for s in store.list_sessions(ALICE)]
    assert left == [filled.sessions[ALICE][0].id, filled.sessions[ALICE][2].id]
    again = wafer(filled.url, "sessions", "revoke", "--session", target.id)
    assert (again.returncode, again.stdout) == (1, f"no session {target.id}\n")


def test_revoke_needs_a_user_or_a_session(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "revoke")
    assert result.returncode == 2 and "--openid" in result.stderr
    result = wafer(filled.url, "sessions", "revoke", "--openid", ALICE, "--session", "x")
    assert result.returncode == 2 and "not allowed with" in result.stderr


# -- purge -----------------------------------------------------------------------------
def test_purge_deletes_expired_sessions_in_batches(filled: Filled) -> None:
    expired = CAROL_EXPIRED + 1  # and one of Alice's
    assert stats_of(filled.url) == (3, 3, expired, 1)
    result = wafer(filled.url, "sessions", "purge", "--batch", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"purged {expired} expired sessions\n"
    # Not a terminal: a line at each tenth, each after a batch of 4.
    progress = re.findall(r"\] (\d+)/(\d+) expired sessions purged +(\d+)%$", result.stderr, re.M)
    assert [int(done) for done, _, _ in progress] == [4, 8, 12, 16, 20, 24, 28, 31]
    assert {int(total) for _, total, _ in progress} == {expired}
    assert progress[-1][2] == "100"
    assert stats_of(filled.url) == (3, 3, 0, 1)
    with open_store(filled.url) as store:
        assert [s.id for s in store.list_sessions(ALICE)] == [
            s.id for s in filled.sessions[ALICE][1:]
        ]
    again = wafer(filled.url, "sessions", "purge", "--json")
    assert (again.returncode, json.loads(again.stdout), again.stderr) == (0, {"purged": 0}, "")
    assert_no_secret(filled, result)


def test_purge_draws_a_bar_on_a_terminal(filled: Filled) -> None:
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "wafer_py", "sessions", "purge", "--batch", "5"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
            env=environment(filled.url),
        )
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert result.returncode == 0
    assert result.stdout == f"purged {CAROL_EXPIRED + 1} expired sessions\n"
    text = drawn.decode()
    assert text.startswith("\r[") and text.endswith("\n")
    assert f"] {CAROL_EXPIRED + 1}/{CAROL_EXPIRED + 1} expired sessions purged 100%" in text
    assert text.count("\n") == 1  # redrawn in place, one line in the end


def test_purge_quiet_and_small_purges_draw_nothing(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "purge", "--quiet", "--batch", "4")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"purged {CAROL_EXPIRED + 1} expired sessions\n"


def test_purge_rejects_a_bad_batch(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "purge", "--batch", "0")
    assert result.returncode == 2 and "--batch" in result.stderr


# -- stats -----------------------------------------------------------------------------
def test_stats(filled: Filled) -> None:
    result = wafer(filled.url, "sessions", "stats")
    assert result.returncode == 0, result.stderr
    counts = {
        " ".join(line.split()[:-1]): int(line.split()[-1]) for line in result.stdout.splitlines()
    }
    expected = {
        "users": 3,
        "active sessions": 3,
        "expired sessions": CAROL_EXPIRED + 1,
        "entries": 1,
    }
    assert counts == expected
    result = wafer(filled.url, "sessions", "stats", "--json")
    assert json.loads(result.stdout) == {k.replace(" ", "_"): v for k, v in expected.items()}
    assert_no_secret(filled, result)


def test_store_option_wins_over_the_environment(filled: Filled, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path}/other.db"
    open_store(other).close()
    result = wafer(other, "sessions", "stats", "--json", "--store", filled.url)
    assert json.loads(result.stdout)["users"] == 3


# -- failures --------------------------------------------------------------------------
def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wafer-py sessions: ")
    return lines[0]


def test_a_bad_store_url_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(wafer("nosuch://somewhere", "sessions", "stats"))
    assert "unknown session store URL scheme 'nosuch'" in line


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/typo.db"
    line = one_line_failure(wafer(url, "sessions", "list", "--openid", ALICE))
    assert f"no SQLite store at {tmp_path}/typo.db" in line
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
@pytest.mark.parametrize("action", [["stats"], ["list", "--openid", ALICE], ["purge"]])
def test_a_mistyped_table_prefix_is_named_and_creates_nothing(kind: str, action: list[str]) -> None:
    """``sessions stats`` with a mistyped ``table_prefix`` once created four empty tables
    and reported zeros."""
    from wafer_py.stores.sql import SQLStore

    with services.fresh_store_url(kind) as url:
        line = one_line_failure(wafer(url, "sessions", *action))
        prefix = url.rsplit("table_prefix=", 1)[1]
        assert f"the tables {prefix}users, {prefix}sessions" in line
        assert "do not exist" in line and "check table_prefix in the URL" in line
        probe = SQLStore(url, create_tables=False)
        try:
            assert len(probe.missing_tables()) == 4  # still none
        finally:
            probe.close()


def test_a_sqlite_file_of_something_else_is_named_and_left_alone(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    line = one_line_failure(wafer(f"sqlite:///{other}", "sessions", "stats"))
    assert f"{other} is not a wafer_py store: no table wafer_users" in line
    with sqlite3.connect(other) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"notes"}


def test_an_unreadable_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.db").write_bytes(b"this is not a database file " * 40)
    url = f"sqlite:///{tmp_path}/broken.db"
    line = one_line_failure(wafer(url, "sessions", "revoke", "--openid", ALICE))
    assert line.startswith(f"wafer-py sessions: cannot open the session store {url}: ")
    assert "not a database" in line


def test_a_password_in_the_store_url_is_masked(tmp_path: Path) -> None:
    result = wafer("nosuch://admin:hunter2@db.internal/x", "sessions", "stats")
    line = one_line_failure(result)
    assert "hunter2" not in line and "admin:***@db.internal" in line


def test_commands_run_in_process_leave_the_log_level_as_it_was(tmp_path: Path) -> None:
    """The CLI quiets wafer_py's store logs while a command runs, and puts the level back:
    Django's management commands run the same actions in a process that goes on (a level
    left at CRITICAL silenced every later warning of that process)."""
    import logging

    from wafer_py.cli.main import main

    logger = logging.getLogger("wafer_py")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        url = f"sqlite:///{tmp_path / 'absent.db'}"
        assert main(["sessions", "stats", "--store", url]) == 2
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)


# -- as a shell runs them --------------------------------------------------------------
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "status", "stdout"),
    [
        (("list", "--openid", "o-nobody"), 1, "openid o-nobody: no sessions (no such user)\n"),
        (("revoke", "--openid", ALICE), 0, f"revoked 3 sessions of {ALICE}\n"),
        (("purge", "--quiet"), 0, f"purged {CAROL_EXPIRED + 1} expired sessions\n"),
        (("stats", "--json"), 0, None),  # None: what the command prints in process
        (("revoke",), 2, ""),  # a usage error
    ],
    ids=["list", "revoke", "purge", "stats", "usage"],
)
def test_each_command_exits_as_a_process(
    filled: Filled, args: tuple[str, ...], status: int, stdout: str | None
) -> None:
    """``python -m wafer_py sessions ...`` ends with the status a shell script tests."""
    result = wafer_process(filled.url, "sessions", *args)
    assert result.returncode == status, result.stderr
    if stdout is None:
        stdout = wafer(filled.url, "sessions", *args).stdout
    assert result.stdout == stdout
    assert_no_secret(filled, result)


def test_a_store_failure_exits_2_as_a_process(tmp_path: Path) -> None:
    line = one_line_failure(wafer_process("nosuch://somewhere", "sessions", "stats", cwd=tmp_path))
    assert "unknown session store URL scheme 'nosuch'" in line
