"""WeChat's server side, as one client.

* :mod:`.client`: ``jscode2session`` and the HTTP plumbing (``requests``; the asyncio path
  through :mod:`.asynchttp`), with :mod:`.aio` its async facade;
* :mod:`.tokens`: the shared ``access_token`` cache (its records in :mod:`.tokenrecords`);
  :mod:`.api` and :mod:`.phone`: the APIs that take a token.

``from wafer_py.wechat import WeChatClient`` works as before the package existed; the
client (and ``requests``) is imported on first use, not with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Code2Session, WeChatClient, parse_wechat_body

__all__ = ["WeChatClient", "Code2Session", "parse_wechat_body"]


def __getattr__(name: str) -> Any:
    # import_module, not ``from . import client``: that would ask this hook for ``client``.
    client = importlib.import_module(f"{__name__}.client")
    try:
        return getattr(client, name)
    except AttributeError:
        raise AttributeError(f"module 'wafer_py.wechat' has no attribute {name!r}") from None
