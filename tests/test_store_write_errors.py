"""A failed write is reported with its own error, never the rollback's that follows it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import fresh_store_url
from wafer_py.exceptions import StoreUnavailable
from wafer_py.stores import SQLiteStore, open_store
from wafer_py.stores.base import OUTAGE, call_store
from wafer_py.stores.sql import SQLStore


@pytest.fixture(autouse=True)
def _no_outage_left() -> Iterator[None]:
    yield
    OUTAGE.down = False


def test_sqlite_full_database_names_the_full_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLITE_FULL, for real: the file may not grow past its current pages. SQLite rolls
    the transaction back itself, so an explicit ROLLBACK then fails."""
    with SQLiteStore(tmp_path / "s.db") as store:
        store.set_entry("kept", "before", expires_at=1e10)
        conn = store._conn()  # this thread's connection: the one the writes below use
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with (
            caplog.at_level(logging.DEBUG, logger="wafer_py"),
            pytest.raises(StoreUnavailable) as failed,
        ):
            for i in range(100):
                call_store(store.set_entry, f"big{i}", "x" * 8000, expires_at=1e10)
        assert "full" in (failed.value.detail or "")
        assert "rollback" not in (failed.value.detail or "")
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors and "full" in errors[0] and "rollback" not in errors[0]
        assert store.get_entry("kept", now=0.0) == "before"
        conn.execute("PRAGMA max_page_count = 1073741823")
        store.set_entry("after", "ok", expires_at=1e10)  # the store goes on
        assert store.get_entry("after", now=0.0) == "ok"


def test_postgres_lost_connection_names_the_statement_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the connection inside a transaction: the statement's error is
    the one reported, the rollback's ("the connection is closed") only logged, and the
    dead connection is not given back to the pool."""
    with fresh_store_url("postgres", tmp_path) as url:
        store = open_store(url)
        assert isinstance(store, SQLStore)
        try:
            with (
                caplog.at_level(logging.WARNING, logger="wafer_py"),
                pytest.raises(StoreUnavailable) as failed,
                store._transaction() as cur,
            ):
                cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            assert "terminating connection" in (failed.value.detail or "")
            assert "rollback failed" in caplog.text
            store.set_entry("after", "ok", expires_at=1e10)  # a new connection
            assert store.get_entry("after", now=0.0) == "ok"
        finally:
            store.close()
