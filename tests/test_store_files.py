"""The SQLite store's files are private: they hold the access_token and sealed keys."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from wafer_py.stores import SQLiteStore
from wafer_py.testing import make_session

FILES = ("s.db", "s.db-wal", "s.db-shm", "s.db.key")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask: nothing but the store's own choice keeps the files private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _use(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.local_secret()
        store.create_session(make_session("o1")[0])
        store.set_entry("access_token:wx1", "secret token", expires_at=1e10)
        # While the store is open, WAL mode keeps its side files on disk.
        for name in FILES:
            assert _mode(path.parent / name) == 0o600, name


def test_new_database_wal_shm_and_key_files_are_0600(tmp_path: Path, open_umask: None) -> None:
    _use(tmp_path / "s.db")
    assert _mode(tmp_path / "s.db") == 0o600


def test_existing_loose_files_are_tightened_with_a_warning(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    _use(path)
    for name in ("s.db", "s.db.key"):
        os.chmod(tmp_path / name, 0o644)
    with caplog.at_level(logging.WARNING, logger="wafer_py"):
        _use(path)
    lines = [r.getMessage() for r in caplog.records]
    warned = [line for line in lines if "accessible to other users" in line]
    assert len(warned) == 2
    assert all("now 0600" in line for line in warned)
    assert "secret token" not in caplog.text
