"""The store contract suite on the embedded stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wafer_py.stores import MemoryStore, SessionStore, SQLiteStore, open_store
from wafer_py.testing import StoreContract, make_session


class TestMemoryStore(StoreContract):
    def make_store(self) -> SessionStore:
        return MemoryStore()


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "sessions.db"

    def make_store(self) -> SessionStore:
        return SQLiteStore(self.path)


class TestSQLiteMemoryStore(StoreContract):
    def make_store(self) -> SessionStore:
        return open_store("sqlite:///:memory:")


def test_open_store_by_url(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    store = open_store(f"sqlite:///{tmp_path}/a/b.db")
    assert isinstance(store, SQLiteStore)
    assert (tmp_path / "a" / "b.db").exists()
    store.close()
    with pytest.raises(ValueError, match="unknown session store URL scheme"):
        open_store("mongodb://localhost")


def test_sqlite_keeps_data_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.ensure_user("o1", unionid=None, profile={"nickName": "A"}, now=1.0)
        session, _ = make_session("o1")
        store.create_session(session)
    with SQLiteStore(path) as store:
        assert store.get_session(session.id) == session
        user = store.get_user("o1")
        assert user is not None and user.profile == {"nickName": "A"}


def test_sqlite_dump_has_no_secrets_in_the_clear(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        session, skey = make_session("o1")
        store.create_session(session)
    raw = path.read_bytes() + (
        path.with_suffix(".db-wal").read_bytes() if path.with_suffix(".db-wal").exists() else b""
    )
    assert skey.encode() not in raw
    assert b"c2Vzc2lvbmtleTEyMzQ1Ng==" not in raw  # the session_key make_session seals


def test_sqlite_purge_drops_expired_entries_and_lapsed_locks(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.set_entry("old", "x", expires_at=10.0)
        store.set_entry("new", "y", expires_at=1000.0)
        store.acquire_lock("lapsed", "a", ttl=5.0, now=0.0)
        store.acquire_lock("held", "b", ttl=5000.0, now=0.0)
        store.purge_expired(now=100.0)
        assert store.get_entry("new", now=100.0) == "y"
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT key FROM wafer_entries")] == ["new"]
    assert [r[0] for r in db.execute("SELECT name FROM wafer_locks")] == ["held"]
    db.close()


def _open_and_write(url: str, results: Any) -> None:
    try:
        for i in range(20):  # open while the others hold write transactions
            store = open_store(url)
            store.set_entry(f"k{i}", "v", expires_at=1e12)
            store.close()
        results.put("ok")
    except Exception as exc:  # reported to the parent
        results.put(repr(exc))


def test_processes_open_a_new_sqlite_file_together(tmp_path: Path) -> None:
    """Switching a new file to WAL needs it alone; processes starting together must wait."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    for round_ in range(2):
        url = f"sqlite:///{tmp_path}/together-{round_}.db"
        results: Any = ctx.Queue()
        processes = [ctx.Process(target=_open_and_write, args=(url, results)) for _ in range(6)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(10)
        assert outcomes == ["ok"] * 6


def test_an_older_sqlite_file_gains_the_unionid_index(tmp_path: Path) -> None:
    """A database made before the unionid index: opening it adds the index, and the users
    already there are found by unionid."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE wafer_users (openid TEXT PRIMARY KEY, unionid TEXT, profile TEXT NOT NULL, "
        "created_at REAL NOT NULL, updated_at REAL NOT NULL, phone TEXT)"
    )
    conn.execute(
        "INSERT INTO wafer_users VALUES ('o-old', 'u-old', '{\"nickName\": \"Old\"}', 1, 1, NULL)"
    )
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        (user,) = store.find_users_by_unionid("u-old")
        assert (user.openid, user.nickname) == ("o-old", "Old")
    conn = sqlite3.connect(path)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT openid FROM wafer_users WHERE unionid = 'u-old'"
    ).fetchall()
    conn.close()
    assert "wafer_users_unionid" in str(plan)
