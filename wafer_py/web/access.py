"""What the web login hands its adapters: the user, a ready answer, a guarded request.

Plain values, free of any framework: the Flask, Starlette and Django integrations turn a
:class:`WebAnswer` into their own response and read :class:`WebAccess` for a guarded view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from ..models import User

__all__ = ["WebUser", "WebAnswer", "WebAccess", "local_path", "location", "redirect"]

USERINFO_SCOPE = "snsapi_userinfo"


@dataclass(frozen=True)
class WebUser:
    """The user of a web session: openid, granted scope, and the profile WeChat gave.

    ``nickname`` and ``avatar`` are empty for a ``snsapi_base`` (silent) login.
    ``linked_user`` is the mini-program :class:`~wafer_py.models.User` with the same
    ``unionid`` (the same person, when the official account and the mini-program are
    bound to one Open Platform account), or ``None``; if several mini-programs share the
    store, the one whose user was updated last.
    """

    openid: str
    scope: str
    unionid: str | None = None
    nickname: str = ""
    avatar: str = ""
    session_id: str = field(default="", repr=False)
    linked_user: User | None = field(default=None, compare=False, repr=False)

    def has_scope(self, scope: str) -> bool:
        """Whether the login grants ``scope`` (``snsapi_userinfo`` includes the base)."""
        granted = {s.strip() for s in self.scope.split(",")}
        return scope in granted or (scope == "snsapi_base" and USERINFO_SCOPE in granted)


@dataclass(frozen=True)
class WebAnswer:
    """A response for the adapter to send as it is."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True)
class WebAccess:
    """A guarded request: the ``user``, or an ``answer`` to send instead of the page.

    ``headers`` (a renewed or cleared cookie) go on the page's own response.
    """

    user: WebUser | None
    answer: WebAnswer | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def local_path(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``/`` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    return value


def location(path: str) -> str:
    """``path`` made header-safe: non-ASCII becomes UTF-8 percent-escapes; existing
    escapes are kept."""
    return quote(path, safe="/?&=%:@!$'()*+,;~-._")


def redirect(path: str, *headers: tuple[str, str], status: int = 302) -> WebAnswer:
    """A redirect to the local ``path``, not to be cached, with ``headers`` added."""
    return WebAnswer(
        status, [("Location", location(path)), ("Cache-Control", "no-store"), *headers]
    )
