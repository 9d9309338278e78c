"""What the CLI says when WeChat fails, and a read-only probe of each: a store opened
without creating anything and read once; an ``access_token`` asked of WeChat.

A failure is one line that names the cause and the setting to fix, never a secret: the
library's :class:`~wafer_py.exceptions.WeChatUnavailable` hides the network error (its
text may hold the AppSecret in a URL); here the innermost OS error is named instead
(``gaierror: Name or service not known``), with the API base it was asked at.
"""

from __future__ import annotations

import time

from ..config import WaferConfig
from ..exceptions import (
    InvalidAppId,
    InvalidAppSecret,
    WaferError,
    WeChatAPIError,
    WeChatError,
    WeChatUnavailable,
)
from ..stores.base import call_store
from .opening import CommandFailed, one_line, open_existing, store_failed

__all__ = ["probe_store", "probe_wechat", "wechat_failed"]


def wechat_failed(exc: WeChatError, config: WaferConfig) -> str:
    """One line for a failed call to WeChat, naming the setting to check."""
    if isinstance(exc, InvalidAppSecret):
        return (
            f"WeChat at {config.api_base} refused WAFER_APP_SECRET for AppID {config.appid} "
            f"(errcode {exc.errcode}): copy the AppSecret again from the mini-program's admin "
            "console (it changes when reset)"
        )
    if isinstance(exc, InvalidAppId):
        return (
            f"WeChat at {config.api_base} does not know WAFER_APPID {config.appid} "
            f"(errcode {exc.errcode}): check the AppID (wx followed by 16 characters)"
        )
    if isinstance(exc, WeChatAPIError):
        errmsg = " ".join(str(exc.errmsg).split())
        said = f": {errmsg}" if errmsg else ""
        return f"WeChat at {config.api_base}: {exc.message}{said}"
    if isinstance(exc, WeChatUnavailable):
        cause = _root_cause(exc)
        why = f"{type(cause).__name__}: {_os_text(cause)}" if cause else exc.message
        return (
            f"cannot reach WeChat at {config.api_base} ({why}); check "
            "WAFER_WECHAT_API_BASE (unset: the real WeChat) and the network"
        )
    return f"WeChat at {config.api_base}: {exc.message}"


def _root_cause(exc: BaseException) -> BaseException | None:
    """The innermost exception behind ``exc`` (``raise ... from None`` keeps it as the
    context), preferring an ``OSError``: its text holds no URL."""
    seen: list[BaseException] = []
    current: BaseException | None = exc.__cause__ or exc.__context__
    while current is not None and current not in seen:
        seen.append(current)
        nxt = current.__cause__ or current.__context__
        if nxt is None and current.args and isinstance(current.args[-1], BaseException):
            nxt = current.args[-1]  # urllib3 keeps its reason in args
        current = nxt
    for found in reversed(seen):
        if isinstance(found, OSError) and found.strerror:
            return found
    return seen[-1] if seen else None


def _os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__  # anything else may quote the URL, and so the secret


def probe_store(url: str) -> str | None:
    """``None`` if the store at ``url`` exists and answers a read, else the problem."""
    try:
        store = open_existing(url)
    except CommandFailed as exc:
        return one_line(exc)
    try:
        call_store(store.stats, time.time())
    except WaferError as exc:
        return store_failed(exc, url)
    finally:
        store.close()
    return None


def probe_wechat(config: WaferConfig) -> str | None:
    """``None`` if WeChat hands out an ``access_token`` for the configured AppID and
    AppSecret, else the problem. Asks ``stable_token`` without forcing: it hands back
    the token in use, so a check never retires the token the servers hold."""
    from ..wechat.client import WeChatClient

    client = WeChatClient(
        config.appid, config.app_secret, api_base=config.api_base, timeout=config.wechat_timeout
    )
    try:
        client.fetch_access_token(stable=True)
    except WeChatError as exc:
        return wechat_failed(exc, config)
    finally:
        client.close()
    return None
