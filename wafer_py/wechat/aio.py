"""Coroutine views of the WeChat clients, kept for code that imports them.

No second async mechanism: ``code2session`` is the client's own
:meth:`~wafer_py.wechat.WeChatClient.acode2session` (on the event loop where it can),
every other call the synchronous one through :func:`wafer_py.plans.offload` (one worker
thread pool and limit for all of wafer_py; it shares the client's connection pool, token
cache and cross-process lock).

Example::

    api = AsyncWeChatAPI(WeChatAPI(client, AccessTokenCache(store, client)))
    phone = await api.get_phone_number(code)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..plans import offload
from . import Code2Session, WeChatClient
from .api import WeChatAPI
from .phone import PhoneNumber
from .tokenrecords import AccessToken

__all__ = ["AsyncWeChatClient", "AsyncWeChatAPI"]


def _no_own_threads(max_threads: int | None) -> None:
    if max_threads is not None:
        raise TypeError(
            "max_threads is no longer taken here: wafer_py has one thread limit "
            "(wafer_py.plans.set_max_threads, or WaferMiddleware's max_threads)"
        )


class AsyncWeChatClient:
    """:class:`~wafer_py.wechat.WeChatClient` with coroutine methods."""

    def __init__(self, client: WeChatClient, *, max_threads: int | None = None) -> None:
        _no_own_threads(max_threads)
        self.client = client

    def __repr__(self) -> str:
        return f"AsyncWeChatClient({self.client!r})"

    async def code2session(self, code: str) -> Code2Session:
        """See :meth:`WeChatClient.code2session`."""
        return await self.client.acode2session(code)

    async def fetch_access_token(
        self, *, stable: bool = True, force_refresh: bool = False
    ) -> AccessToken:
        """See :meth:`WeChatClient.fetch_access_token`."""
        return await offload(
            self.client.fetch_access_token, stable=stable, force_refresh=force_refresh
        )


class AsyncWeChatAPI:
    """:class:`~wafer_py.wechat.api.WeChatAPI` with coroutine methods."""

    def __init__(self, api: WeChatAPI, *, max_threads: int | None = None) -> None:
        _no_own_threads(max_threads)
        self.api = api

    def __repr__(self) -> str:
        return f"AsyncWeChatAPI({self.api!r})"

    async def access_token(self) -> str:
        """See :meth:`WeChatAPI.access_token`."""
        return await offload(self.api.access_token)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        retry: bool = False,
    ) -> dict[str, Any]:
        """See :meth:`WeChatAPI.call`."""
        return await offload(self.api.call, method, path, params=params, body=body, retry=retry)

    async def get_phone_number(self, code: str, openid: str | None = None) -> PhoneNumber:
        """See :meth:`WeChatAPI.get_phone_number`."""
        return await offload(self.api.get_phone_number, code, openid)

    async def check_session_key(self, openid: str, session_key: str) -> bool:
        """See :meth:`WeChatAPI.check_session_key`."""
        return await offload(self.api.check_session_key, openid, session_key)

    async def reset_session_key(self, openid: str, session_key: str) -> str:
        """See :meth:`WeChatAPI.reset_session_key`."""
        return await offload(self.api.reset_session_key, openid, session_key)
