"""Async twins of the WeChat clients: the same methods, as coroutines.

Each call runs the synchronous one in a worker thread (``anyio.to_thread``, so it works
under asyncio and trio), sharing its connection pool, its token cache and its
cross-process lock; the event loop never waits on WeChat or on the store.

Example::

    api = AsyncWeChatAPI(WeChatAPI(client, AccessTokenCache(store, client)))
    phone = await api.get_phone_number(code)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

from .phone import PhoneNumber
from .tokens import AccessToken
from .wechat import Code2Session, WeChatClient
from .wechat_api import WeChatAPI

__all__ = ["AsyncWeChatClient", "AsyncWeChatAPI"]

T = TypeVar("T")


class _InThreads:
    def __init__(self, max_threads: int) -> None:
        self.max_threads = max_threads
        self._limiter: CapacityLimiter | None = None

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._limiter is None:  # made inside the event loop that uses it
            self._limiter = CapacityLimiter(self.max_threads)
        return await anyio.to_thread.run_sync(lambda: call(*args, **kwargs), limiter=self._limiter)


class AsyncWeChatClient(_InThreads):
    """:class:`~wafer_py.wechat.WeChatClient` with coroutine methods."""

    def __init__(self, client: WeChatClient, *, max_threads: int = 64) -> None:
        super().__init__(max_threads)
        self.client = client

    def __repr__(self) -> str:
        return f"AsyncWeChatClient({self.client!r})"

    async def code2session(self, code: str) -> Code2Session:
        """See :meth:`WeChatClient.code2session`."""
        return await self._run(self.client.code2session, code)

    async def fetch_access_token(
        self, *, stable: bool = True, force_refresh: bool = False
    ) -> AccessToken:
        """See :meth:`WeChatClient.fetch_access_token`."""
        return await self._run(
            self.client.fetch_access_token, stable=stable, force_refresh=force_refresh
        )


class AsyncWeChatAPI(_InThreads):
    """:class:`~wafer_py.wechat_api.WeChatAPI` with coroutine methods."""

    def __init__(self, api: WeChatAPI, *, max_threads: int = 64) -> None:
        super().__init__(max_threads)
        self.api = api

    def __repr__(self) -> str:
        return f"AsyncWeChatAPI({self.api!r})"

    async def access_token(self) -> str:
        """See :meth:`WeChatAPI.access_token`."""
        return await self._run(self.api.access_token)

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
        return await self._run(self.api.call, method, path, params=params, body=body, retry=retry)

    async def get_phone_number(self, code: str, openid: str | None = None) -> PhoneNumber:
        """See :meth:`WeChatAPI.get_phone_number`."""
        return await self._run(self.api.get_phone_number, code, openid)

    async def check_session_key(self, openid: str, session_key: str) -> bool:
        """See :meth:`WeChatAPI.check_session_key`."""
        return await self._run(self.api.check_session_key, openid, session_key)

    async def reset_session_key(self, openid: str, session_key: str) -> str:
        """See :meth:`WeChatAPI.reset_session_key`."""
        return await self._run(self.api.reset_session_key, openid, session_key)
