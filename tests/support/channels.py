"""Watching a store's invalidation channel in a test: what it reported, and waits on it.

recorder = Recorder()
channel.start(recorder.change, recorder.state)
recorder.wait_live()
other_store.revoke_session(session.id)
recorder.wait_for(Invalidation("session", session.id))
"""

from __future__ import annotations

import threading
import time

from wafer_py.stores.base import SessionStore
from wafer_py.stores.invalidation import Invalidation
from wafer_py.testing import make_session

__all__ = ["Recorder", "check_every_change"]

#: Seconds a test waits for something a channel should report (generous: shared CPUs).
DEADLINE = 20.0


class Recorder:
    """The on_change and on_state callbacks, remembering what they were given."""

    def __init__(self) -> None:
        self.changes: list[Invalidation] = []
        self.states: list[bool] = []
        self._cond = threading.Condition()

    def change(self, change: Invalidation) -> None:
        with self._cond:
            self.changes.append(change)
            self._cond.notify_all()

    def state(self, live: bool) -> None:
        with self._cond:
            self.states.append(live)
            self._cond.notify_all()

    @property
    def live(self) -> bool:
        with self._cond:
            return bool(self.states) and self.states[-1]

    def _wait(self, ready: object, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready():  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"channel: {what} not reported within {timeout:g} s "
                        f"(states {self.states}, last changes {self.changes[-5:]})"
                    )
                self._cond.wait(left)

    def wait_state(self, live: bool, *, after: int = 0, timeout: float = DEADLINE) -> int:
        """Wait until the channel reports ``live`` (at or after index ``after`` of
        :attr:`states`); return the index just past that report."""

        def found() -> bool:
            return live in self.states[after:]

        self._wait(found, f"state {live}", timeout)
        with self._cond:
            return after + self.states[after:].index(live) + 1

    def wait_live(self, timeout: float = DEADLINE) -> None:
        self._wait(lambda: bool(self.states) and self.states[-1], "live", timeout)

    def wait_for(self, *expected: Invalidation, timeout: float = DEADLINE) -> None:
        """Wait until each of ``expected`` was reported."""

        def found() -> bool:
            return all(e in self.changes for e in expected)

        self._wait(found, f"changes {expected}", timeout)

    def clear(self) -> None:
        with self._cond:
            self.changes.clear()


def check_every_change(writer: SessionStore, recorder: Recorder, *, openid: str) -> None:
    """Make each kind of change through ``writer`` (another store object than the
    channel's) and wait until the channel reports it: revoke, revoke_user, purge,
    profile and phone updates, reseal. ``openid`` may hold characters a store escapes."""
    now = time.time()
    writer.ensure_user(openid, unionid=None, profile={"nickName": "a"}, now=now)
    sessions = [make_session(openid, now=now)[0] for _ in range(4)]
    expiring, _ = make_session(openid, now=now - 100, ttl=10)
    for session in [*sessions, expiring]:
        writer.create_session(session)

    assert writer.reseal_session(sessions[0].id, "resealed", openid=openid)
    recorder.wait_for(Invalidation("session", sessions[0].id))
    assert writer.update_profile(openid, {"nickName": "b"}, now=now) is not None
    recorder.wait_for(Invalidation("user", openid))
    recorder.clear()
    assert writer.update_phone(openid, "+8613800000000", now=now) is not None
    recorder.wait_for(Invalidation("user", openid))
    assert writer.revoke_session(sessions[1].id)
    recorder.wait_for(Invalidation("session", sessions[1].id))
    assert writer.purge_expired(now) == 1
    recorder.wait_for(Invalidation("session", expiring.id))
    assert writer.revoke_user(openid) == 3
    recorder.wait_for(*(Invalidation("session", s.id) for s in sessions[:1] + sessions[2:]))
