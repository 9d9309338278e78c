"""The test-control API under ``/_fake/``: drive the fake from any language over HTTP.

Not WeChat's: JSON in, JSON out (``application/json``); a bad body or a missing field is
HTTP 400 with ``{"error": "..."}``, and a key an endpoint does not know is HTTP 400 with
``{"error", "known_keys"}`` (never ignored: ``{"usr": "bob"}`` would act for alice).
``appid`` defaults to the first configured app and ``user`` to ``"alice"``. Secrets are
never shown.

====================  ==================================================================
``POST /_fake/login``     ``{"appid", "user", "rotate"}`` -> ``{"code", "openid"}``
``POST /_fake/userinfo``  ``{"appid", "user", ...profile overrides}`` -> getUserInfo result
``POST /_fake/phone_code``  ``{"appid", "user", "phoneNumber"?}`` -> a getPhoneNumber code
``POST /_fake/profiles``  ``{"real"}`` -> ``{"ok": true, "real"}``: getUserInfo's profiles
``GET /_fake/profiles``   -> ``{"real"}`` (false: today's anonymous profile; true: the old)
``POST /_fake/expire_tokens``  ``{"appid"?}`` -> expire every access_token at once
``POST /_fake/inject``    ``{"path", "errcode", "times", "errmsg"?}`` -> ``{"ok": true}``
``POST /_fake/advance``   ``{"seconds"}`` -> ``{"ok": true, "now": ...}``
``POST /_fake/latency``   ``{"seconds"}`` -> ``{"ok": true}``: every WeChat answer waits
``GET /_fake/latency``    -> ``{"seconds"}``
``GET /_fake/calls``      -> ``{"calls": {path: count}}``
``POST /_fake/reset``     -> ``{"ok": true}`` (and the latency back to its start)
``GET /_fake/``           -> an index of the above and the known appids
====================  ==================================================================
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection
from typing import Any

from . import miniprogram
from .server import Request, Response, Router
from .state import WeChatState

__all__ = ["ENDPOINTS", "PREFIX", "is_control_path", "not_routed", "register"]

PREFIX = "/_fake"
_JSON = "application/json"

#: What each control endpoint does (served by ``GET /_fake/``).
ENDPOINTS: dict[str, str] = {
    "POST /_fake/login": '{"appid", "user", "rotate"} -> {"code", "openid"} (wx.login)',
    "POST /_fake/userinfo": (
        '{"appid", "user", ...profile overrides} -> '
        '{"encryptedData", "iv", "rawData", "signature", "userInfo"} (wx.getUserInfo)'
    ),
    "POST /_fake/phone_code": (
        '{"appid", "user", "phoneNumber"?, "countryCode"?} -> '
        '{"code", "openid", "phoneNumber", ...} (getPhoneNumber)'
    ),
    "POST /_fake/profiles": (
        '{"real"} -> {"ok": true, "real"} (true: wx.getUserInfo gives each user a real '
        "profile, as in the Wafer era; false: today's anonymous one, the default)"
    ),
    "GET /_fake/profiles": '-> {"real"}',
    "POST /_fake/expire_tokens": '{"appid"?} -> {"ok": true, "expired"} (access tokens)',
    "POST /_fake/inject": '{"path", "errcode", "times"} -> {"ok": true}',
    "POST /_fake/advance": '{"seconds"} -> {"ok": true, "now"}',
    "POST /_fake/latency": (
        '{"seconds"} -> {"ok": true} (every WeChat answer waits that long; a huge value '
        "makes a WeChat that never answers, a lower one releases the waiting answers)"
    ),
    "GET /_fake/latency": '-> {"seconds"}',
    "GET /_fake/calls": '-> {"calls": {path: count}}',
    "POST /_fake/reset": '-> {"ok": true}',
    "GET /_fake/": "this index",
}

_JsonBody = dict[str, Any]


def is_control_path(path: str) -> bool:
    """Whether ``path`` belongs to the control API."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json({"error": message}, status, _JSON, headers)


def not_routed(router: Router, request: Request) -> Response:
    """404 for an unknown control path, 405 for a known one with the wrong method."""
    allowed = router.methods(request.path)
    if allowed:
        return _error(405, f"use {' or '.join(allowed)}", {"Allow": ", ".join(allowed)})
    return _error(404, f"no control endpoint {request.path}; see GET {PREFIX}/")


def _string(body: _JsonBody, name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if value is None:
        raise ValueError(f"missing field {name!r}")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name!r} must be a non-empty string")
    return value


