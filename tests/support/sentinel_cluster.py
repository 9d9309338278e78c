"""A private Redis Sentinel deployment for tests: a master, a replica, three sentinels.

Every process listens on loopback on a free port and keeps its files in the directory
it is given; leaving the ``with`` block stops them all::

    from tests.support.sentinel_cluster import SentinelCluster

    def test_failover(tmp_path):
        with SentinelCluster(tmp_path) as cluster:
            store = RedisStore.from_url(cluster.url())
            ...
            cluster.wait_replicated()
            old = cluster.kill_master()         # SIGKILL, like a crash
            new = cluster.wait_for_failover(old)  # the replica, promoted

The sentinels watch the service :data:`SERVICE` with a quorum of two, call the master down
after :data:`DOWN_AFTER_MS` and retry a failover after :data:`FAILOVER_TIMEOUT_MS`, so a
failover takes seconds, not minutes. Needs ``redis-server`` and ``redis-sentinel``
(``$WAFER_TEST_REDIS_SENTINEL`` names another); without them a test skips, or under
``CI=true`` fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

import redis

from tests.support.ci import skip_or_fail
from tests.support.probe import NotReady, wait_until
from tests.support.redis_instance import RedisInstance, free_port, send

__all__ = ["SERVICE", "SentinelCluster", "require_redis_sentinel"]

#: The name the sentinels know the master by.
SERVICE = "wafer"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
#: Seconds to wait for the deployment to settle, and for a failover.
SETTLE_TIMEOUT = 60.0


def require_redis_sentinel() -> str:
    """The ``redis-sentinel`` path; skip (or under CI=true fail) when it is missing."""
    path = os.environ.get("WAFER_TEST_REDIS_SENTINEL") or shutil.which("redis-sentinel")
    if path is None and os.access("/usr/bin/redis-sentinel", os.X_OK):
        path = "/usr/bin/redis-sentinel"
    if path is None:
        skip_or_fail("redis-sentinel is not installed; set WAFER_TEST_REDIS_SENTINEL")
    assert path is not None
    return path


class _Node(RedisInstance):
    """A ``redis-server``, optionally the replica of another."""

    def __init__(
        self, directory: Path, *, replica_of: int | None = None, pinned: bool = False
    ) -> None:
        super().__init__(directory)
        self.replica_of = replica_of
        self.pinned = pinned

    def _arguments(self) -> list[str]:
        args = super()._arguments()
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        if self.pinned:  # no command to make it a replica: Sentinel cannot demote it
            args += ["--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""]
        return args


class _Sentinel:
    """One ``redis-sentinel`` process with its own (rewritten by it) configuration."""

    def __init__(self, directory: Path, master_port: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = directory / "sentinel.log"
        self.config = directory / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            "daemonize no\n"
            f"logfile {self.log}\n"
            f"dir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.process = subprocess.Popen(
            [require_redis_sentinel(), str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def exited(self) -> str | None:
        if self.process.poll() is None:
            return None
        return f"exit status {self.process.poll()}; see {self.log}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class SentinelCluster:
    """A master, one replica and three sentinels on loopback (a context manager).

    With ``pinned_master``, the first master cannot be demoted (its REPLICAOF command is
    renamed away): after a coordinated failover it goes on answering as a master, as
    any old master does for the seconds before Sentinel demotes it.
    """

    def __init__(self, directory: Path, *, pinned_master: bool = False) -> None:
        self.directory = Path(directory)
        self.master = _Node(self.directory / "node-a", pinned=pinned_master)
        self.replica = _Node(self.directory / "node-b", replica_of=self.master.port)
        self.sentinels: list[_Sentinel] = []

    def url(self, query: str = "", *, scheme: str = "redis+sentinel") -> str:
        """``redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/wafer/0[?query]``."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"{scheme}://{hosts}/{SERVICE}/0" + (f"?{query}" if query else "")

    @property
    def nodes(self) -> list[_Node]:
        return [self.master, self.replica]

    def start(self) -> None:
        """Start every process; return once the replica is in sync and each sentinel
        knows the master, the replica and the two other sentinels."""
        require_redis_sentinel()
        self.master.start()
        self.replica.start()
        wait_until(
            lambda: "master_link_status:up" in send(self.replica.port, "INFO", "replication"),
            "the replica to sync with the master",
            timeout=SETTLE_TIMEOUT,
        )
        for i in range(3):
            self.sentinels.append(_Sentinel(self.directory / f"sentinel-{i}", self.master.port))
        for sentinel in self.sentinels:
            self._settled(sentinel)

    def _settled(self, sentinel: _Sentinel) -> None:
        def ready() -> bool:
            with sentinel.client() as client:
                state = client.sentinel_master(SERVICE)
            return int(state["num-other-sentinels"]) == 2 and int(state["num-slaves"]) == 1

        try:
            wait_until(
                ready,
                f"sentinel :{sentinel.port} to see its peers and the replica",
                timeout=SETTLE_TIMEOUT,
                exited=sentinel.exited,
            )
        except NotReady as exc:
            self.stop()
            raise RuntimeError(str(exc)) from None

    def master_port(self) -> int:
        """The master's port, as the first sentinel tells it."""
        with self.sentinels[0].client() as client:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def node(self, port: int) -> _Node:
        return next(n for n in self.nodes if n.port == port)

    def wait_replicated(self) -> None:
        """Return once the replica has every write the master took so far."""
        port = self.master_port()
        wait_until(
            lambda: send(port, "WAIT", "1", "1000", timeout=3.0) == "1",
            "the replica to acknowledge the master's writes",
            timeout=SETTLE_TIMEOUT,
        )

    def kill_master(self) -> int:
        """SIGKILL the master (a crash); its port."""
        port = self.master_port()
        self.node(port).kill()
        return port

    def wait_for_failover(self, old: int) -> int:
        """Wait until every sentinel names a new master and it acts as one; its port."""

        def promoted() -> int | None:
            ports = set()
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    ports.add(int(client.sentinel_get_master_addr_by_name(SERVICE)[1]))
            if len(ports) != 1 or old in ports:
                return None
            (port,) = ports
            return port if "role:master" in send(port, "INFO", "replication") else None

        return wait_until(promoted, "a failover to the replica", timeout=SETTLE_TIMEOUT)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> SentinelCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
