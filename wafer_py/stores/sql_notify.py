"""The PostgreSQL store's invalidation channel: triggers that NOTIFY, one connection that
LISTENs (issue #17).

Triggers on the store's tables (created with them, :func:`notify_schema`) send a
notification on the channel ``<table_prefix>changes`` whenever what a process may have
cached changes, whoever writes it (any app process, the CLI, a ``psql`` session):

* a session deleted (revoke, revoke of a user, purge, the per-user cap's eviction):
  ``s`` and the ids, one per line (one notification per statement, split under
  PostgreSQL's 8000-byte payload limit);
* a session updated in anything but ``last_seen`` or a later ``expires_at`` (a reseal;
  not a touch): ``s`` and its id;
* a user updated or deleted (profile, phone, unionid): ``u`` and the openid;
* ``TRUNCATE`` of either table: ``*``, everything.

The store's write methods are unchanged: the database does the telling. A touch
notifies nobody (the trigger's ``WHEN`` is evaluated without calling the function).

A dedicated psycopg connection per process (autocommit) LISTENs on the channel; the
heartbeat is a ``pg_notify`` on a second one, opened as the pool's are (so to where the
store writes), and its return proves that what was committed before it has been heard
(PostgreSQL delivers in commit order).

LISTEN needs a session of its own on the server: behind PgBouncer in transaction mode
it would be lost with the server connection it ran on. A channel whose connection goes
through a pooler (noticed as :mod:`.sql_postgres` does) refuses, with an error line, and
the cache stays off: give the store a direct URL to PostgreSQL to cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .heartbeat import Beat, HeartbeatChannel
from .invalidation import ALL, Invalidation

if TYPE_CHECKING:
    from .sql import SQLStore

__all__ = ["PostgresNotifyChannel", "channel_name", "notify_schema"]


def channel_name(prefix: str) -> str:
    """The NOTIFY channel of a table prefix (at most 47 characters: under 63)."""
    return f"{prefix}changes"


# Dollar-quoted bodies: the statements are run once formatted with the prefix ({p}) and
# the channel ({c}); braces of the SQL itself are doubled.
_FUNCTION = """CREATE OR REPLACE FUNCTION {p}notify_change() RETURNS trigger
LANGUAGE plpgsql AS $wafer$
DECLARE
  batch text := '';
  one text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('{c}', '*');
  ELSIF TG_LEVEL = 'STATEMENT' THEN
    -- Deleted sessions, from the statement's transition table.
    FOR one IN SELECT id FROM gone LOOP
      IF strpos(one, E'\\n') > 0 OR octet_length(one) > 1000 THEN
        PERFORM pg_notify('{c}', '*');
        RETURN NULL;
      END IF;
      IF octet_length(batch) + octet_length(one) > 7000 THEN
        PERFORM pg_notify('{c}', 's' || batch);
        batch := '';
      END IF;
      batch := batch || E'\\n' || one;
    END LOOP;
    IF batch <> '' THEN
      PERFORM pg_notify('{c}', 's' || batch);
    END IF;
  ELSIF TG_TABLE_NAME = '{p}users' THEN
    IF octet_length(OLD.openid) > 7000 THEN
      PERFORM pg_notify('{c}', '*');
    ELSE
      PERFORM pg_notify('{c}', 'u' || OLD.openid);
    END IF;
  ELSE
    PERFORM pg_notify('{c}', 's' || E'\\n' || OLD.id);
  END IF;
  RETURN NULL;
END
$wafer$"""

#: Triggers (name, table, definition after the name); created when missing.
_TRIGGERS = (
    (
        "{p}sessions_ndel",
        "{p}sessions",
        "AFTER DELETE ON {p}sessions REFERENCING OLD TABLE AS gone "
        "FOR EACH STATEMENT EXECUTE FUNCTION {p}notify_change()",
    ),
    (
        "{p}sessions_nupd",
        "{p}sessions",
        "AFTER UPDATE ON {p}sessions FOR EACH ROW WHEN ("
        "OLD.id IS DISTINCT FROM NEW.id OR OLD.openid IS DISTINCT FROM NEW.openid "
        "OR OLD.skey_hash IS DISTINCT FROM NEW.skey_hash "
        "OR OLD.sealed_session_key IS DISTINCT FROM NEW.sealed_session_key "
        "OR OLD.created_at IS DISTINCT FROM NEW.created_at "
        "OR NOT (NEW.expires_at >= OLD.expires_at)) "
        "EXECUTE FUNCTION {p}notify_change()",
    ),
    (
        "{p}sessions_ntrunc",
        "{p}sessions",
        "AFTER TRUNCATE ON {p}sessions FOR EACH STATEMENT EXECUTE FUNCTION {p}notify_change()",
    ),
    (
        "{p}users_nchg",
        "{p}users",
        "AFTER UPDATE OR DELETE ON {p}users FOR EACH ROW EXECUTE FUNCTION {p}notify_change()",
    ),
    (
        "{p}users_ntrunc",
        "{p}users",
        "AFTER TRUNCATE ON {p}users FOR EACH STATEMENT EXECUTE FUNCTION {p}notify_change()",
    ),
)

# A trigger is created only when missing: CREATE TRIGGER locks its table against writes,
# which a process starting under load should not do each time.
_CREATE_MISSING = """DO $wafer$ BEGIN
IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{name}'
               AND tgrelid = '{table}'::regclass) THEN
  CREATE TRIGGER {name} {definition};
