"""A client for WeChat's server APIs (``requests``, with timeouts).

WeChat answers errors with HTTP 200 and ``{"errcode": N, "errmsg": "..."}``, sometimes
as ``text/plain``; the body is parsed as JSON whatever its content type, and a non-zero
errcode becomes the named exception from :mod:`wafer_py.exceptions`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ..config import DEFAULT_API_BASE
from ..exceptions import WeChatAPIError, WeChatBusy, WeChatError, WeChatUnavailable, wechat_error
from ..logsafe import install_redaction
from ..observe import NO_OBSERVER, Observer
from ..plans import offload
from .asynchttp import AsyncHTTP, HTTPError, proxy_configured
from .tokenrecords import AccessToken

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
        try:
            error = wechat_error(errcode, data.get("errmsg", ""))
        except ValueError:
            raise WeChatUnavailable(f"WeChat answered {where} with an unreadable errcode") from None
        raise error
    return data


def http_session(pool_size: int) -> requests.Session:
    """A keep-alive ``requests`` session for WeChat, its debug logs rid of secrets."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    install_redaction("urllib3.connectionpool")
    return session


def send(
    http: requests.Session,
    method: str,
    url: str,
    where: str,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """One call to WeChat: network trouble and HTTP 5xx become ``WeChatUnavailable``, the
    body is parsed by :func:`parse_wechat_body` (``where`` names the call in errors)."""
    try:
        response = http.request(method, url, params=params, json=body, timeout=timeout)
    except requests.RequestException as exc:
        # The exception text may hold the URL, and so a secret: name the type only.
        logger.warning("wafer_py: WeChat %s failed: %s", where, type(exc).__name__)
        raise WeChatUnavailable() from None
    if response.status_code >= 500:
        raise WeChatUnavailable(f"WeChat answered {where} with HTTP {response.status_code}")
    return parse_wechat_body(response.content, where)


class WeChatClient:
    """WeChat's server APIs for one mini-program (``appid`` + ``app_secret``).

    ``api_base`` points it at another WeChat, such as the fake one in
    :mod:`wafer_py.fakewechat`. The client is thread-safe and keeps connections alive.
    Calls that are safe to repeat are retried ``retries`` times after a network error or
    errcode -1, pausing ``backoff`` seconds, then twice that, and so on (at most 2 s).

    The APIs that need the global ``access_token`` are in
    :class:`~wafer_py.wechat.api.WeChatAPI`.
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
        retries: int = 2,
        backoff: float = 0.25,
    ) -> None:
        self.appid = appid
        self._secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.http = session if session is not None else http_session(pool_size)
        self._aio: AsyncHTTP | None = None
        self._async_ok: bool | None = None
        #: Told of each call's API path, outcome and time (:mod:`wafer_py.observe`).
        self.observer: Observer = NO_OBSERVER

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self.appid!r}, api_base={self.api_base!r})"

    def close(self) -> None:
        self.http.close()
        if self._aio is not None:
            self._aio.close()

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        retry: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Call WeChat's ``path`` (``body`` is sent as JSON); return the JSON answer.

        A non-zero errcode raises its exception from :mod:`wafer_py.exceptions`. With
        ``retry`` (only for calls that are safe to repeat), network errors, HTTP 5xx,
        bodies that are not JSON and errcode -1 are retried with backoff. Rate limits
        (45009, 45011) are never retried: they last a minute or a day. ``timeout``
        replaces the client's for this call.
        """
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                return self._send(method, path, params, body, timeout)
            except (WeChatUnavailable, WeChatBusy) as exc:
                if attempt + 1 >= attempts:
                    raise
                pause = min(self.backoff * 2**attempt, 2.0)
                logger.info(
                    "wafer_py: WeChat %s: %s; retrying in %.2f s", path, type(exc).__name__, pause
                )
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        url = self.api_base + path
        observer = self.observer
        if observer is NO_OBSERVER:
            return send(self.http, method, url, path, params, body, timeout or self.timeout)
        started = time.perf_counter()
        outcome = "unavailable"
        try:
            answer = send(self.http, method, url, path, params, body, timeout or self.timeout)
            outcome = "ok"
            return answer
        except WeChatAPIError:
            outcome = "error"
            raise
        finally:
            observer.wechat_call(path, outcome, time.perf_counter() - started)

    def code2session(self, code: str, *, timeout: float | None = None) -> Code2Session:
        """Exchange a ``wx.login`` code at ``/sns/jscode2session`` (``timeout``: seconds
        for this call, else the client's).

        Not retried: a code is single-use, and after a ``-1`` it may have been spent.
        """
        params = self._code_params(code)
        answer = self.request("GET", "/sns/jscode2session", params=params, timeout=timeout)
        return self._code2session(answer)

    @property
    def async_capable(self) -> bool:
        """Whether :meth:`acode2session` runs on the event loop (no proxy configured)."""
        if self._async_ok is None:
            self._async_ok = not proxy_configured(self.api_base)
        return self._async_ok

    async def acode2session(self, code: str, timeout: float | None = None) -> Code2Session:
        """:meth:`code2session` on the running event loop (:mod:`wafer_py.wechat.asynchttp`), so
        that a login waiting on WeChat holds no thread. Same answers and errors.
        ``timeout`` bounds the call (``None``: the client's ``timeout``). Through a proxy
        (not :attr:`async_capable`) it runs :meth:`code2session` in a worker thread."""
        if not self.async_capable:  # timed by _send
            return await offload(functools.partial(self.code2session, code, timeout=timeout))
        observer = self.observer
        if observer is NO_OBSERVER:
            return await self._acode2session(code, timeout)
        started = time.perf_counter()
        outcome = "unavailable"  # a timeout (cancelled) included
        try:
            answer = await self._acode2session(code, timeout)
            outcome = "ok"
            return answer
        except WeChatError as exc:
            if not isinstance(exc, WeChatUnavailable):
                outcome = "error"  # WeChat answered, with an errcode or without an openid
            raise
        finally:
            observer.wechat_call("/sns/jscode2session", outcome, time.perf_counter() - started)

    async def _acode2session(self, code: str, timeout: float | None) -> Code2Session:
        where = "/sns/jscode2session"
        if self._aio is None:
            self._aio = AsyncHTTP(timeout=self.timeout)
        try:
            status, raw = await self._aio.get(
                self.api_base + where, self._code_params(code), timeout=timeout
            )
        except HTTPError as exc:
            logger.warning("wafer_py: WeChat %s failed: %s", where, exc)
            raise WeChatUnavailable() from None
        if status >= 500:
            raise WeChatUnavailable(f"WeChat answered {where} with HTTP {status}")
        return self._code2session(parse_wechat_body(raw, where))

    def _code_params(self, code: str) -> dict[str, str]:
        return {
            "appid": self.appid,
            "secret": self._secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }

    @staticmethod
    def _code2session(data: dict[str, Any]) -> Code2Session:
        openid, session_key = data.get("openid"), data.get("session_key")
        if not isinstance(openid, str) or not openid or not isinstance(session_key, str):
            raise WeChatError("WeChat's jscode2session answer has no openid or session_key")
        unionid = data.get("unionid")
        return Code2Session(openid, session_key, unionid if isinstance(unionid, str) else None)

    def fetch_access_token(
        self, *, stable: bool = True, force_refresh: bool = False
    ) -> AccessToken:
        """Fetch the app's global ``access_token`` from WeChat: no cache, no lock.

        Use :class:`~wafer_py.wechat.tokens.AccessTokenCache` instead: it shares one token
        between threads and processes. ``stable`` uses ``POST /cgi-bin/stable_token``
        (the same token until 5 minutes before it expires; ``force_refresh`` makes a new
        one, 20 times a day), else the classic ``GET /cgi-bin/token`` (every call makes a
        new token and retires the previous one after 5 minutes).
        """
        credentials = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self._secret,
        }
        if stable:
            data = self.request(
                "POST",
                "/cgi-bin/stable_token",
                retry=True,
                body={**credentials, "force_refresh": force_refresh},
            )
        else:
            data = self.request("GET", "/cgi-bin/token", params=credentials, retry=True)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if (
            not isinstance(token, str)
            or not token
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or expires_in <= 0
        ):
            raise WeChatError("WeChat's access_token answer has no token or lifetime")
        return AccessToken(token, float(expires_in))
