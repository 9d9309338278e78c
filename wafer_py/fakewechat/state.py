"""The fake WeChat's memory: apps, users, login codes, the clock, call counters, injected errors.

Everything here is guarded by one re-entrant lock, so the HTTP server's threads and the
test's own thread can share a :class:`WeChatState`. Nothing here knows about HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..crypto import new_session_key

__all__ = ["CODE_TTL", "App", "InjectedError", "LoginCode", "User", "WeChatState"]

#: Seconds a ``wx.login`` code stays valid ("有效期五分钟").
CODE_TTL = 300.0

_CODE_ALPHABET = string.ascii_letters + string.digits
_CODE_LENGTH = 32
# Codes older than this are forgotten (an expired code answers 40029 either way).
_CODE_FORGET_AFTER = 2 * CODE_TTL
_PRUNE_ABOVE = 4096


def _check_latency(seconds: float) -> float:
    if not 0 <= seconds < float("inf"):
        raise ValueError("the latency must be a number of seconds, at least 0")
    return float(seconds)


def _hashed_id(*parts: str) -> str:
    """A WeChat-looking id: ``o`` + 27 URL-safe base64 characters, stable for ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


@dataclass(frozen=True)
class App:
    """A mini-program the fake knows: its AppID and AppSecret."""

    appid: str
    secret: str = field(repr=False)


@dataclass
class User:
    """A simulated WeChat user of one app, named by a handle such as ``"alice"``."""

    appid: str
    handle: str
    openid: str
    unionid: str
    session_key: str = field(repr=False)


@dataclass
class LoginCode:
    """A ``wx.login`` code: bound to the app, the user and the session_key when minted."""

    code: str
    appid: str
    handle: str
    session_key: str = field(repr=False)
    issued_at: float
    used: bool = False


@dataclass
class InjectedError:
    """An error the next ``remaining`` calls to a path answer with."""

    errcode: int
    errmsg: str | None
    remaining: int


