"""Random interleavings never make the session cache accept what the store refuses.

One process with a cache (``cached``) and another without one (``other``) share a store
whose changes reach the cache through a test-only channel, delivered when the test says.
Validations, touches, revocations (of a session, of a user; by either process), profile
updates, expiry on a fake clock, the channel going down and coming back, and store
writes racing a fill between its read and its fill are interleaved at random. Whenever
every change has been delivered (or the channel is down), the cached answer must be the
store's: accepted exactly when the store accepts, with the store's user.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.support.channel import ChannelStore, ManualChannel
from tests.support.clock import Clock
from tests.support.constants import TEST_SECRET
from wafer_py import Credentials, InvalidSession, WaferAuth, WaferConfig
from wafer_py.plans import Plan, Step
from wafer_py.wechat.client import Code2Session

OPENIDS = ("o-ann", "o-bob", "o-cy")
LIMITS: dict[str, Any] = {"session_ttl": 100, "session_max_age": 300, "touch_interval": 30}


def make(store: ChannelStore, clock: Clock, cache: int) -> WaferAuth:
    config = WaferConfig(
        api_base="http://127.0.0.1:9",
        fake_wechat=True,
        secret_keys=(TEST_SECRET,),
        session_cache=cache,
        **LIMITS,
    )
    return WaferAuth(config, store=store, clock=clock)


class CacheMachine(RuleBasedStateMachine):
    @initialize(size=st.sampled_from([1, 2, 100]))
    def setup(self, size: int) -> None:
        self.clock = Clock()
        self.store = ChannelStore(deliver="later")
        self.cached = make(self.store, self.clock, size)
        self.other = make(self.store, self.clock, 0)
        assert self.cached.session_cache is not None
        self.channel: ManualChannel = self.store.channels[0]
        self.creds: list[Credentials] = []
        self.checked = 0

    def teardown(self) -> None:
        if hasattr(self, "cached"):
            self.cached.close()

    # -- the store's own answer -------------------------------------------------
    def store_answer(self, creds: Credentials) -> Any:
        """What the store alone says now: the user accepted, or None (refused)."""
        found = self.store.find_login(**self.other._lookup(creds))
        try:
            who, _ = self.other._check(creds, found)
        except InvalidSession:
            return None
        return who.user

    def pick(self, index: int, v1: bool, wrong: bool) -> Credentials:
        creds = self.creds[-1 - index % len(self.creds)]  # the latest sessions mostly
        session_id = creds.session_id if v1 else None
        return Credentials("not-" + creds.skey if wrong else creds.skey, session_id)

    def exact(self) -> bool:
        """Whether the cache must agree with the store now (nothing undelivered)."""
        return not self.store.pending

    # -- rules ------------------------------------------------------------------
    @rule(openid=st.sampled_from(OPENIDS), here=st.booleans())
    def login(self, openid: str, here: bool) -> None:
        auth = self.cached if here else self.other
        result = auth.complete_login(Code2Session(openid, "sk"))
        self.creds.append(Credentials(result.skey, result.session_id))

    @precondition(lambda self: self.creds)
    @rule(
        index=st.integers(0, 5),
        v1=st.booleans(),
        wrongs=st.lists(st.sampled_from([False] * 3 + [True]), min_size=1, max_size=4),
    )
    def validate(self, index: int, v1: bool, wrongs: list[bool]) -> None:
        for wrong in wrongs:  # the same session, again and again: hits
            self.check(self.pick(index, v1, wrong))

    def check(self, creds: Credentials) -> None:
        """Validate through the cache; compare with the store's answer when exact."""
        expected = self.store_answer(creds)
        try:
            got: Any = self.cached.validate(creds).user
        except InvalidSession:
            got = None
        if self.exact():
            self.checked += 1
            assert (got is None) == (expected is None), (got, expected)
            assert got == expected

    @precondition(lambda self: self.creds)
    @rule(
        index=st.integers(0, 5),
        v1=st.booleans(),
        write=st.sampled_from(["revoke", "revoke_user", "profile", "down", "flap", "time"]),
        deliver=st.booleans(),
        wait=st.sampled_from([0, 0, 31, 60]),
    )
    def racing_fill(self, index: int, v1: bool, write: str, deliver: bool, wait: int) -> None:
        """A validation whose store steps (a read, a touch: ``wait`` makes one due) are
        each followed by a write elsewhere, before the validation goes on."""
        creds = self.pick(index, v1, False)
        self.check(creds)  # cached now, unless refused
        self.clock.advance(wait)
        plan = self.cached.validation(creds)
        with contextlib.suppress(InvalidSession):
            self.drive(plan, lambda: self.write(creds, write, deliver))
        self.check(creds)  # what the race left in the cache
        self.check(creds)

    def drive(self, plan: Plan[Any], between: Any) -> Any:
        try:
            step: Step = next(plan)
            while True:
                result = step.run()
                between()  # after the store answered, before the plan uses the answer
                step = plan.send(result)
        except StopIteration as done:
            return done.value

    def write(self, creds: Credentials, what: str, deliver: bool) -> None:
        found = self.store.find_login(**self.other._lookup(creds))
        session = found[0] if found else None
        if what == "revoke" and session is not None:
            self.other.store.revoke_session(session.id)
        elif what == "revoke_user" and session is not None:
            self.other.store.revoke_user(session.openid)
        elif what == "profile" and session is not None:
            self.other.store.update_profile(session.openid, {"city": "X"}, now=self.clock())
        elif what == "down" and self.channel.live:
            self.channel.down()
        elif what == "flap" and self.channel.live:
            self.channel.down()
            self.channel.up()
        elif what == "time":
            self.clock.advance(40)
        if deliver:
            self.store.deliver()

    @precondition(lambda self: self.creds)
    @rule(index=st.integers(0, 5), here=st.booleans(), deliver=st.booleans())
    def revoke(self, index: int, here: bool, deliver: bool) -> None:
        session_id = self.creds[-1 - index % len(self.creds)].session_id
        assert session_id is not None
        (self.cached if here else self.other).revoke(session_id)
        if deliver:
            self.store.deliver()

    @rule(openid=st.sampled_from(OPENIDS), here=st.booleans(), deliver=st.booleans())
    def revoke_user(self, openid: str, here: bool, deliver: bool) -> None:
        (self.cached if here else self.other).revoke_user(openid)
        if deliver:
            self.store.deliver()

    @rule(openid=st.sampled_from(OPENIDS), city=st.sampled_from(["A", "B"]), deliver=st.booleans())
    def update_profile(self, openid: str, city: str, deliver: bool) -> None:
        self.other.store.update_profile(openid, {"city": city}, now=self.clock())
        if deliver:
            self.store.deliver()

    @rule(openid=st.sampled_from(OPENIDS), deliver=st.booleans())
    def update_phone(self, openid: str, deliver: bool) -> None:
        self.other.store.update_phone(openid, "+8613800138000", now=self.clock())
        if deliver:
            self.store.deliver()

    @rule(seconds=st.sampled_from([1, 29, 30, 31, 60, 99, 100, 150, 301]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def purge(self) -> None:
        self.other.purge_expired()

    @rule(count=st.integers(1, 3))
    def deliver_some(self, count: int) -> None:
        self.store.deliver(count)

    @precondition(lambda self: self.channel.live)
    @rule()
    def channel_down(self) -> None:
        self.channel.down()

    @precondition(lambda self: not self.channel.live and self.channel.started)
    @rule()
    def channel_up(self) -> None:
        # Back and current: what was missed (and what is still on its way) is the
        # cache's to forget; the store's queue is what a reconnected channel no longer owes.
        self.store.pending.clear()
        self.channel.up()

    @invariant()
    def bypassed_while_down(self) -> None:
        cache = self.cached.session_cache
        assert cache is not None
        if self.channel.started and not self.channel.live:
            assert not cache.live and len(cache) == 0


CacheMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None, database=None
)
TestSessionCacheProperty = CacheMachine.TestCase
