"""A fake WeChat API server, for tests, the demo and offline development.

Same URLs, JSON and errcodes as ``api.weixin.qq.com`` (errors with HTTP 200 and a
``rid:`` suffix), plus a test-control API under ``/_fake/``. Standard library only.

Example::

    from wafer_py.fakewechat import FakeWeChat

    fake = FakeWeChat()                      # knows the demo app of wafer_py.config
    with fake.serve() as server:             # http://127.0.0.1:<free port>
        code = fake.login(user="alice")["code"]
        # GET {server.url}/sns/jscode2session?appid=...&secret=...&js_code={code}
        #     &grant_type=authorization_code
"""

from __future__ import annotations

from .fake import FakeWeChat
from .server import FakeWeChatServer, Request, Response, Router
from .state import CODE_TTL, WeChatState

__all__ = [
    "CODE_TTL",
    "FakeWeChat",
    "FakeWeChatServer",
    "Request",
    "Response",
    "Router",
    "WeChatState",
]