class WeChatState:
    """Thread-safe state shared by every endpoint family of the fake.

    ``clock`` returns seconds (default :func:`time.time`); :meth:`advance` adds an offset
    to it so tests can expire codes without sleeping. ``latency`` is how long each WeChat
    answer waits (:meth:`delay`); :meth:`reset` puts it back.
    """

    def __init__(
        self,
        apps: Mapping[str, str],
        clock: Callable[[], float] | None = None,
        latency: float = 0.0,
        real_profiles: bool = False,
    ) -> None:
        if not apps:
            raise ValueError("the fake WeChat needs at least one app")
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {a: App(a, s) for a, s in apps.items()}
        self._clock = clock or time.time
        self._offset = 0.0
        self._users: dict[tuple[str, str], User] = {}
        self._by_openid: dict[tuple[str, str], User] = {}
        self._codes: dict[str, LoginCode] = {}
        self._calls: Counter[str] = Counter()
        self._injected: dict[str, deque[InjectedError]] = {}
        self._reset_hooks: list[Callable[[], None]] = []
        self._base_latency = self._latency = _check_latency(latency)
        self._latency_changed = threading.Condition(threading.Lock())
        #: Whether ``wx.getUserInfo`` gives each user a profile of their own (the Wafer
        #: era) instead of today's anonymous one ("微信用户", the grey avatar).
        self.real_profiles = self._base_real_profiles = real_profiles

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (under the lock) on :meth:`reset`: endpoint families that keep
        their own memory (OAuth grants...) forget it too."""
        with self.lock:
            self._reset_hooks.append(hook)

    # ---------------------------------------------------------------- latency

    @property
    def latency(self) -> float:
        """Seconds each WeChat answer waits (a long one makes a blackholed WeChat)."""
        return self._latency

    def set_latency(self, seconds: float) -> None:
        """Change the latency; answers already waiting wait for the new one instead
        (from when they arrived), so lowering it releases a blackhole at once."""
        seconds = _check_latency(seconds)
        with self._latency_changed:
            self._latency = seconds
            self._latency_changed.notify_all()

    def delay(self) -> None:
        """Wait out the latency (called by a server thread before a WeChat answer)."""
        start = time.monotonic()
        with self._latency_changed:
            while (left := start + self._latency - time.monotonic()) > 0:
                self._latency_changed.wait(left)

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The fake's current time in seconds."""
        with self.lock:
            return self._clock() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds``; return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self._offset += seconds
            return self.now()

    # ------------------------------------------------------------------- apps

    def app(self, appid: str) -> App:
        """The app ``appid``. Raises ``ValueError`` if the fake does not know it."""
        found = self.apps.get(appid)
        if found is None:
            raise ValueError(f"unknown appid {appid!r}")
        return found

    @property
    def default_appid(self) -> str:
        """The first configured AppID."""
        return next(iter(self.apps))

    # ------------------------------------------------------------------ users

    def user(self, appid: str, handle: str) -> User:
        """The user ``handle`` of ``appid``, created on first use with a fresh session_key."""
        self.app(appid)
        if not handle:
            raise ValueError("a user handle must not be empty")
        with self.lock:
            found = self._users.get((appid, handle))
            if found is None:
                # unionid is per Open Platform account: the same handle shares it across
                # every app of this fake, as if they were all bound to one account.
                found = User(
                    appid=appid,
                    handle=handle,
                    openid=_hashed_id("openid", appid, handle),
                    unionid=_hashed_id("unionid", handle),
                    session_key=new_session_key(),
                )
                self._users[(appid, handle)] = found
                self._by_openid[(appid, found.openid)] = found
            return found

    def user_by_openid(self, appid: str, openid: str) -> User:
        """The user with ``openid`` in ``appid``. Raises ``KeyError`` if none."""
        with self.lock:
            return self._by_openid[(appid, openid)]

    def rotate_session_key(self, appid: str, handle: str) -> str:
        """Give the user a new session_key (the old one stops decrypting); return it."""
        with self.lock:
            user = self.user(appid, handle)
            user.session_key = new_session_key()
            return user.session_key

    # ------------------------------------------------------------------ codes

    def mint_code(self, appid: str, handle: str) -> LoginCode:
        """A new single-use code bound to the user's current session_key."""
        with self.lock:
            user = self.user(appid, handle)
            now = self.now()
            if len(self._codes) > _PRUNE_ABOVE:
                self._codes = {
                    c: v for c, v in self._codes.items() if now - v.issued_at <= _CODE_FORGET_AFTER
                }
            while True:
                text = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
                if text not in self._codes:
                    break
            code = LoginCode(text, appid, handle, user.session_key, now)
            self._codes[text] = code
            return code

    def redeem_code(self, appid: str, code: str) -> LoginCode | int:
        """Use ``code`` for ``appid``: the code, or the errcode WeChat answers.

        Unknown, expired or other-app codes give 40029; a used one gives 40163. Checking
        and marking used happen under the lock, so a code succeeds exactly once.
        """
        with self.lock:
            found = self._codes.get(code)
            if found is None or found.appid != appid:
                return 40029
            if self.now() - found.issued_at > CODE_TTL:
                return 40029
            if found.used:
                return 40163
            found.used = True
            return found

    # ---------------------------------------------------------- calls, errors

    def count(self, path: str) -> None:
        """Record one call to ``path``."""
        with self.lock:
            self._calls[path] += 1

    def calls(self) -> Counter[str]:
        """A snapshot of the call counters (missing paths read as 0)."""
        with self.lock:
            return Counter(self._calls)

    def inject(self, path: str, errcode: int, times: int = 1, errmsg: str | None = None) -> None:
        """Make the next ``times`` calls to ``path`` answer ``errcode`` (queued in order)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        if errcode == 0:
            raise ValueError("errcode 0 is success; inject a non-zero errcode")
        with self.lock:
            self._injected.setdefault(path, deque()).append(InjectedError(errcode, errmsg, times))

    def take_injected(self, path: str) -> InjectedError | None:
        """Consume one injected error for ``path``, if any is pending."""
        with self.lock:
            queue = self._injected.get(path)
            if not queue:
                return None
            head = queue[0]
            head.remaining -= 1
            if head.remaining <= 0:
                queue.popleft()
            return InjectedError(head.errcode, head.errmsg, head.remaining)

    def reset(self) -> None:
        """Forget users, codes, counters, injected errors and clock moves (and put the
        latency and the profile mode back); keep the apps."""
        with self.lock:
            self._offset = 0.0
            self._users.clear()
            self._by_openid.clear()
            self._codes.clear()
            self._calls.clear()
            self._injected.clear()
            self.set_latency(self._base_latency)
            self.real_profiles = self._base_real_profiles
            for hook in self._reset_hooks:
                hook()
