"""The PostgreSQL store's invalidation channel (triggers and LISTEN/NOTIFY, issue #17):
every change made through another store object is reported, including by plain SQL; a
killed connection and a restart turn it down, and it comes back live after; tables
without the triggers, or a pooler in front, leave it off.

The shared PostgreSQL under a table prefix of this test; a private server
(:mod:`tests.support.pg_instance`) for the restart.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.channels import Recorder, check_every_change
from tests.support.pg_instance import PostgresInstance, require_pg_instance
from tests.support.pgbouncer import PgBouncer, require_pgbouncer
from tests.support.services import drop_namespace, require
from wafer_py.stores import SQLStore
from wafer_py.stores.invalidation import ALL, Invalidation
from wafer_py.stores.sql_notify import PostgresNotifyChannel, notify_schema, parse_payload


@pytest.fixture
def store_url() -> Iterator[str]:
    url = f"{require('postgres')}?table_prefix=tn{secrets.token_hex(4)}_"
    yield url
    drop_namespace(url)


def _watch(store: SQLStore, **timing: float) -> tuple[PostgresNotifyChannel, Recorder]:
    channel = store.invalidation_channel()
    assert isinstance(channel, PostgresNotifyChannel)
    if timing:
        channel = PostgresNotifyChannel(store, **timing)
    recorder = Recorder()
    channel.start(recorder.change, recorder.state)
    return channel, recorder


def _sql(url: str, statement: str) -> None:
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        conn.execute(statement)


def _pid(url: str, application_name: str) -> int:
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchone()
    assert row is not None, "the channel's connection is not in pg_stat_activity"
    return int(row[0])


def test_payloads() -> None:
    assert parse_payload("*") == [ALL]
    assert parse_payload("uo\npen id") == [Invalidation("user", "o\npen id")]
    assert parse_payload("s\na\nb") == [Invalidation("session", "a"), Invalidation("session", "b")]


def test_every_change_is_reported(store_url: str) -> None:
    store, writer = SQLStore.from_url(store_url), SQLStore.from_url(store_url)
    channel, recorder = _watch(store)
    try:
        recorder.wait_live()
        check_every_change(writer, recorder, openid="o'pen\nid")
        prefix = store.table_prefix
        # A touch tells nobody; plain SQL does, and TRUNCATE says "everything".
        recorder.clear()
        writer.ensure_user("o2", unionid=None, profile={}, now=1.0)
        _sql(store_url, f"UPDATE {prefix}users SET phone = '1' WHERE openid = 'o2'")
        recorder.wait_for(Invalidation("user", "o2"))
        _sql(store_url, f"TRUNCATE {prefix}sessions")
        recorder.wait_for(ALL)
    finally:
        channel.close()
        store.close()
        writer.close()
    assert recorder.states[-1] is False


def test_touch_notifies_nobody(store_url: str) -> None:
    from wafer_py.testing import make_session

    store, writer = SQLStore.from_url(store_url), SQLStore.from_url(store_url)
    channel, recorder = _watch(store)
    try:
        recorder.wait_live()
        session, _ = make_session("o1", now=1000.0)
        writer.create_session(session)
        writer.touch_session(session.id, last_seen=1500.0, expires_at=5000.0)
        # Then a change that does notify: once it is here, the touch would be too.
        writer.ensure_user("o1", unionid=None, profile={}, now=1.0)
        writer.update_profile("o1", {"a": 1}, now=2.0)
        recorder.wait_for(Invalidation("user", "o1"))
        assert Invalidation("session", session.id) not in recorder.changes
        # A shortened expiry does notify (an operator ending a session by SQL).
        writer.touch_session(session.id, last_seen=1500.0, expires_at=1600.0)
        recorder.wait_for(Invalidation("session", session.id))
    finally:
        channel.close()
        store.close()
        writer.close()


def test_a_large_purge_is_reported_in_several_notifications(store_url: str) -> None:
    from wafer_py.testing import make_session

    store, writer = SQLStore.from_url(store_url), SQLStore.from_url(store_url)
    channel, recorder = _watch(store)
    try:
        recorder.wait_live()
        sessions = [make_session(f"o{i % 7}", now=0.0, ttl=10)[0] for i in range(600)]
        for session in sessions:
            writer.create_session(session)
        assert writer.purge_expired(100.0) == 600
        recorder.wait_for(*(Invalidation("session", s.id) for s in sessions))
    finally:
        channel.close()
        store.close()
        writer.close()


def test_the_tables_are_migrated_in_place(store_url: str) -> None:
    """Tables of an older release (no triggers) get them at the next start; a start
    with create_tables=False on tables without them leaves the cache off."""
    store = SQLStore.from_url(store_url)
    prefix = store.table_prefix
    store.close()
    for name in ("sessions_ndel", "sessions_nupd", "sessions_ntrunc"):
        _sql(store_url, f"DROP TRIGGER {prefix}{name} ON {prefix}sessions")
    for name in ("users_nchg", "users_ntrunc"):
        _sql(store_url, f"DROP TRIGGER {prefix}{name} ON {prefix}users")

    bare = SQLStore(store_url, create_tables=False)
    channel, recorder = _watch(bare)
    try:
        for thread in channel._threads[:1]:
            thread.join(timeout=20)
        assert not thread.is_alive(), "the channel should refuse without its triggers"
        assert not recorder.states or recorder.states[-1] is False
    finally:
        channel.close()
        bare.close()

    again = SQLStore.from_url(store_url)
    SQLStore.from_url(store_url).close()  # a second start changes nothing
    assert len(notify_schema(prefix)) == 6
    channel, recorder = _watch(again)
    try:
        recorder.wait_live()
    finally:
        channel.close()
        again.close()


def test_overdue_heartbeat_then_a_killed_connection_then_a_restart() -> None:
    require_pg_instance()
    with PostgresInstance() as server:
        url = server.url + "?table_prefix=app_"
        store, writer = SQLStore.from_url(url), SQLStore.from_url(url)
        channel, recorder = _watch(store)
        try:
            recorder.wait_live()
            seen = len(recorder.states)

            # The listening backend stopped: the heartbeat is overdue; it comes back.
            pid = _pid(server.url, channel.name)
            os.kill(pid, signal.SIGSTOP)
            try:
                seen = recorder.wait_state(False, after=seen)
            finally:
                os.kill(pid, signal.SIGCONT)
            seen = recorder.wait_state(True, after=seen)

            _sql(
                server.url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name = '{channel.name}'",
            )
            seen = recorder.wait_state(False, after=seen)
            seen = recorder.wait_state(True, after=seen)

            server.stop()
            seen = recorder.wait_state(False, after=seen)
            server.start()
            seen = recorder.wait_state(True, after=seen, timeout=40)

            writer.ensure_user("o1", unionid=None, profile={}, now=1.0)
            writer.update_profile("o1", {"a": 1}, now=2.0)
            recorder.wait_for(Invalidation("user", "o1"))
        finally:
            channel.close()
            store.close()
            writer.close()


def test_behind_pgbouncer_the_channel_refuses(caplog: pytest.LogCaptureFixture) -> None:
    require_pgbouncer()
    prefix = f"tb{secrets.token_hex(4)}_"
    direct = SQLStore.from_url(f"{require('postgres')}?table_prefix={prefix}")  # the tables
    direct.close()
    try:
        with PgBouncer() as bouncer:
            store = SQLStore.from_url(bouncer.url(f"table_prefix={prefix}"))
            channel, recorder = _watch(store)
            try:
                channel._threads[0].join(timeout=20)
                assert not channel._threads[0].is_alive()
                assert recorder.states == []
                assert "through a pooler" in caplog.text
                assert "direct URL" in caplog.text
            finally:
                channel.close()
                store.close()
    finally:
        drop_namespace(f"{require('postgres')}?table_prefix={prefix}")
