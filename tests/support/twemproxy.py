"""Two ``redis-server`` shards behind twemproxy (``nutcracker``): the stand-in for the
managed "cluster" editions that are a proxy in front of shards::

    from tests.support.twemproxy import Twemproxy

    def test_through_a_proxy(tmp_path):
        with Twemproxy(tmp_path) as proxy:
            store = RedisStore.from_url(proxy.url + "?cluster=proxy")
            ...
            proxy.shards[0].port   # a backend (a RedisInstance), to read or stop directly

The proxy listens on loopback on a free port and shards keys by their ``{...}`` hash tag
(``hash_tag: "{}"``, ketama distribution, hosts never ejected); its statistics port is
free too, so several runs can coexist. Everything stops when the ``with`` block ends.
With ``persist=True`` the shards keep their data across a stop and start.

Needs ``nutcracker`` (``/usr/sbin/nutcracker`` or ``$WAFER_TEST_NUTCRACKER``) and
``redis-server``: without them a test skips, or under ``CI=true`` fails.
"""

from __future__ import annotations

import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path

from tests.support.ci import skip_or_fail
from tests.support.local_servers import LocalServer, find_executable
from tests.support.probe import NotReady, wait_until
from tests.support.redis_instance import RedisInstance, free_port, require_redis_server, send

__all__ = ["Twemproxy", "require_nutcracker"]

#: Seconds to wait for the proxy to answer through to both shards.
STARTUP_TIMEOUT = 15.0


def nutcracker_path() -> str | None:
    """The ``nutcracker`` executable, or ``None``."""
    return find_executable("nutcracker", env="WAFER_TEST_NUTCRACKER")


def require_nutcracker() -> str:
    """The ``nutcracker`` path; skip (or under CI=true fail) when it is not installed."""
    path = nutcracker_path()
    if path is None:
        skip_or_fail("nutcracker (twemproxy) is not installed; set WAFER_TEST_NUTCRACKER")
    assert path is not None
    return path


class Twemproxy(LocalServer):
    """``nutcracker`` on ``127.0.0.1:<port>`` in front of private Redis servers (two by
    default, :attr:`shards`).

    A context manager: entering starts the shards and the proxy and waits until it
    forwards commands; leaving stops them all. Files (config, logs, shard data) go to
    ``directory``, which the caller owns.
    """

    def __init__(self, directory: Path, *, shards: int = 2, persist: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.stats_port = free_port()
        self.config = self.directory / "nutcracker.yml"
        self.log = self.directory / "nutcracker.log"
        self.shards = [
            RedisInstance(self.directory / f"shard{i}", persist=persist) for i in range(shards)
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self._stack = ExitStack()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``: the proxy (it has no SELECT: database 0 only)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def __repr__(self) -> str:
        ports = [s.port for s in self.shards]
        return f"Twemproxy(port={self.port}, shards={ports})"

    def _write_config(self) -> None:
        servers = "".join(
            f"    - 127.0.0.1:{s.port}:1 shard{i}\n" for i, s in enumerate(self.shards)
        )
        self.config.write_text(
            "wafer:\n"
            f"  listen: 127.0.0.1:{self.port}\n"
            "  hash: fnv1a_64\n"
            '  hash_tag: "{}"\n'
            "  distribution: ketama\n"
            "  auto_eject_hosts: false\n"
            "  redis: true\n"
            "  timeout: 2000\n"
            "  server_retry_timeout: 200\n"
            "  preconnect: true\n"
            "  servers:\n" + servers
        )

    def start(self) -> None:
        require_redis_server()
        binary = require_nutcracker()
        for shard in self.shards:
            self._stack.enter_context(shard)
        self._write_config()
        checked = subprocess.run(
            [binary, "-t", "-c", str(self.config)], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nutcracker refused {self.config}: {checked.stderr.strip()}")
        self._process = subprocess.Popen(
            [
                binary,
                "-c", str(self.config),
                "-o", str(self.log),
                "-s", str(self.stats_port),
                "-a", "127.0.0.1",
                "-p", str(self.directory / "nutcracker.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait until keys of several tags (so of both shards, almost surely) can be
        written, read and deleted through the proxy."""
        probes = [f"wafer-probe:{{{i}}}" for i in range(8)]

        def ready() -> bool:
            for key in probes:
                if send(self.port, "SET", key, "1") != "OK" or send(self.port, "GET", key) != "1":
                    return False
            return all(send(self.port, "DEL", key) == "1" for key in probes)

        def exited() -> str | None:
            process = self._process
            if process is None or process.poll() is not None:
                return f"see {self.log}:\n{self._tail()}"
            return None

        try:
            wait_until(ready, "nutcracker to proxy", timeout=STARTUP_TIMEOUT, exited=exited)
        except NotReady as exc:
            self.stop()
            raise RuntimeError(f"nutcracker did not start: {exc}") from None

    def shard_of(self, key: str) -> int | None:
        """The index of the shard holding ``key`` (read directly), or ``None``."""
        for i, shard in enumerate(self.shards):
            if send(shard.port, "EXISTS", key) == "1":
                return i
        return None

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STARTUP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._process = None
        self._stack.close()
