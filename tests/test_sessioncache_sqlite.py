"""The session cache on SQLite: a change log its triggers write, polled before each lookup.

Two stores on one file stand for two processes (each has its own connections).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import Clock
from tests.support.constants import TEST_SECRET
from wafer_py import Credentials, InvalidSession, WaferAuth, WaferConfig
from wafer_py.stores import SQLiteStore
from wafer_py.wechat.client import Code2Session


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def auths(db: Path) -> Iterator[list[WaferAuth]]:
    made: list[WaferAuth] = []
    yield made
    for auth in made:
        auth.close()


def make(db: Path, made: list[WaferAuth], clock: Clock | None = None, **options: Any) -> WaferAuth:
    config = WaferConfig(
        api_base="http://127.0.0.1:9", fake_wechat=True, secret_keys=(TEST_SECRET,), **options
    )
    auth = WaferAuth(config, store=SQLiteStore(db), clock=clock or Clock())
    made.append(auth)
    return auth


def live(auth: WaferAuth, creds: Credentials) -> None:
    """Validate until the cache is live (its log is made in a thread), then fill it."""
    cache = auth.session_cache
    assert cache is not None
    deadline = time.monotonic() + 10
    while not cache.live:
        assert time.monotonic() < deadline, "the SQLite change log never became live"
        auth.validate(creds)
        time.sleep(0.01)
    auth.validate(creds)
    hits = cache.hits
    auth.validate(creds)
    assert cache.hits == hits + 1


def login(auth: WaferAuth, openid: str = "o-lite") -> tuple[Credentials, Credentials, str]:
    result = auth.complete_login(Code2Session(openid, "sk"))
    return Credentials(result.skey), Credentials(result.skey, result.session_id), result.session_id


def raw(db: Path, sql: str, *args: Any) -> None:
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute(sql, args)


def test_revocation_elsewhere_is_seen_at_once(db: Path, auths: list[WaferAuth]) -> None:
    here, other = make(db, auths), make(db, auths)
    v2, v1, session_id = login(here)
    live(here, v2)
    live(here, v1)
    assert other.revoke(session_id)  # another process: no waiting below
    for creds in (v2, v1):
        with pytest.raises(InvalidSession):
            here.validate(creds)


def test_any_writer_is_seen(db: Path, auths: list[WaferAuth]) -> None:
    """The sqlite3 shell, an old version, the CLI: the triggers log every writer."""
    here = make(db, auths)
    v2, _, session_id = login(here)
    live(here, v2)
    raw(db, "UPDATE wafer_users SET profile = ? WHERE openid = ?", '{"nickName": "Ada"}', "o-lite")
    assert here.validate(v2).user.nickname == "Ada"
    raw(db, "DELETE FROM wafer_sessions WHERE id = ?", session_id)
    with pytest.raises(InvalidSession):
        here.validate(v2)


def test_revoking_a_user_elsewhere(db: Path, auths: list[WaferAuth]) -> None:
    here, other = make(db, auths), make(db, auths)
    v2, _, _ = login(here)
    live(here, v2)
    assert other.revoke_user("o-lite") == 1
    with pytest.raises(InvalidSession):
        here.validate(v2)


def test_touches_are_not_logged(db: Path, auths: list[WaferAuth]) -> None:
    clock = Clock()
    here = make(db, auths, clock=clock, touch_interval=1)
    v2, _, _ = login(here)
    live(here, v2)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT COUNT(*) FROM wafer_changes").fetchone()[0]
    clock.advance(5)
    touches = here.validate(v2).session.last_seen
    assert touches == clock.now
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM wafer_changes").fetchone()[0] == before
    cache = here.session_cache
    assert cache is not None
    hits = cache.hits
    here.validate(v2)
    assert cache.hits == hits + 1  # still cached after its touch


def test_a_gap_in_the_log_forgets_everything(db: Path, auths: list[WaferAuth]) -> None:
    here, other = make(db, auths), make(db, auths)
    v2, _, session_id = login(here)
    live(here, v2)
    other.revoke(session_id)
    raw(db, "DELETE FROM wafer_changes")  # trimmed before this process read it
    login(other, "o-else")
    other.revoke_user("o-else")  # a later change: the gap shows
    with pytest.raises(InvalidSession):
        here.validate(v2)


def test_cache_off(db: Path, auths: list[WaferAuth]) -> None:
    assert make(db, auths, session_cache=0).session_cache is None


def test_the_cli_revoking_is_seen_at_once(db: Path, auths: list[WaferAuth]) -> None:
    here = make(db, auths)
    v2, _, session_id = login(here)
    live(here, v2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    env["WAFER_STORE_URL"] = f"sqlite:///{db}"
    done = subprocess.run(
        [sys.executable, "-m", "wafer_py", "sessions", "revoke", "--session", session_id],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(InvalidSession):
        here.validate(v2)


def test_threads_never_accept_a_session_revoked_before_they_began(
    db: Path, auths: list[WaferAuth]
) -> None:
    here, other = make(db, auths), make(db, auths)
    sessions = [login(here, f"o-t{n}") for n in range(12)]
    live(here, sessions[0][0])
    revoked: set[str] = set()
    stop = threading.Event()
    errors: list[str] = []

    def validate_all() -> None:
        while not stop.is_set():
            for v2, _, session_id in sessions:
                done = session_id in revoked
                try:
                    here.validate(v2)
                except InvalidSession:
                    continue
                if done:
                    errors.append(session_id)

    threads = [threading.Thread(target=validate_all) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _, _, session_id in sessions:
            other.revoke(session_id)
            revoked.add(session_id)
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
