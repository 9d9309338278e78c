"""Login churn (issue #17): a day of v2 traffic leaves a bounded number of sessions.

Every store's contract suite runs a day of evenly spread logins
(:class:`wafer_py.testing.churn.SupersedeContract`); here a day of bursts, on the
memory and SQLite stores and on the shared Redis and PostgreSQL servers, and the setting.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import fresh_store_url
from wafer_py.auth import Credentials
from wafer_py.config import WaferConfig
from wafer_py.stores import SessionStore, open_store
from wafer_py.testing.churn import Clock, churn_auth
from wafer_py.wechat.client import Code2Session

SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="
TTL = 300
#: 12 visits a day, one every 2 hours, of 40 requests 7.5 s apart, a login before each.
VISITS, PER_VISIT, GAP = 12, 40, 7.5


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    kind: str = request.param
    if kind == "memory":
        yield open_store("memory://")
        return
    with fresh_store_url(kind, tmp_path) as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.close()


def test_a_day_of_bursts_keeps_sessions_bounded(store: SessionStore) -> None:
    """Right after a burst the user holds the sessions of its last ``superseded_ttl``
    seconds (never more than the cap); once they are past, one. Every request's own
    session is valid when used."""
    clock = Clock()
    auth = churn_auth(store, clock, superseded_ttl=TTL, max_sessions_per_user=50)
    openid = "o-churn-" + str(id(store))
    start, peak = clock.now, 0
    for visit in range(VISITS):
        for i in range(PER_VISIT):
            clock.now = start + visit * 7200 + i * GAP
            result = auth.complete_login(Code2Session(openid, SESSION_KEY))
            assert auth.validate(Credentials(result.skey)).session.id == result.session_id
            live = [s for s in store.list_sessions(openid) if not s.is_expired(clock.now)]
            peak = max(peak, len(live))
            assert len(live) <= 1 + min(49, math.ceil(TTL / GAP))
        clock.now += TTL  # the visit is over: its superseded sessions have ended
        store.purge_expired(clock.now)
        assert [s.id for s in store.list_sessions(openid)] == [result.session_id]
    # Reached: a visit (40 logins) is shorter than TTL, and the last visit's session lives.
    assert peak == PER_VISIT + 1


def test_superseded_ttl_setting() -> None:
    base: dict[str, Any] = {"fake_wechat": True, "api_base": "http://127.0.0.1:1"}
    assert WaferConfig(**base).superseded_ttl == 300
    assert WaferConfig.from_env({"WAFER_SUPERSEDED_TTL": "900"}, **base).superseded_ttl == 900
    assert WaferConfig.from_env({"WAFER_SUPERSEDED_TTL": "0"}, **base).superseded_ttl == 0
    with pytest.raises(ValueError, match="WAFER_SUPERSEDED_TTL must be a whole number"):
        WaferConfig.from_env({"WAFER_SUPERSEDED_TTL": "5m"}, **base)
    for bad in (-1, 60, 119):  # under twice touch_interval (60): a device in use would end
        with pytest.raises(ValueError, match=r"superseded_ttl \(WAFER_SUPERSEDED_TTL\)"):
            WaferConfig(**base, superseded_ttl=bad)
    assert WaferConfig(**base, superseded_ttl=120).superseded_ttl == 120
    with pytest.raises(ValueError, match="at least twice touch_interval"):
        WaferConfig(**base, touch_interval=600)  # the default 300 is too short for it
    assert WaferConfig(**base, touch_interval=600, superseded_ttl=0).superseded_ttl == 0


def test_redis_forgets_a_superseded_session_by_itself(tmp_path: Path) -> None:
    """Redis's own expiry of the record and its pointers is shortened too, so memory
    comes back without a purge."""
    from wafer_py.stores.redis import GRACE, RedisStore
    from wafer_py.testing import make_session

    with fresh_store_url("redis", tmp_path) as url:
        store = RedisStore.from_url(url)
        try:
            session, _ = make_session("o-churn-redis", now=1000.0, ttl=7 * 86400.0)
            store.create_session(session)
            assert store.supersede_sessions(
                session.openid, [session.id], expires_at=1300.0, now=1000.0
            )
            client = store._client
            keys = [
                f"{store._base(session.openid)}:s:{session.id}",
                store._id_pointer(session.id),
                store._skey_pointer(session.skey_hash),
            ]
            for key in keys:
                assert 0 < client.pttl(key) <= (300 + GRACE) * 1000
        finally:
            store.close()
