"""A private PgBouncer in transaction pooling mode, in front of the shared PostgreSQL.

:class:`PgBouncer` runs Debian's ``pgbouncer`` on a free loopback port with trust
authentication and a small server pool (``pool_size`` server connections per database
and user, 3 by default), so that many clients share few server connections and a
statement's server connection is rarely the one its previous statement had::

    with PgBouncer() as bouncer:
        store = SQLStore(bouncer.url("prepare_threshold=none"))

PgBouncer refuses to run as root: under root it is started with ``-u postgres`` (it
drops to that user after reading its configuration) in a directory that user owns.
It is stopped and its directory removed on exit from the ``with`` block.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support import services
from tests.support.app_process import free_port
from tests.support.ci import skip_or_fail
from tests.support.local_servers import LocalServer, find_executable
from tests.support.probe import exit_status, wait_until

__all__ = ["PgBouncer", "require_pgbouncer"]

_OS_USER = "postgres"


def unavailable_reason() -> str | None:
    """Why a PgBouncer cannot be started here, or ``None`` if it can."""
    if find_executable("pgbouncer") is None:
        return "pgbouncer is not installed (apt-get install pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_OS_USER)
        except KeyError:
            return f"running as root and there is no {_OS_USER!r} OS user to run pgbouncer as"
    return None


def require_pgbouncer() -> None:
    """Skip (or under ``CI=true`` fail) when PgBouncer or the shared PostgreSQL is missing."""
    services.require("postgres")
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class PgBouncer(LocalServer):
    """PgBouncer on ``127.0.0.1:<port>`` in front of the shared PostgreSQL
    (:func:`tests.support.services.url`), one database: the shared server's."""

    def __init__(self, *, pool_size: int = 3, pool_mode: str = "transaction") -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        upstream = urlsplit(services.url("postgres"))
        self.user = unquote(upstream.username or "postgres")
        self.database = unquote(upstream.path.lstrip("/")) or "postgres"
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wafer-pgbouncer-"))
        self.log = self.root / "pgbouncer.log"
        self._process: subprocess.Popen[bytes] | None = None
        password = unquote(upstream.password or "")
        server = f"host={upstream.hostname or '127.0.0.1'} port={upstream.port or 5432}"
        server += f" dbname={self.database}" + (f" password={password}" if password else "")
        (self.root / "users.txt").write_text(f"{_quote(self.user)} {_quote(password)}\n")
        (self.root / "pgbouncer.ini").write_text(
            f"[databases]\n{self.database} = {server}\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 1000\nreserve_pool_size = 0\n"
            f"admin_users = {self.user}\n"
            f"logfile = {self.log}\npidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_OS_USER)
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)

    def url(self, query: str = "") -> str:
        """A store URL through the bouncer, with ``query`` (``a=1&b=2``) if given."""
        base = f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"
        return f"{base}?{query}" if query else base

    def start(self) -> None:
        """Start it and wait until it hands out a working server connection."""
        binary = find_executable("pgbouncer")
        assert binary is not None
        as_user = ["-u", _OS_USER] if os.geteuid() == 0 else []
        self._process = subprocess.Popen(
            [binary, *as_user, str(self.root / "pgbouncer.ini")],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self._process
        wait_until(
            lambda: self._answers(),
            "pgbouncer",
            exited=lambda: None if process.poll() is None else self._tail(exit_status(process)),
        )

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2, prepare_threshold=None) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    def _tail(self, why: str | None) -> str:
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return f"{why}\n{log}"

    def show(self, what: str) -> list[dict[str, Any]]:
        """The admin console's ``SHOW <what>`` (``POOLS``, ``SERVERS``...), as dicts."""
        import psycopg

        admin = f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        # The console speaks the simple query protocol only: a client-side cursor.
        with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cur = conn.execute(f"SHOW {what}")
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def close(self) -> None:
        """Stop it and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
