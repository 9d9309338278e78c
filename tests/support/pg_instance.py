"""A private PostgreSQL server, for tests that stop and start it (store outages).

It never touches the shared server on port 5432: :class:`PostgresInstance` makes a new
cluster with ``initdb`` in a temporary directory and runs it on a free loopback port with
trust authentication::

    with PostgresInstance(tmp_path) as pg:
        store = SQLStore(pg.url)
        pg.stop()   # fast shutdown: the store's connections drop
        pg.start()  # the same port, the data kept

``initdb`` refuses to run as root, so under root the server's commands run as the
``postgres`` OS user (``runuser``), in a directory that user owns. The server is stopped
and its directory removed on exit from the ``with`` block, or at interpreter exit if a
test never got there.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path

from tests.support.app_process import free_port
from tests.support.ci import skip_or_fail
from tests.support.local_servers import LocalServer

__all__ = ["PostgresInstance", "require_pg_instance", "unavailable_reason"]

_OS_USER = "postgres"


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or PATH's."""
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable_reason() -> str | None:
    """Why a private server cannot be made here, or ``None`` if it can."""
    if _bin_dir() is None:
        return "PostgreSQL's initdb is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_OS_USER)
        except KeyError:
            return f"running as root and there is no {_OS_USER!r} OS user to run initdb"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def require_pg_instance() -> None:
    """Skip (or under ``CI=true`` fail) when a private server cannot be made here."""
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def _command(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", _OS_USER, "--", *args]
    return args


def _remove(root: Path, pg_ctl: Path, data: Path) -> None:
    """Stop the server if it runs (immediately: it is being thrown away) and delete it."""
    if (data / "postmaster.pid").exists():
        subprocess.run(  # best effort: the directory goes anyway
            _command([str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            cwd=root,
            capture_output=True,
            timeout=60,
        )
    shutil.rmtree(root, ignore_errors=True)


class PostgresInstance(LocalServer):
    """A throwaway PostgreSQL cluster on ``127.0.0.1:<port>``; :attr:`url` reaches it.

    ``base`` is where to put it when the ``postgres`` user can write there (pytest's
    ``tmp_path`` usually is private to root: then the system's temporary directory).
    """

    def __init__(self, base: Path | None = None) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        bin_dir = _bin_dir()
        assert bin_dir is not None
        self._initdb = bin_dir / "initdb"
        self._pg_ctl = bin_dir / "pg_ctl"
        self.port = free_port()
        self.root = self._make_root(base)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._finalizer = weakref.finalize(self, _remove, self.root, self._pg_ctl, self.data)
        self._run(
            str(self._initdb),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"\nport = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 16MB\nmax_connections = 50\n"
            )

    @property
    def url(self) -> str:
        """A URL for the superuser ``postgres``, database ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server (on the same port each time) and wait until it accepts."""
        self._run(str(self._pg_ctl), "-D", str(self.data), "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients are disconnected) or ``immediate`` (a crash)."""
        self._run(str(self._pg_ctl), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        """Stop the server and delete its files."""
        self._finalizer()

    def _make_root(self, base: Path | None) -> Path:
        owner = pwd.getpwnam(_OS_USER) if os.geteuid() == 0 else None
        for where in (base, None):
            root = Path(tempfile.mkdtemp(prefix="wafer-pg-", dir=where))
            if owner is None:
                return root
            os.chown(root, owner.pw_uid, owner.pw_gid)
            reachable = subprocess.run(
                _command(["test", "-w", str(root)]), check=False, capture_output=True
            )
            if reachable.returncode == 0:
                return root
            shutil.rmtree(root)
        raise RuntimeError(f"the {_OS_USER} user cannot write a temporary directory")

    def _run(self, *args: str) -> None:
        result = subprocess.run(  # checked below, to report the server's log
            _command(list(args)),
            check=False,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LC_ALL": "C"},
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{Path(args[0]).name} {args[-1]} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )
