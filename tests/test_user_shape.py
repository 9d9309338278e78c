"""One user shape and one set of helpers in every adapter (issue #12, item 2).

Flask's ``current_user`` and Starlette's ``request.user`` are the same
:class:`~wafer_py.users.WaferUser` (or :class:`~wafer_py.users.AnonymousUser`); Flask's
decorators run ``async def`` views; each app has one ``WaferAuth``, shared by its web login.
In-process clients (Flask's test client, ``httpx.ASGITransport``): the server is not the point.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
import requests
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wafer_py import AnonymousUser, WaferAuth, WaferUser
from wafer_py.asgi import AUTH_KEY, WaferMiddleware
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID, WaferConfig
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID

#: One request: (path, headers) -> (status, JSON body).
Answer = tuple[int, Any]


def describe(user: Any) -> dict[str, Any]:
    """What a view sees of its user: the public names and their values."""
    names = sorted(name for name in dir(user) if not name.startswith("_"))
    return {
        "type": user.__class__.__name__,  # Flask's LocalProxy passes __class__ on
        "names": names,
        "truthy": bool(user),
        "is_authenticated": user.is_authenticated,
        "openid": user.openid,
        "display_name": user.display_name,
        "identity": user.identity,
        "userinfo": user.userinfo(),
        "user_openid": None if user.user is None else user.user.openid,
        "repr": repr(user),
    }


def flask_app(auth: WaferAuth) -> Flask:
    from wafer_py.flask import Wafer, current_user, login_required

    app = Flask(__name__)
    Wafer(app, auth)

    @app.get("/me")
    def me() -> dict[str, Any]:
        return describe(current_user)

    @app.get("/async")
    @login_required
    async def async_view() -> dict[str, Any]:
        await asyncio.sleep(0)  # a real await: the view is a coroutine function
        return {"openid": current_user.openid}

    return app


def starlette_app(auth: WaferAuth) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse(describe(request.user))

    return Starlette(routes=[Route("/me", me)], middleware=[Middleware(WaferMiddleware, auth=auth)])


def _answer(status: int, text: str) -> Answer:
    return status, json.loads(text or "null")


def asgi_get(app: Any, requests: list[tuple[str, dict[str, str]]]) -> list[Answer]:
    """GET each path from ``app`` in process, in order, on one event loop. A request whose
    ``X-WX-Skey`` is ``"<skey>"`` gets the skey of the first answer (a login)."""

    async def run() -> list[Answer]:
        transport = httpx.ASGITransport(app=app)
        answers: list[Answer] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            for path, headers in requests:
                if headers.get("X-WX-Skey") == "<skey>":
                    headers = {"X-WX-Skey": answers[0][1]["data"]["skey"]}
                response = await client.get(path, headers=headers)
                answers.append(_answer(response.status_code, response.text))
        return answers

    return anyio.run(run)


def wsgi_get(app: Flask, requests: list[tuple[str, dict[str, str]]]) -> list[Answer]:
    """The same through Flask's test client."""
    client = app.test_client()
    answers: list[Answer] = []
    for path, headers in requests:
        if headers.get("X-WX-Skey") == "<skey>":
            headers = {"X-WX-Skey": answers[0][1]["data"]["skey"]}
        response = client.get(path, headers=headers)
        answers.append(_answer(response.status_code, response.text))
    return answers


def views_of(framework: str, auth: WaferAuth, fake: FakeWeChat, name: str) -> list[Answer]:
    """Log ``name`` in, then GET /me with its skey and without any (one event loop)."""
    code = fake.login(DEMO_APPID, name)["code"]
    steps = [("/weapp/login", {"X-WX-Code": code}), ("/me", {"X-WX-Skey": "<skey>"}), ("/me", {})]
    if framework == "flask":
        return wsgi_get(flask_app(auth), steps)
    return asgi_get(starlette_app(auth), steps)


