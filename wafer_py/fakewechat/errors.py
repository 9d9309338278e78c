"""WeChat's error bodies: errmsg texts, the ``rid`` suffix, and HTTP 200 error responses.

WeChat answers errors with HTTP 200 and ``{"errcode": N, "errmsg": "... rid: x-y-z"}``;
clients must branch on ``errcode``, never on ``errmsg``.
"""

from __future__ import annotations

import secrets
import time

from .server import Response

__all__ = ["ERRMSGS", "errmsg_for", "error_response", "new_rid"]

#: The errmsg WeChat sends for each errcode (as seen in the wild), without the rid.
ERRMSGS: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret, view more at http://t.cn/RAEkdVq",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    40226: "code blocked",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43002: "require GET method",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    48001: "api unauthorized",
}


def new_rid(now: float | None = None) -> str:
    """A request id like WeChat's ``652d44d0-1d0af18b-5b069232`` (hex time, then random)."""
    stamp = int(time.time() if now is None else now) & 0xFFFFFFFF
    return f"{stamp:08x}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


def errmsg_for(errcode: int) -> str:
    """WeChat's errmsg for ``errcode``, or a generic one for codes the fake does not name."""
    return ERRMSGS.get(errcode, f"errcode {errcode}")


def error_response(errcode: int, errmsg: str | None = None, now: float | None = None) -> Response:
    """An HTTP 200 WeChat error body; ``errmsg`` defaults to WeChat's text for the code."""
    text = errmsg if errmsg is not None else errmsg_for(errcode)
    return Response.json({"errcode": errcode, "errmsg": f"{text} rid: {new_rid(now)}"})
