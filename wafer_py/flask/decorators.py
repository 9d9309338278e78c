"""``login_required`` for Flask views: the protocol's answer, not a redirect to a page.

A request without a valid session gets the invalid-session answer, which makes the
mini-program's client SDK log in and retry::

    @app.get("/weapp/user")
    @login_required
    def user():
        return {"code": 0, "data": {"userInfo": current_user.userinfo()}}

It decorates sync and ``async def`` views alike (``current_app.ensure_sync``, ``flask[async]``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, cast

from flask import current_app
from flask.typing import ResponseReturnValue

from .extension import flask_response
from .views import wafer_state

__all__ = ["login_required"]

P = ParamSpec("P")


def login_required(view: Callable[P, Any]) -> Callable[P, ResponseReturnValue]:
    """Answer the protocol's invalid-session error unless the request has a valid session.

    Decorates a sync or an ``async def`` view (run through ``current_app.ensure_sync``).
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        state = wafer_state()
        if not state.is_authenticated:
            return flask_response(state.challenge())
        return cast("ResponseReturnValue", current_app.ensure_sync(view)(*args, **kwargs))

    return wrapper