@pytest.mark.parametrize("framework", ["flask", "starlette"])
def test_the_user_a_view_sees_is_the_same_in_both_frameworks(
    framework: str, make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    login, (status, seen), (_, anonymous) = views_of(framework, make_auth(), fake, framework)
    assert login[0] == 200 and status == 200, (login, seen)
    openid = login[1]["data"]["userinfo"]["openId"]
    wafer_names = [n for n in dir(WaferUser) if not n.startswith("_")]
    assert seen["type"] == "WaferUser"
    assert seen["names"] == sorted(wafer_names)
    assert seen["truthy"] is True and seen["is_authenticated"] is True
    assert seen["openid"] == seen["identity"] == seen["user_openid"] == openid
    assert seen["userinfo"]["openId"] == openid
    assert seen["display_name"] == seen["userinfo"]["nickName"] != ""
    assert seen["repr"] == f"WaferUser(openid={openid!r})"  # no session, no profile
    assert anonymous == {
        "type": "AnonymousUser",
        "names": sorted(n for n in dir(AnonymousUser) if not n.startswith("_")),
        "truthy": False,  # `if current_user:` still means logged in
        "is_authenticated": False,
        "openid": None,
        "display_name": "",
        "identity": "",
        "userinfo": {},
        "user_openid": None,
        "repr": "AnonymousUser()",
    }
    # The anonymous user has every name a logged-in one has, but the raw identity.
    assert set(seen["names"]) - set(anonymous["names"]) == {"authenticated"}


def test_flask_async_view_behind_login_required(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    app = flask_app(make_auth())
    code = fake.login(DEMO_APPID, "async-flask")["code"]
    ((_, login),) = wsgi_get(app, [("/weapp/login", {"X-WX-Code": code})])
    skey, openid = login["data"]["skey"], login["data"]["userinfo"]["openId"]
    ok, refused = wsgi_get(app, [("/async", {"X-WX-Skey": skey}), ("/async", {})])
    assert ok == (200, {"openid": openid})
    assert refused[0] == 401
    assert refused[1][MAGIC_ID] == 1
    assert refused[1]["error"] == "ERR_INVALID_SESSION"


def test_starlette_login_required_on_a_fastapi_route(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    import fastapi

    from wafer_py.starlette import login_required

    app = fastapi.FastAPI()
    app.add_middleware(WaferMiddleware, auth=make_auth())

    @app.get("/mine")
    @login_required
    async def mine(request: Request) -> dict[str, Any]:  # FastAPI passes request by keyword
        return {"displayName": request.user.display_name}

    code = fake.login(DEMO_APPID, "fastapi-shape")["code"]
    steps = [("/weapp/login", {"X-WX-Code": code}), ("/mine", {"X-WX-Skey": "<skey>"})]
    login, mine_answer = asgi_get(app, steps)
    assert mine_answer == (200, {"displayName": login[1]["data"]["userinfo"]["nickName"]})
    assert asgi_get(app, [("/mine", {})])[0][0] == 401


def test_flask_async_view_behind_web_login_required(
    make_auth: Callable[..., WaferAuth], fake_server: Any
) -> None:
    from wafer_py.flask import Wafer, WaferWeb, current_web_user, web_login_required

    app = Flask(__name__)
    Wafer(app, make_auth(open_base=fake_server.url))  # the fake's OAuth pages
    WaferWeb(app)

    @app.get("/page")
    @web_login_required  # silent snsapi_base
    async def page() -> str:
        await asyncio.sleep(0)
        return f"openid={current_web_user.openid}"

    client = app.test_client()
    first = client.get("/page")
    assert first.status_code == 302  # off to the fake WeChat's authorize URL
    silent = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
    assert silent.status_code == 302  # snsapi_base: straight back to the callback
    back = urlsplit(silent.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302  # session set
    answer = client.get("/page")
    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("openid=o")


def test_flask_helpers_take_auth_by_keyword(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    from wafer_py.flask import Wafer, fetch_phone_number

    auth = make_auth()
    app = Flask(__name__)
    app.testing = True  # the view's exception reaches the test
    Wafer(app, auth)

    @app.post("/phone")
    def phone() -> Any:
        return {"number": fetch_phone_number(auth).phone_number}  # type: ignore[arg-type]

    code = fake.login(DEMO_APPID, "phone-order")["code"]
    ((_, login),) = wsgi_get(app, [("/weapp/login", {"X-WX-Code": code})])
    with pytest.raises(TypeError, match="give auth by keyword"):
        app.test_client().post("/phone", headers={"X-WX-Skey": login["data"]["skey"]})


def test_starlette_web_login_shares_the_listed_middleware_auth(
    make_auth: Callable[..., WaferAuth],
) -> None:
    from wafer_py.starlette import WaferWeb

    auth = make_auth()
    seen: list[object] = []

    async def which(request: Request) -> Response:
        seen.append(request.scope[AUTH_KEY])
        return JSONResponse("ok")

    app = Starlette(
        routes=[Route("/which", which)], middleware=[Middleware(WaferMiddleware, auth=auth)]
    )
    web = WaferWeb(app)
    assert web.auth is auth
    assert web.login.store is auth.store
    assert asgi_get(app, [("/which", {})]) == [(200, "ok")]
    assert seen == [auth]


def test_starlette_web_login_takes_the_auth_the_middleware_built(
    fake_server: Any, tmp_path: Path
) -> None:
    from wafer_py.starlette import WaferWeb, web_login_required

    config = WaferConfig(
        api_base=fake_server.url,
        fake_wechat=True,
        store_url=f"sqlite:///{tmp_path}/web.db",
        secret_keys=("test-secret-key-of-the-wafer-py-user-shape",),
    )
    seen: list[object] = []

    async def which(request: Request) -> Response:
        seen.append(request.scope[AUTH_KEY])
        return JSONResponse("ok")

    @web_login_required
    async def page(request: Request) -> Response:
        return JSONResponse("page")

    app = Starlette(
        routes=[Route("/which", which), Route("/page", page)],
        middleware=[Middleware(WaferMiddleware, config=config)],  # it builds its own auth
    )
    web = WaferWeb(app)
    assert web.auth is None  # not built yet: the middleware stack is built on first use
    first, redirect = asgi_get(app, [("/which", {}), ("/page", {})])
    assert first == (200, "ok")
    assert redirect[0] == 302  # off to WeChat's OAuth
    assert web.auth is seen[0]
    assert isinstance(web.auth, WaferAuth)
    web.auth.close()


def test_flask_web_login_and_wafer_share_one_auth_in_either_order(tmp_path: Path) -> None:
    from wafer_py.flask import Wafer, WaferWeb

    for first in ("wafer", "web"):
        app = Flask(__name__)
        app.config.update(
            WAFER_APPID=DEMO_APPID,
            WAFER_APP_SECRET=DEMO_APP_SECRET,
            WAFER_STORE_URL=f"sqlite:///{tmp_path}/{first}.db",
            WAFER_SECRET_KEY="test-secret-key-of-the-wafer-py-user-shape",
        )
        if first == "wafer":
            wafer, web = Wafer(app), WaferWeb(app)
        else:
            web = WaferWeb(app)
            wafer = Wafer(app)
        assert wafer.auth is not None
        assert web.auth is wafer.auth, first
        assert web.login.store is wafer.auth.store
        wafer.auth.close()
