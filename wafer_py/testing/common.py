"""What the store contract suites share: fixtures, a session maker, a thread starter."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..auth import WaferAuth
from ..config import WaferConfig
from ..crypto import SecretBox, new_session_id, new_skey
from ..models import Session
from ..stores.base import SessionStore

__all__ = ["Contract", "make_session", "run_threads", "contract_auth", "BOX", "SESSION_KEY"]

BOX = SecretBox(["wafer_py contract suite"])
SHARED_KEY = "wafer_py contract suite: one key for two mini-programs"
SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="


def make_session(
    openid: str, *, now: float = 1000.0, ttl: float = 3600.0, skey: str | None = None
) -> tuple[Session, str]:
    """A fresh session for ``openid`` and its skey (for store tests)."""
    skey = skey or new_skey()
    session = Session(
        id=new_session_id(),
        openid=openid,
        skey_hash=BOX.hash_skey(skey),
        sealed_session_key=BOX.seal(SESSION_KEY, context=openid),
        created_at=now,
        last_seen=now,
        expires_at=now + ttl,
    )
    return session, skey


def contract_auth(store: SessionStore, appid: str, **options: Any) -> WaferAuth:
    """A WaferAuth on ``store`` with the suite's secret key and a clock that stands still
    (every login has the same timestamp); logins go through ``complete_login``."""
    secret = "contract"  # noqa: S105 - never sent: these logins skip WeChat
    config = WaferConfig(appid=appid, app_secret=secret, secret_keys=(SHARED_KEY,), **options)
    return WaferAuth(config, store=store, clock=lambda: 1000.0)


def run_threads(target: Callable[[int], object], count: int) -> None:
    """Run ``target(0) ... target(count - 1)`` in threads started together; wait for all."""
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Contract:
    """The fixtures both parts share: a fresh store, and a fresh openid (also the suffix
    of entry and lock names), so a store shared between tests (a real server) may keep
    what other tests left."""

    def make_store(self) -> Any:
        """A store to test."""
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> Iterator[Any]:
        store = self.make_store()
        try:
            yield store
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                close()

    @pytest.fixture
    def openid(self) -> str:
        return "o" + new_session_id()[:27]
