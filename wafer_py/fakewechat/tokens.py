"""The global ``access_token``: ``GET /cgi-bin/token``, ``POST /cgi-bin/stable_token``.

As WeChat documents them (see ``wechat-api.md`` §4):

* ``/cgi-bin/token`` makes a new token (``expires_in`` 7200) on every call; the
  previous one stays valid 5 more minutes, then answers 40001. 2000 calls a day per app,
  then 45009.
* ``/cgi-bin/stable_token`` (JSON body, POST only) hands back the *same* token with its
  remaining ``expires_in`` until it is within 5 minutes of expiry, then a new one (the
  old one still valid until it expires). ``force_refresh: true`` makes a new token and
  retires the old one at once, at most 20 times a day (then 45009); a second force within
  30 s does not refresh and answers the current token. Its tokens and the classic ones
  are isolated: neither call retires the other's token.

APIs that take a token check it with :meth:`TokenAuthority.check`: unknown or retired
→ 40001, expired → 42001. :meth:`TokenAuthority.expire_all` expires every live token at
once (the "forced expiry mid-run" of tests).
"""

from __future__ import annotations

import hmac
import secrets
from collections import Counter
from dataclasses import dataclass, field

from .errors import error_response
from .server import Request, Response, Router
from .state import App, WeChatState

__all__ = [
    "TOKEN_PATH",
    "STABLE_TOKEN_PATH",
    "TOKEN_TTL",
    "OVERLAP",
    "IssuedToken",
    "Limits",
    "TokenAuthority",
    "register",
    "MESSAGES",
    "fail",
]

TOKEN_PATH = "/cgi-bin/token"  # noqa: S105 - a URL path, not a password
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"  # noqa: S105
#: Seconds a new token lives.
TOKEN_TTL = 7200.0
#: Seconds the previous token stays valid after a rotation.
OVERLAP = 300.0
# Beijing time: WeChat's daily quotas start at midnight there.
_UTC_OFFSET = 8 * 3600

#: errmsgs of the codes these endpoints answer that :mod:`.errors` does not name.
MESSAGES: dict[int, str] = {
    40003: "invalid openid",
    40014: "invalid access_token",
    41001: "access_token missing",
    47001: "data format error",
    87008: "invalid sig_method",
    87009: "invalid signature",
}


def fail(errcode: int, now: float) -> Response:
    """WeChat's error answer for ``errcode`` (with the texts of :data:`MESSAGES`)."""
    return error_response(errcode, MESSAGES.get(errcode), now)


@dataclass
class Limits:
    """Daily quotas per app: calls per path (45009 beyond), and forced refreshes."""

    per_day: dict[str, int] = field(
        default_factory=lambda: {TOKEN_PATH: 2000, STABLE_TOKEN_PATH: 500_000}
    )
    force_per_day: int = 20
    force_interval: float = 30.0


@dataclass
class IssuedToken:
    """A token the fake handed out. ``retired_at``: when it stopped (or stops) working."""

    token: str = field(repr=False)
    appid: str
    stable: bool
    issued_at: float
    expires_at: float
    retired_at: float | None = None