END IF;
END $wafer$"""


def notify_schema(prefix: str) -> list[str]:
    """The statements that add the triggers to a store's tables (run after them, under
    the store's table-creation lock). Idempotent: an existing deployment gets them at
    its next start, and later starts change nothing."""
    fill = {"p": prefix, "c": channel_name(prefix)}
    statements = [_FUNCTION.format(**fill)]
    for name, table, definition in _TRIGGERS:
        statements.append(
            _CREATE_MISSING.format(
                name=name.format(**fill),
                table=table.format(**fill),
                definition=definition.format(**fill),
            )
        )
    return statements


def parse_payload(payload: str) -> list[Invalidation]:
    """The invalidations a notification's payload names."""
    if payload == "*":
        return [ALL]
    if payload.startswith("u"):
        return [Invalidation("user", payload[1:])]
    if payload.startswith("s"):
        return [Invalidation("session", i) for i in payload[1:].split("\n") if i]
    return []


class PostgresNotifyChannel(HeartbeatChannel):
    """Invalidations from the triggers' notifications, for one PostgreSQL
    :class:`~.sql.SQLStore` (whose ``connect`` makes the listening connection and the
    heartbeat's). Heartbeat timing: see :class:`~.heartbeat.HeartbeatChannel`."""

    kind = "PostgreSQL"

    def __init__(self, store: SQLStore, **timing: float) -> None:
        super().__init__(**timing)
        self._store = store
        self.channel = channel_name(store.table_prefix)
        self.name = f"wafer_py invalidation {self.channel_id}"
        self._conn: Any = None
        self._pooler: str | None = None
        self._missing: list[str] = []
        self._beater: Any = None

    def _connect(self) -> None:
        from psycopg import sql

        conn = self._store._connect()
        self._conn = conn
        conn.autocommit = True
        row = conn.execute("SELECT pg_backend_pid()", prepare=False).fetchone()
        if row is not None and row[0] != conn.info.backend_pid:
            self._pooler = f"{conn.info.host}:{conn.info.port}"
            return
        # A name an operator recognises in pg_stat_activity (and a test can terminate).
        conn.execute("SELECT set_config('application_name', %(n)s, false)", {"n": self.name})
        if conn.info.server_version >= 140000:  # a listener is idle by design
            conn.execute("SET idle_session_timeout = 0")
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        # Without its triggers (tables made with create_tables=False, a trigger
        # disabled) the channel would hear heartbeats and no change: refuse.
        names = [name.format(p=self._store.table_prefix) for name, _, _ in _TRIGGERS]
        row = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = ANY(%(names)s) "
            "AND tgenabled IN ('O', 'A') AND tgrelid IN "
            "(to_regclass(%(p)s || 'sessions'), to_regclass(%(p)s || 'users'))",
            {"names": names, "p": self._store.table_prefix},
        ).fetchone()
        if row is None or row[0] != len(names):
            self._missing = names

    def _fatal(self) -> str | None:
        if self._missing:
            return (
                f"the PostgreSQL store's tables lack the triggers that tell of changes "
                f"(one of {', '.join(self._missing)} is missing or disabled): start the "
                "store once with create_tables=True, or run the statements of "
                "wafer_py.stores.sql_notify.notify_schema() (docs/operators-postgresql.md)"
            )
        if self._pooler is None:
            return None
        return (
            f"the PostgreSQL store connects through a pooler ({self._pooler}): LISTEN "
            "needs a session of its own on the server (PgBouncer's transaction mode "
            "loses it), so invalidations cannot be heard; give the store a direct URL "
            "to PostgreSQL to use the session cache"
        )

    def _read(self, timeout: float) -> Iterator[Invalidation | Beat]:
        # A generator: each notification is handled as it arrives, not at the timeout.
        for note in self._conn.notifies(timeout=timeout):
            payload: str = note.payload
            if payload.startswith("h"):
                yield Beat(payload[1:])
            else:
                yield from parse_payload(payload)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a connection already broken
                conn.close()

    def _beat(self, token: str) -> None:
        # A connection of its own, opened like the pool's (so to the same server): a
        # pool busy with requests must not hold the heartbeat up and turn the cache off.
        if self._beater is None:
            self._beater = self._store._connect()
        try:
            self._beater.execute(
                "SELECT pg_notify(%(c)s, %(p)s)", {"c": self.channel, "p": "h" + token}
            )
        except BaseException:
            beater, self._beater = self._beater, None
            with contextlib.suppress(Exception):
                beater.close()
            raise

    def close(self) -> None:
        super().close()
        beater, self._beater = self._beater, None
        if beater is not None:
            with contextlib.suppress(Exception):
                beater.close()

    def _redact(self, text: str) -> str:
        password = self._store._password
        return text.replace(password, "***") if password else text
