"""wafer_py: the Python server side of the Wafer WeChat mini-program login protocol.

The core (this package's top level) knows nothing of web frameworks::

    from wafer_py import WaferAuth, WaferConfig

Adapters: :mod:`wafer_py.wsgi` (``WaferWSGIMiddleware``), :mod:`wafer_py.asgi`
(``WaferMiddleware``), :mod:`wafer_py.flask` and :mod:`wafer_py.starlette`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _moved
from .auth import Authenticated, Credentials, LoginResult, WaferAuth
from .config import WaferConfig
from .exceptions import (
    DecryptError,
    InvalidSession,
    StoreUnavailable,
    WaferError,
    WeChatAPIError,
    WeChatError,
)
from .models import Session, User
from .stores import MemoryStore, SessionStore, SQLiteStore, open_store
from .users import AnonymousUser, WaferUser

_moved.install()  # old module paths (wafer_py.tokens, ...) for one release

if TYPE_CHECKING:
    from .wechat.client import WeChatClient

__version__ = "0.1.0"

__all__ = [
    "AnonymousUser",
    "Authenticated",
    "Credentials",
    "DecryptError",
    "InvalidSession",
    "LoginResult",
    "MemoryStore",
    "Session",
    "SessionStore",
    "SQLiteStore",
    "StoreUnavailable",
    "User",
    "WaferAuth",
    "WaferConfig",
    "WaferError",
    "WaferUser",
    "WeChatAPIError",
    "WeChatClient",
    "WeChatError",
    "open_store",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # WeChatClient needs requests; import it only when asked for.
    if name == "WeChatClient":
        from .wechat.client import WeChatClient

        return WeChatClient
    raise AttributeError(f"module 'wafer_py' has no attribute {name!r}")