class TokenAuthority:
    """Issues and checks access tokens; thread-safe under the state's lock."""

    def __init__(self, state: WeChatState, limits: Limits | None = None) -> None:
        self.state = state
        self.limits = limits or Limits()
        self._tokens: dict[str, IssuedToken] = {}
        self._current: dict[tuple[str, bool], IssuedToken] = {}
        self._daily: Counter[tuple[str, str, int]] = Counter()
        self._last_force: dict[str, float] = {}
        state.on_reset(self.reset)

    def reset(self) -> None:
        """Forget every token and counter."""
        with self.state.lock:
            self._tokens.clear()
            self._current.clear()
            self._daily.clear()
            self._last_force.clear()

    # ------------------------------------------------------------------ quotas

    def over_quota(self, appid: str, what: str, limit: int | None) -> bool:
        """Count one call of ``what`` today; whether it goes beyond ``limit``."""
        with self.state.lock:
            day = int((self.state.now() + _UTC_OFFSET) // 86400)
            self._daily[(appid, what, day)] += 1
            return limit is not None and self._daily[(appid, what, day)] > limit

    def used_today(self, appid: str, what: str) -> int:
        """How many calls of ``what`` (a path, or ``"force_refresh"``) ``appid`` made today."""
        with self.state.lock:
            day = int((self.state.now() + _UTC_OFFSET) // 86400)
            return self._daily[(appid, what, day)]

    # ------------------------------------------------------------------ tokens

    def issue(self, appid: str, *, stable: bool, overlap: float = OVERLAP) -> IssuedToken:
        """A new current token; the previous one of its kind is retired after ``overlap``."""
        with self.state.lock:
            now = self.state.now()
            previous = self._current.get((appid, stable))
            if previous is not None:
                end = now + overlap
                if previous.retired_at is None or previous.retired_at > end:
                    previous.retired_at = end
            while True:
                text = f"{len(self._tokens) + 1}_{secrets.token_urlsafe(96)}"
                if text not in self._tokens:
                    break
            issued = IssuedToken(text, appid, stable, now, now + TOKEN_TTL)
            self._tokens[text] = issued
            self._current[(appid, stable)] = issued
            return issued

    def stable(self, appid: str, *, force: bool) -> IssuedToken | int:
        """What ``stable_token`` hands out (or the errcode), as described above."""
        with self.state.lock:
            now = self.state.now()
            current = self._current.get((appid, True))
            live = current is not None and current.retired_at is None
            if force:
                last = self._last_force.get(appid)
                recent = last is not None and now - last < self.limits.force_interval
                if recent and live and current is not None and current.expires_at > now:
                    return current
                if self.over_quota(appid, "force_refresh", self.limits.force_per_day):
                    return 45009
                self._last_force[appid] = now
                return self.issue(appid, stable=True, overlap=0.0)
            if live and current is not None and current.expires_at - now > OVERLAP:
                return current
            # Within 5 minutes of expiry: a new token; the old one lives out its time.
            return self.issue(appid, stable=True, overlap=TOKEN_TTL)

    def check(self, token: str) -> str | int:
        """The appid ``token`` belongs to, or WeChat's errcode (41001, 40001, 42001)."""
        if not token:
            return 41001
        with self.state.lock:
            now = self.state.now()
            found = self._tokens.get(token)
            if found is None or (found.retired_at is not None and now >= found.retired_at):
                return 40001
            if now >= found.expires_at:
                return 42001
            return found.appid

    def expire_all(self, appid: str | None = None) -> int:
        """Expire every live token (of ``appid``) now; return how many."""
        with self.state.lock:
            now = self.state.now()
            count = 0
            for issued in self._tokens.values():
                if (appid is None or issued.appid == appid) and issued.expires_at > now:
                    issued.expires_at = now
                    count += 1
            return count

    def current(self, appid: str, *, stable: bool = True) -> str | None:
        """The latest token of that kind (tests only), or None."""
        with self.state.lock:
            found = self._current.get((appid, stable))
            return None if found is None else found.token


def _credentials(
    state: WeChatState, grant_type: object, appid: object, secret: object
) -> App | int:
    if not isinstance(appid, str) or not appid:
        return 41002
    if not isinstance(secret, str) or not secret:
        return 41004
    if grant_type != "client_credential":
        return 40002
    app = state.apps.get(appid)
    if app is None:
        return 40013
    if not hmac.compare_digest(secret.encode(), app.secret.encode()):
        return 40125
    return app


def _answer(issued: IssuedToken, now: float) -> Response:
    return Response.json(
        {"access_token": issued.token, "expires_in": max(1, round(issued.expires_at - now))}
    )


def register(router: Router, authority: TokenAuthority) -> None:
    """Add ``/cgi-bin/token`` and ``/cgi-bin/stable_token`` to ``router``."""
    state = authority.state

    def token(request: Request) -> Response:
        now = state.now()
        query = request.query
        app = _credentials(state, query.get("grant_type"), query.get("appid"), query.get("secret"))
        if isinstance(app, int):
            return fail(app, now)
        limit = authority.limits.per_day.get(TOKEN_PATH)
        if authority.over_quota(app.appid, TOKEN_PATH, limit):
            return fail(45009, now)
        return _answer(authority.issue(app.appid, stable=False), now)

    def stable_token(request: Request) -> Response:
        now = state.now()
        try:
            body = request.json()
        except ValueError:
            return fail(47001, now)
        if not isinstance(body, dict):
            return fail(47001, now)
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return fail(47001, now)
        app = _credentials(state, body.get("grant_type"), body.get("appid"), body.get("secret"))
        if isinstance(app, int):
            return fail(app, now)
        limit = authority.limits.per_day.get(STABLE_TOKEN_PATH)
        if authority.over_quota(app.appid, STABLE_TOKEN_PATH, limit):
            return fail(45009, now)
        issued = authority.stable(app.appid, force=force)
        if isinstance(issued, int):
            return fail(issued, now)
        return _answer(issued, state.now())

    router.add("GET", TOKEN_PATH, token)
    router.add("POST", STABLE_TOKEN_PATH, stable_token)
