"""Configuration: one frozen dataclass, and the one place that reads ``WAFER_*`` variables.

Library code takes a :class:`WaferConfig` (or keyword arguments). The adapters given no
config, the command line and the examples read ``WAFER_*`` values in one order
(:func:`config_sources`: the framework's configuration, then the environment) and build
the config with :meth:`WaferConfig.from_env`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .observe import METRICS_CHOICES
from .variables import CONFIG_VARIABLES, KNOWN_VARIABLES, config_sources, unknown_variables

__all__ = [
    "WaferConfig",
    "DEMO_APPID",
    "DEMO_APP_SECRET",
    "DEFAULT_API_BASE",
    "MIN_SECRET_KEY_LENGTH",
    "check_secret_keys",
    "KNOWN_VARIABLES",
    "CONFIG_VARIABLES",
    "config_sources",
    "unknown_variables",
]

logger = logging.getLogger("wafer_py")

#: The AppID and AppSecret the fake WeChat knows out of the box (demo and tests). A config
#: falls back to them only with ``fake_wechat=True`` (a fake WeChat on loopback).
DEMO_APPID = "wx5fa4de0c0ffee000"
DEMO_APP_SECRET = "fakesecret000000000000000000demo"  # noqa: S105 - the fake's, public
DEFAULT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_OPEN_BASE = "https://open.weixin.qq.com"
DEFAULT_STORE_URL = "sqlite:///wafer_sessions.db"
#: The shortest secret key accepted (characters): a key is a password nobody types, so
#: ``python -c "import secrets; print(secrets.token_urlsafe(32))"`` (43 characters).
MIN_SECRET_KEY_LENGTH = 32

#: The nickname and avatar of a user who logged in with a code only (WeChat no longer
#: hands out profiles at login; these are WeChat's own defaults).
DEFAULT_NICKNAME = "微信用户"
DEFAULT_AVATAR = (
    "https://mmbiz.qpic.cn/mmbiz/icTdbqWNOwNRna42FI242Lcia07jQodd2FJGIYQfG0LAJGFxM4FbnQP6y"
    "fMxBgJ0F3YRqJCJ1aPAK2dQagdusBZg/0"
)


@dataclass(frozen=True)
class WaferConfig:
    """Everything wafer_py needs to serve the Wafer protocol.

    ``secret_keys`` are the server's secrets, newest first: skeys are stored under a keyed
    hash and session_keys sealed with keys derived from them. Rotate by putting a new key
    first; remove the old one once its sessions have expired.

    ``session_ttl`` is the sliding lifetime of a session (renewed by each validated
    request, at most every ``touch_interval`` seconds); ``session_max_age`` is the
    absolute cap counted from login.
    """

    appid: str = ""
    app_secret: str = field(default="", repr=False)
    api_base: str = DEFAULT_API_BASE
    open_base: str = DEFAULT_OPEN_BASE
    store_url: str = DEFAULT_STORE_URL
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    session_ttl: int = 7 * 24 * 3600
    session_max_age: int = 30 * 24 * 3600
    touch_interval: int = 60
    #: Validated sessions each process keeps in memory (LRU) when the store reports
    #: changes (an invalidation channel: Redis, PostgreSQL); 0 turns the cache off.
    session_cache: int = 10_000
    #: Live sessions kept per user; a login beyond it ends the oldest.
    max_sessions_per_user: int = 50
    #: Seconds a session lives on once a newer login of its user supersedes it, unless
    #: it is used (a touch renews it): v2 clients log in before every ``login: true``
    #: request and drop the old skey. 0 keeps superseded sessions for ``session_ttl``.
    #: At least twice ``touch_interval``: a device still in use touches its session in
    #: time (docs/operators.md, "Capacity").
    superseded_ttl: int = 300
    login_path: str = "/weapp/login"
    default_nickname: str = DEFAULT_NICKNAME
    default_avatar: str = DEFAULT_AVATAR
    #: Seconds a watermark may be old; None accepts any age (WeChat gives no rule).
    watermark_max_age: float | None = None
    #: Seconds to wait for WeChat.
    wechat_timeout: float = 5.0
    #: Logins one event loop runs at once (ASGI); more wait their turn. WeChat's
    #: answers then come back in small waves, which keeps the loop responsive.
    max_concurrent_logins: int = 16
    #: Logins that may wait for a slot beyond the running ones (per event loop under
    #: ASGI, per process under WSGI); more are answered 503 with Retry-After at once.
    max_queued_logins: int = 256
    #: Seconds a login may take from its arrival, its wait for a slot included; the call
    #: to WeChat gets what is left. None: ``wechat_timeout``.
    login_timeout: float | None = None
    #: The official account used for web OAuth (网页授权); None means the mini-program's.
    oauth_appid: str | None = None
    oauth_app_secret: str | None = field(default=None, repr=False)
    #: Send nicknames the user fills in to WeChat's content check (``msg_sec_check`` v2,
    #: with the shared access_token) before storing them; off by default.
    check_nicknames: bool = False
    #: ``api_base`` is a fake WeChat (``wafer-py demo``, tests): only then may ``appid``
    #: and ``app_secret`` be left out, and they default to the fake's demo app. Set in
    #: code only (no variable sets it), and refused unless ``api_base`` is on loopback.
    fake_wechat: bool = False
    #: Metrics to record: ``None`` (or ``"none"``) or ``"prometheus"`` (needs the
    #: ``metrics`` extra; see :mod:`wafer_py.metrics`).
    metrics: str | None = None

    def __post_init__(self) -> None:
        if self.fake_wechat:
            if not _on_loopback(self.api_base):
                raise ValueError(
                    f"fake_wechat is set but the WeChat API base {self.api_base!r} is not on "
                    "loopback (127.0.0.1): the demo credentials only go to a local fake WeChat"
                )
            if not self.appid:  # the fields are frozen: set once, here
                object.__setattr__(self, "appid", DEMO_APPID)
            if not self.app_secret:
                object.__setattr__(self, "app_secret", DEMO_APP_SECRET)
        for variable, value, what in (
            ("WAFER_APPID", self.appid, "the mini-program's AppID"),
            ("WAFER_APP_SECRET", self.app_secret, "its AppSecret"),
        ):
            if not value:
                raise ValueError(
                    f"{variable} is not set: {what} is required (the demo's stand-in is "
                    "used only with a fake WeChat: wafer-py demo, wafer-py sandbox, tests)"
                )
        check_secret_keys(self.secret_keys)
        if self.session_ttl <= 0 or self.session_max_age <= 0:
            raise ValueError("session_ttl and session_max_age must be positive")
        if self.session_cache < 0:
            raise ValueError(
                "session_cache (WAFER_SESSION_CACHE) must be 0 (off) or a number of sessions"
            )
        if self.max_sessions_per_user < 1:
            raise ValueError("max_sessions_per_user must be at least 1")
        if self.superseded_ttl != 0 and self.superseded_ttl < 2 * max(self.touch_interval, 1):
            raise ValueError(
                "superseded_ttl (WAFER_SUPERSEDED_TTL) must be 0 (off) or at least twice "
                f"touch_interval ({2 * max(self.touch_interval, 1)} s): a session still in "
                "use must be touched before its shortened life ends"
            )
        if self.max_concurrent_logins < 1:
            raise ValueError("max_concurrent_logins must be at least 1")
        if self.max_queued_logins < 0:
            raise ValueError("max_queued_logins (WAFER_MAX_QUEUED_LOGINS) must be at least 0")
        if self.login_timeout is not None and not 0 < self.login_timeout < float("inf"):
            raise ValueError(
                "login_timeout (WAFER_LOGIN_TIMEOUT) must be a positive number of seconds"
            )
        if not self.login_path.startswith("/"):
            raise ValueError("login_path must start with '/'")
        if self.metrics not in (None, "", *METRICS_CHOICES):
            raise ValueError(
                f"metrics (WAFER_METRICS) must be one of {', '.join(METRICS_CHOICES)}, "
                f"not {self.metrics!r}"
            )

    def oauth_app(self) -> tuple[str, str]:
        """The AppID and AppSecret for web OAuth: ``oauth_*``, else the mini-program's."""
        return (self.oauth_appid or self.appid, self.oauth_app_secret or self.app_secret)

    def replace(self, **changes: Any) -> WaferConfig:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WaferConfig:
        """Read ``WAFER_*`` variables; ``overrides`` win over the environment.

        ``WAFER_APPID``, ``WAFER_APP_SECRET``, ``WAFER_WECHAT_API_BASE``,
        ``WAFER_WECHAT_OPEN_BASE``, ``WAFER_STORE_URL``, ``WAFER_SESSION_TTL``,
        ``WAFER_SESSION_MAX_AGE``, ``WAFER_SUPERSEDED_TTL`` (0: off),
        ``WAFER_SESSION_CACHE`` (sessions; 0: off),
        ``WAFER_SECRET_KEY`` (several keys separated by commas, newest first),
        ``WAFER_LOGIN_PATH``, ``WAFER_MAX_CONCURRENT_LOGINS``,
        ``WAFER_MAX_QUEUED_LOGINS``, ``WAFER_LOGIN_TIMEOUT`` (seconds, a decimal),
        ``WAFER_OAUTH_APPID``, ``WAFER_OAUTH_APP_SECRET``, ``WAFER_CHECK_NICKNAMES``
        (``true``/``false``) and ``WAFER_METRICS`` (``prometheus``).

        Raises ``ValueError`` naming the variable when one is missing or wrong:
        ``WAFER_APPID`` and ``WAFER_APP_SECRET`` are required unless ``overrides`` set
        ``fake_wechat``.
        """
        env = os.environ if environ is None else environ
        for name, closest in unknown_variables(env):
            hint = f"; did you mean {closest}?" if closest else ""
            logger.warning("wafer_py: %s is not a wafer_py setting and is ignored%s", name, hint)
        values: dict[str, Any] = {}
        text = {
            "WAFER_APPID": "appid",
            "WAFER_APP_SECRET": "app_secret",
            "WAFER_WECHAT_API_BASE": "api_base",
            "WAFER_WECHAT_OPEN_BASE": "open_base",
            "WAFER_STORE_URL": "store_url",
            "WAFER_LOGIN_PATH": "login_path",
            "WAFER_OAUTH_APPID": "oauth_appid",
            "WAFER_OAUTH_APP_SECRET": "oauth_app_secret",
            "WAFER_METRICS": "metrics",
        }
        for name, attr in text.items():
            if env.get(name):
                values[attr] = env[name]
        # Numbers: (variable, field, type, what a wrong value must be).
        for name, attr, kind, what in (
            ("WAFER_SESSION_TTL", "session_ttl", int, "a whole number of seconds"),
            ("WAFER_SESSION_MAX_AGE", "session_max_age", int, "a whole number of seconds"),
            ("WAFER_SUPERSEDED_TTL", "superseded_ttl", int, "a whole number of seconds"),
            ("WAFER_SESSION_CACHE", "session_cache", int, "a whole number of sessions (0: off)"),
            ("WAFER_MAX_CONCURRENT_LOGINS", "max_concurrent_logins", int, "a whole number"),
            ("WAFER_MAX_QUEUED_LOGINS", "max_queued_logins", int, "a whole number"),
            ("WAFER_LOGIN_TIMEOUT", "login_timeout", float, "a number of seconds"),
        ):
            if env.get(name):
                try:
                    values[attr] = kind(env[name])
                except ValueError:
                    raise ValueError(f"{name} must be {what}") from None
        if env.get("WAFER_CHECK_NICKNAMES"):
            flag = env["WAFER_CHECK_NICKNAMES"].strip().lower()
            if flag not in ("1", "true", "yes", "0", "false", "no"):
                raise ValueError("WAFER_CHECK_NICKNAMES must be true or false")
            values["check_nicknames"] = flag in ("1", "true", "yes")
        if env.get("WAFER_SECRET_KEY"):
            keys = tuple(k.strip() for k in env["WAFER_SECRET_KEY"].split(",") if k.strip())
            values["secret_keys"] = keys
        values.update(overrides)
        return cls(**values)


def check_secret_keys(keys: Sequence[str]) -> None:
    """Refuse a secret key shorter than :data:`MIN_SECRET_KEY_LENGTH` (``ValueError``
    naming ``WAFER_SECRET_KEY`` and the key's position, never the key)."""
    for position, key in enumerate(keys, 1):
        if len(key) < MIN_SECRET_KEY_LENGTH:
            which = f"key {position} of {len(keys)}" if len(keys) > 1 else "the key"
            raise ValueError(
                f"WAFER_SECRET_KEY: {which} is shorter than {MIN_SECRET_KEY_LENGTH} "
                'characters; make one with: python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"'
            )


def _on_loopback(url: str) -> bool:
    """Whether ``url``'s host is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
