"""``Wafer(app)``: the Flask extension that puts the Wafer protocol in front of an app.

It wraps ``app.wsgi_app`` in :class:`~wafer_py.wsgi.WaferWSGIMiddleware` (the login path,
the headers of every other request) and, with ``protect``, adds a ``before_request`` guard
on the URL rule Flask routed to. Its :class:`~wafer_py.auth.WaferAuth` is given, shared with
:class:`~wafer_py.flask.web.WaferWeb`, or read from ``app.config`` (then the ``WAFER_*``
environment variables), as Django reads its settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask, Response, current_app, request

from ..auth import WaferAuth
from ..config import WaferConfig, config_sources
from ..protocol import PathMatcher, WaferResponse
from ..wsgi import WaferWSGIMiddleware, get_state

__all__ = ["Wafer"]


def auth_from_config(app: Flask) -> WaferAuth:
    """A :class:`WaferAuth` configured by the ``WAFER_*`` keys of ``app.config``, then
    the ``WAFER_*`` environment variables for the keys it leaves out."""
    found = config_sources(app.config, framework_name="app.config")
    return WaferAuth(WaferConfig.from_env({k: v for k, (v, _) in found.items()}))


def flask_response(answer: WaferResponse) -> Response:
    """The protocol's answer as a Flask response."""
    return Response(answer.content, answer.status, headers=answer.headers)


class Wafer:
    """The Flask extension: wraps ``app.wsgi_app`` in :class:`WaferWSGIMiddleware`."""

    def __init__(
        self,
        app: Flask | None = None,
        auth: WaferAuth | None = None,
        *,
        protect: Iterable[str] | PathMatcher | None = None,
    ) -> None:
        self.auth = auth
        self.protect = protect
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        from .web import WaferWeb  # it imports this module

        if self.auth is None:
            web = app.extensions.get("wafer_web")  # WaferWeb(app) came first: share its auth
            self.auth = web.auth if isinstance(web, WaferWeb) else auth_from_config(app)
        middleware = WaferWSGIMiddleware(app.wsgi_app, self.auth, protect=self.protect)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        if self.protect is not None:
            app.before_request(_route_guard(middleware.protocol.protect))
        app.extensions["wafer"] = self


def _route_guard(protect: PathMatcher) -> Callable[[], Response | None]:
    """A ``before_request`` hook refusing a request without a session whose matched URL
    rule (``/api/<int:id>``) is protected.

    The middleware decides on the path before routing; this decides on the route that
    Werkzeug's router actually chose, whatever it made of the path on the way.
    """

    def guard() -> Response | None:
        state = get_state(request.environ)
        if state.is_authenticated:
            return None
        rule = request.url_rule
        if rule is None or not protect(rule.rule):
            return None
        return flask_response(state.challenge())

    return guard


def app_auth(what: str) -> WaferAuth:
    """The auth of the current app's :class:`Wafer` extension (for ``what``, a helper
    given none); a ``RuntimeError`` without one."""
    wafer = current_app.extensions.get("wafer")
    if not isinstance(wafer, Wafer) or wafer.auth is None:
        raise RuntimeError(f"{what} needs Wafer(app) or an auth")
    return wafer.auth
