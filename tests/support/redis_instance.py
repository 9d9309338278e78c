"""A private ``redis-server`` for tests that stop, freeze or restart their Redis.

The shared Redis (port 6379) must never be stopped: tests of outages run their own::

    from tests.support.redis_instance import RedisInstance

    def test_outage(tmp_path):
        with RedisInstance(tmp_path, persist=True) as redis_server:
            store = RedisStore.from_url(redis_server.url)
            ...
            redis_server.stop()    # connections are refused from here on
            redis_server.start()   # same port, same data (persist=True)

The instance listens on loopback on a free port, keeps its files (log, append-only file,
cluster config) in the directory it is given, and is stopped when the ``with`` block ends.

* ``persist=True``: an append-only file fsynced on every write, so data survives
  :meth:`~RedisInstance.stop` *and* :meth:`~RedisInstance.kill`; otherwise nothing is kept
  across a restart.
* ``cluster=True``: a one-node Redis Cluster owning every slot. It enforces cluster rules
  (a command or script may touch keys of one hash slot only) while needing one process.

Needs ``redis-server`` (``/usr/bin/redis-server`` or ``$WAFER_TEST_REDIS_SERVER``); a test
calls :func:`require_redis_server` to skip (or under ``CI=true`` fail) without it.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.ci import skip_or_fail
from tests.support.local_servers import LocalServer, find_executable
from tests.support.probe import NotReady, wait_until

__all__ = ["RedisInstance", "require_redis_server", "send"]

#: Seconds to wait for the server to answer (or to exit).
STARTUP_TIMEOUT = 15.0


def redis_server_path() -> str | None:
    """The ``redis-server`` executable, or ``None``."""
    return find_executable("redis-server", env="WAFER_TEST_REDIS_SERVER")


def require_redis_server() -> str:
    """The ``redis-server`` path; skip (or under CI=true fail) when it is not installed."""
    path = redis_server_path()
    if path is None:
        skip_or_fail("redis-server is not installed; set WAFER_TEST_REDIS_SERVER")
    assert path is not None
    return path


def free_port(*, bus: bool = False) -> int:
    """A TCP port on loopback that nothing listens on right now. With ``bus``, one whose
    cluster bus port (10 000 higher, so at most 65 535) is free too."""
    if not bus:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port
    for port in random.sample(range(20_000, 55_536), 200):
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for a cluster node")


def send(port: int, *args: str, timeout: float = 1.0) -> str:
    """Send one command to ``127.0.0.1:port``; the reply as text: a status (``PONG``), an
    error (``ERR ...``), a number, or the body of a bulk string (``INFO``)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(payload.encode())
        reader = conn.makefile("rb")
        line = reader.readline()
        if not line.startswith(b"$"):
            return line[1:].decode(errors="replace").rstrip("\r\n")
        size = int(line[1:])
        return "" if size < 0 else reader.read(size).decode(errors="replace")


class RedisInstance(LocalServer):
    """One ``redis-server`` process on ``127.0.0.1:<port>``, files in ``directory``.

    A context manager: entering starts it, leaving stops it (the files stay in
    ``directory``, which the caller owns, e.g. pytest's ``tmp_path``).

    :meth:`start` and :meth:`stop` may be called any number of times; the port and the
    directory stay the same, so a restarted server is found at the same :attr:`url`.
    """

    def __init__(
        self, directory: Path, *, persist: bool = False, cluster: bool = False, port: int = 0
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.persist = persist
        self.cluster = cluster
        self.port = port or free_port(bus=cluster)
        self.log = self.directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisInstance(port={self.port}, persist={self.persist}, {state})"

    def _arguments(self) -> list[str]:
        args = [
            require_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.log),
            "--daemonize", "no",
            "--save", "",
        ]  # fmt: skip
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        return args

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        self._process = subprocess.Popen(
            self._arguments(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until(lambda: send(self.port, "PING") == "PONG", "to answer PING")
        if self.cluster:
            # A new node owns no slot; one restarted from nodes.conf keeps them.
            send(self.port, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            self._wait_until(
                lambda: "cluster_state:ok" in send(self.port, "CLUSTER", "INFO"),
                "to report cluster_state:ok",
            )

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        def exited() -> str | None:
            process = self._process
            if process is None or process.poll() is not None:
                return f"see {self.log}:\n{self._tail()}"
            return None

        try:
            wait_until(ready, f"redis-server {what}", timeout=STARTUP_TIMEOUT, exited=exited)
        except NotReady as exc:
            self.kill()
            raise RuntimeError(f"redis-server did not start: {exc}") from None

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM) and wait for it: connections are refused
        until :meth:`start`. With ``persist=True`` its data is on disk."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), like a crash."""
        self._end(signal.SIGKILL)

    def _end(self, how: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        self.thaw()
        if process.poll() is None:
            process.send_signal(how)
            try:
                process.wait(STARTUP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def freeze(self) -> None:
        """Suspend the server (SIGSTOP): it accepts connections but answers nothing, so
        clients run into their socket timeouts. :meth:`thaw` resumes it."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a server :meth:`freeze` suspended."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGCONT)
