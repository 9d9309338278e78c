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
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.ci import skip_or_fail
from tests.support.local_servers import LocalServer, find_executable
from tests.support.probe import NotReady, wait_until
from tests.support.redis_instance import RedisInstance, free_port, send
from tests.support.tls_certs import CertificateAuthority

__all__ = ["SERVICE", "SentinelCluster", "require_redis_sentinel", "tls_sentinel"]

#: The name the sentinels know the master by.
SERVICE = "wafer"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
#: Seconds to wait for the deployment to settle, and for a failover.
SETTLE_TIMEOUT = 60.0


def require_redis_sentinel() -> str:
    """The ``redis-sentinel`` path; skip (or under CI=true fail) when it is missing."""
    found = find_executable("redis-sentinel", env="WAFER_TEST_REDIS_SENTINEL")
    if found is None:
        configured = os.environ.get("WAFER_TEST_REDIS_SENTINEL")
        where = f"WAFER_TEST_REDIS_SENTINEL={configured}" if configured else "on PATH"
        skip_or_fail(f"redis-sentinel is not installed ({where}); set WAFER_TEST_REDIS_SENTINEL")
    assert found is not None
    return found


class _Node(RedisInstance):
    """A ``redis-server``, optionally the replica of another."""

    def __init__(
        self,
        directory: Path,
        *,
        replica_of: int | None = None,
        pinned: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(directory)
        self.replica_of = replica_of
        self.pinned = pinned
        self.extra = list(extra)

    def _arguments(self) -> list[str]:
        args = super()._arguments() + self.extra
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        if self.pinned:  # no command to make it a replica: Sentinel cannot demote it
            args += ["--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""]
        return args


class _Sentinel:
    """One ``redis-sentinel`` process with its own (rewritten by it) configuration,
    watching the server on ``master_port`` as ``service``."""

    def __init__(
        self,
        directory: Path,
        master_port: int,
        *,
        service: str = SERVICE,
        down_after_ms: int = DOWN_AFTER_MS,
        quorum: int = 2,
        extra: str = "",
    ) -> None:
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
            f"{extra}"
            f"sentinel monitor {service} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {service} 1\n"
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


class SentinelCluster(LocalServer):
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

    @contextmanager
    def misled_sentinel(self, service: str) -> Iterator[int]:
        """A lone sentinel that takes the replica for the master of ``service``, as the
        sentinels do a demoted master until they catch up; yields its port. Writes
        through it get READONLY. (One sentinel, a quorum of two and a minute before it
        calls anything down: it never fails anything over.)"""
        lone = _Sentinel(
            self.directory / f"sentinel-{service}",
            self.replica.port,
            service=service,
            down_after_ms=60_000,
        )
        try:

            def names_the_replica() -> bool:
                with lone.client() as client:
                    return int(client.sentinel_master(service)["port"]) == self.replica.port

            wait_until(names_the_replica, f"the lone sentinel :{lone.port}", exited=lone.exited)
            yield lone.port
        finally:
            lone.stop()

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()


# ------------------------------------------------------------------------------ TLS
@contextmanager
def tls_sentinel(directory: Path, service: str = SERVICE) -> Iterator[tuple[int, Path]]:
    """A master and one sentinel (quorum 1) that speak TLS to their clients and to each
    other; yields the sentinel's TLS port and the CA file that signed their certificate.
    (Each also keeps a plaintext port, for this helper's own checks.)"""
    require_redis_sentinel()
    issued = CertificateAuthority("wafer test CA").issue_server(directory / "tls", ("127.0.0.1",))
    ca, cert, key = issued.ca, issued.cert, issued.key
    options = {
        "tls-cert-file": cert,
        "tls-key-file": key,
        "tls-ca-cert-file": ca,
        "tls-auth-clients": "no",
        "tls-replication": "yes",  # a sentinel talks TLS to the servers (and its peers)
    }
    master_tls = free_port()
    node = _Node(
        directory / "node",
        extra=["--tls-port", str(master_tls)]
        + [a for k, v in options.items() for a in (f"--{k}", str(v))],
    )
    node.start()
    sentinel: _Sentinel | None = None
    try:
        sentinel_tls = free_port()
        sentinel = _Sentinel(
            directory / "sentinel",
            master_tls,
            service=service,
            quorum=1,
            extra=f"tls-port {sentinel_tls}\n" + "".join(f"{k} {v}\n" for k, v in options.items()),
        )
        watcher = sentinel

        def connected() -> bool:
            with watcher.client() as client:
                state = client.sentinel_master(service)
            return not state["is_disconnected"] and state["role-reported"] == "master"

        wait_until(connected, "the TLS sentinel to reach the master", exited=sentinel.exited)
        yield sentinel_tls, ca
    finally:
        if sentinel is not None:
            sentinel.stop()
        node.stop()
