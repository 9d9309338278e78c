"""The store contract suite on the embedded stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from wafer_py.stores import MemoryStore, SessionStore, SQLiteStore, open_store
from wafer_py.testing import SessionStoreContract, make_session


class TestMemoryStore(SessionStoreContract):
    def make_store(self) -> SessionStore:
        return MemoryStore()


class TestSQLiteStore(SessionStoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "sessions.db"

    def make_store(self) -> SessionStore:
        return SQLiteStore(self.path)


class TestSQLiteMemoryStore(SessionStoreContract):
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
    raw = path.read_bytes() + (path.with_suffix(".db-wal").read_bytes()
                               if path.with_suffix(".db-wal").exists() else b"")
    assert skey.encode() not in raw
    assert b"c2Vzc2lvbmtleTEyMzQ1Ng==" not in raw  # the session_key make_session seals
