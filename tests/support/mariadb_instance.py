"""A private MariaDB server, for tests that need the server configured their way (TLS).

The shared server on port 3306 is never reconfigured: :class:`MariaDBInstance` makes a
data directory with ``mariadb-install-db`` and runs ``mariadbd --no-defaults`` on a free
loopback port, with TLS switched on when given certificate files::

    ca = CertificateAuthority("test CA")
    server = ca.issue_server(tmp_path / "server")
    with MariaDBInstance(tmp_path, tls=server, require_tls=True) as db:
        store = SQLStore(db.url + f"?ssl_ca={server.ca}")

It has a database ``test`` and an account ``wafer`` (password :data:`PASSWORD`, every
privilege on ``test``) that :attr:`MariaDBInstance.url` logs in as; :meth:`admin` runs
statements as root over the Unix socket (no TLS needed there). The server is stopped and
its files removed on exit from the ``with`` block, or at interpreter exit.

Starting waits on the server itself (its socket answering a query) with a generous
deadline, so a loaded two-core machine only makes it slower, never a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path
from typing import Any

from tests.support.app_process import free_port
from tests.support.ci import skip_or_fail
from tests.support.local_servers import LocalServer, find_executable
from tests.support.probe import wait_until
from tests.support.tls_certs import Issued

__all__ = ["PASSWORD", "MariaDBInstance", "require_mariadb_instance"]

#: The ``wafer`` account's password (``@`` and ``/``: the URL must escape it).
PASSWORD = "s3cret@pw/x"
#: Seconds the server may take to accept queries, or to stop.
STARTUP_TIMEOUT = 120.0


def unavailable_reason() -> str | None:
    """Why a private server cannot be made here, or ``None`` if it can."""
    for name in ("mariadbd", "mariadb-install-db"):
        if find_executable(name) is None:
            return f"{name} is not installed (apt-get install mariadb-server)"
    return None


def require_mariadb_instance() -> None:
    """Skip (or under ``CI=true`` fail) when a private server cannot be made here."""
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop the server if it runs: a clean shutdown, killed if it takes too long."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STARTUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _remove(running: list[subprocess.Popen[bytes]], *directories: Path) -> None:
    """Stop the server and delete its files (also at interpreter exit)."""
    for process in running:
        _stop(process)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


#: The longest path a Unix socket may have (``sun_path`` less its NUL).
_SOCKET_PATH_MAX = 107


def _socket_path(root: Path) -> Path:
    """``mariadb.sock`` in ``root``, or in a short directory of its own when ``root`` is
    too deep for a socket (pytest-xdist's ``popen-gwN/``, a long test name)."""
    path = root / "mariadb.sock"
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        return path
    return Path(tempfile.mkdtemp(prefix="wafer-mariadb-sock-")) / "mariadb.sock"


class MariaDBInstance(LocalServer):
    """A throwaway MariaDB on ``127.0.0.1:<port>``; :attr:`url` reaches it.

    ``tls``: the server's certificate, key and CA (TLS off without it). ``require_tls``:
    the server refuses connections that are not encrypted (``require_secure_transport``).
    """

    def __init__(
        self, base: Path | None = None, *, tls: Issued | None = None, require_tls: bool = False
    ) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wafer-mariadb-", dir=base))
        self.data = self.root / "data"
        self.socket = _socket_path(self.root)
        self.log = self.root / "server.log"
        self.tls, self.require_tls = tls, require_tls
        self._running: list[subprocess.Popen[bytes]] = []  # the server, while it runs
        self._finalizer = weakref.finalize(
            self, _remove, self._running, self.root, self.socket.parent
        )
        root_user = ["--user=root"] if os.geteuid() == 0 else []
        install = subprocess.run(  # checked below, to report its output
            [
                str(find_executable("mariadb-install-db")),
                "--no-defaults",
                f"--datadir={self.data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *root_user,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
        if install.returncode != 0:
            self.close()
            raise RuntimeError(f"mariadb-install-db failed:\n{install.stdout}{install.stderr}")

    @property
    def url(self) -> str:
        """``mysql://wafer:<password>@127.0.0.1:<port>/test`` (the password escaped)."""
        return f"mysql://wafer:s3cret%40pw%2Fx@127.0.0.1:{self.port}/test"

    @property
    def running(self) -> bool:
        return bool(self._running) and self._running[0].poll() is None

    def start(self) -> None:
        """Start the server (on the same port each time, the data kept) and wait until
        it answers; make the database and the account if missing."""
        args = [
            str(find_executable("mariadbd")),
            "--no-defaults",
            f"--datadir={self.data}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.root / 'mariadbd.pid'}",
            f"--log-error={self.log}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--innodb-flush-log-at-trx-commit=0",
            "--max-connections=60",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        if self.tls is not None:
            args += [
                f"--ssl-ca={self.tls.ca}",
                f"--ssl-cert={self.tls.cert}",
                f"--ssl-key={self.tls.key}",
            ]
        if self.require_tls:
            args.append("--require-secure-transport=ON")
        self._running[:] = [
            subprocess.Popen(  # stopped by stop() or close()
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        ]
        wait_until(
            self._answers,
            f"MariaDB on port {self.port} (log: {self.log})",
            timeout=STARTUP_TIMEOUT,
            exited=self._exited,
        )
        self.admin(
            "CREATE DATABASE IF NOT EXISTS test",
            f"CREATE USER IF NOT EXISTS 'wafer'@'%' IDENTIFIED BY '{PASSWORD}'",
            "GRANT ALL ON test.* TO 'wafer'@'%'",
        )

    def admin(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run ``statements`` as root over the Unix socket; the last one's rows."""
        import pymysql

        conn = pymysql.connect(
            unix_socket=str(self.socket), user="root", connect_timeout=5, autocommit=True
        )
        try:
            rows: list[tuple[Any, ...]] = []
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def _answers(self) -> bool:
        import pymysql

        try:
            return self.admin("SELECT 1") == [(1,)]
        except pymysql.Error:  # still starting: its socket not there yet, or not ready
            return False

    def _exited(self) -> str | None:
        if self.running:
            return None
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return f"status {self._running[0].returncode if self._running else None}:\n{tail}"

    def stop(self) -> None:
        """Stop the server (a clean shutdown: its clients are disconnected)."""
        for process in self._running:
            _stop(process)
        self._running.clear()

    def close(self) -> None:
        """Stop the server and delete its files."""
        self._finalizer()