def _integer(body: _JsonBody, name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise ValueError(f"missing field {name!r}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name!r} must be an integer")
    return value


def _json_endpoint(
    run: Callable[[_JsonBody], Any], keys: Collection[str]
) -> Callable[[Request], Response]:
    """Wrap ``run(body) -> result``: parse the JSON object body, answer 400 on ValueError,
    and 400 listing ``keys`` on a key not among them (``{"usr": "bob"}`` once minted a
    code for alice, and ``phone_number`` was silently not ``phoneNumber``)."""
    known = sorted(keys)

    def handler(request: Request) -> Response:
        try:
            body = request.json()
        except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
            return _error(400, f"the body is not valid JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        unknown = [name for name in body if name not in keys]
        if unknown:
            return Response.json(
                {"error": _unknown_keys(unknown, known), "known_keys": known}, 400, _JSON
            )
        try:
            result = run(body)
        except ValueError as exc:
            return _error(400, str(exc))
        return Response.json(result, content_type=_JSON)

    return handler


def _unknown_keys(unknown: list[str], known: list[str]) -> str:
    """``unknown key 'usr' (did you mean 'user'?); known keys: ...``."""
    named = []
    for name in unknown:
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
        close = [camel] if camel in known else difflib.get_close_matches(name, known, n=1)
        named.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    listed = ", ".join(known) if known else "none: send {}"
    return f"unknown key{'s' * (len(unknown) > 1)} {', '.join(named)}; known keys: {listed}"


def register(router: Router, state: WeChatState) -> None:
    """Add the control endpoints to ``router``."""

    def login(body: _JsonBody) -> Any:
        rotate = body.get("rotate", True)
        if not isinstance(rotate, bool):
            raise ValueError("'rotate' must be true or false")
        return miniprogram.login(
            state,
            _string(body, "appid", state.default_appid),
            _string(body, "user", "alice"),
            rotate=rotate,
        )

    def userinfo(body: _JsonBody) -> Any:
        overrides = {k: v for k, v in body.items() if k not in ("appid", "user")}
        return miniprogram.user_info(
            state,
            _string(body, "appid", state.default_appid),
            _string(body, "user", "alice"),
            **overrides,
        )

    def inject(body: _JsonBody) -> Any:
        path = _string(body, "path")
        if not path.startswith("/"):
            raise ValueError("'path' must start with '/'")
        errmsg = body.get("errmsg")
        if errmsg is not None and not isinstance(errmsg, str):
            raise ValueError("'errmsg' must be a string")
        state.inject(path, _integer(body, "errcode"), _integer(body, "times", 1), errmsg)
        return {"ok": True}

    def advance(body: _JsonBody) -> Any:
        seconds = body.get("seconds")
        if seconds is None:
            raise ValueError("missing field 'seconds'")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise ValueError("'seconds' must be a number")
        return {"ok": True, "now": state.advance(float(seconds))}

    def latency(body: _JsonBody) -> Any:
        seconds = body.get("seconds")
        if seconds is None:
            raise ValueError("missing field 'seconds'")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise ValueError("'seconds' must be a number")
        state.set_latency(float(seconds))  # ValueError if negative
        return {"ok": True}

    def profiles(body: _JsonBody) -> Any:
        real = body.get("real")
        if not isinstance(real, bool):
            raise ValueError("'real' must be true or false")
        state.real_profiles = real
        return {"ok": True, "real": real}

    def current_profiles(request: Request) -> Response:
        return Response.json({"real": state.real_profiles}, content_type=_JSON)

    def current_latency(request: Request) -> Response:
        return Response.json({"seconds": state.latency}, content_type=_JSON)

    def reset(body: _JsonBody) -> Any:
        state.reset()
        return {"ok": True}

    def calls(request: Request) -> Response:
        return Response.json({"calls": dict(state.calls())}, content_type=_JSON)

    def index(request: Request) -> Response:
        wechat = sorted(f"{m} {p}" for m, p in router.routes if not is_control_path(p))
        return Response.json(
            {
                "service": "wafer_py fake WeChat",
                "appids": list(state.apps),
                "wechat_endpoints": wechat,
                "control_endpoints": ENDPOINTS,
            },
            content_type=_JSON,
        )

    user = ("appid", "user")
    router.add("POST", f"{PREFIX}/login", _json_endpoint(login, (*user, "rotate")))
    userinfo_keys = (*user, "legacy", *miniprogram.PROFILE_FIELDS)
    router.add("POST", f"{PREFIX}/userinfo", _json_endpoint(userinfo, userinfo_keys))
    inject_keys = ("path", "errcode", "times", "errmsg")
    router.add("POST", f"{PREFIX}/inject", _json_endpoint(inject, inject_keys))
    router.add("POST", f"{PREFIX}/advance", _json_endpoint(advance, ("seconds",)))
    router.add("POST", f"{PREFIX}/latency", _json_endpoint(latency, ("seconds",)))
    router.add("GET", f"{PREFIX}/latency", current_latency)
    router.add("POST", f"{PREFIX}/profiles", _json_endpoint(profiles, ("real",)))
    router.add("GET", f"{PREFIX}/profiles", current_profiles)
    router.add("POST", f"{PREFIX}/reset", _json_endpoint(reset, ()))
    router.add("GET", f"{PREFIX}/calls", calls)
    router.add("GET", f"{PREFIX}/", index)
    router.add("GET", PREFIX, index)
