"""A client for WeChat's server APIs (``requests``, with timeouts).

WeChat answers errors with HTTP 200 and ``{"errcode": N, "errmsg": "..."}``, sometimes
as ``text/plain``; the body is parsed as JSON whatever its content type, and a non-zero
errcode becomes the named exception from :mod:`wafer_py.exceptions`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .config import DEFAULT_API_BASE
from .exceptions import WeChatError, WeChatUnavailable, wechat_error
from .logsafe import install_redaction

__all__ = ["WeChatClient", "Code2Session", "parse_wechat_body"]

logger = logging.getLogger("wafer_py")


@dataclass(frozen=True)
class Code2Session:
    """What ``jscode2session`` gives for a login code. ``session_key`` stays out of reprs."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


def parse_wechat_body(raw: bytes, where: str) -> dict[str, Any]:
    """Parse a WeChat answer: JSON whatever the content type; a non-zero errcode raises."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WeChatUnavailable(f"WeChat answered {where} with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise WeChatUnavailable(f"WeChat answered {where} with unexpected JSON")
    errcode = data.get("errcode", 0)
    if errcode not in (0, "0", None):
        raise wechat_error(errcode, data.get("errmsg", ""))
    return data


class WeChatClient:
    """WeChat's server APIs for one mini-program (``appid`` + ``app_secret``).

    ``api_base`` points it at another WeChat, such as the fake one in
    :mod:`wafer_py.fakewechat`. The client is thread-safe and keeps connections alive.
    """

    def __init__(
        self,
        appid: str,
        app_secret: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        pool_size: int = 64,
    ) -> None:
        self.appid = appid
        self._secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.http = session
        install_redaction("urllib3.connectionpool")

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self.appid!r}, api_base={self.api_base!r})"

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self.http.get(self.api_base + path, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            # The exception text may hold the URL, and so the secret: name the type only.
            logger.warning("wafer_py: WeChat %s failed: %s", path, type(exc).__name__)
            raise WeChatUnavailable() from None
        if response.status_code >= 500:
            raise WeChatUnavailable(f"WeChat answered {path} with HTTP {response.status_code}")
        return parse_wechat_body(response.content, path)

    def code2session(self, code: str) -> Code2Session:
        """Exchange a ``wx.login`` code at ``/sns/jscode2session``.

        Not retried: a code is single-use, and after a ``-1`` it may have been spent.
        """
        data = self._get(
            "/sns/jscode2session",
            {"appid": self.appid, "secret": self._secret, "js_code": code,
             "grant_type": "authorization_code"},
        )
        openid, session_key = data.get("openid"), data.get("session_key")
        if not isinstance(openid, str) or not openid or not isinstance(session_key, str):
            raise WeChatError("WeChat's jscode2session answer has no openid or session_key")
        unionid = data.get("unionid")
        return Code2Session(openid, session_key, unionid if isinstance(unionid, str) else None)
