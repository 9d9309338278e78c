"""Two mini-programs on one backend and one store (issue #13, item 4), over real HTTP.

One ``WaferAuth`` per AppID, each app under its own path prefix: users and sessions stay
apart (an skey of one never validates for the other, whichever headers the client
generation sends), and the same person is linked across them by unionid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import requests

from tests.support.constants import OTHER_APPID, OTHER_SECRET, TEST_SECRET, TIMEOUT, TWO_APPS
from tests.support.servers import serve_asgi, serve_wsgi
from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.protocol import MAGIC_ID

pytestmark = pytest.mark.fake_apps(TWO_APPS)

#: Path prefix -> AppID.
APPS = {"/a": DEMO_APPID, "/b": OTHER_APPID}


def serve_two(framework: str, auth_a: WaferAuth, auth_b: WaferAuth) -> AbstractContextManager[str]:
    """Both examples' apps, one per prefix, on one server."""
    if framework == "flask":
        from werkzeug.exceptions import NotFound
        from werkzeug.middleware.dispatcher import DispatcherMiddleware

        from examples.flask_app.app import create_app as create_flask

        # The WSGI way: each app sees its own path (PATH_INFO without the prefix).
        return serve_wsgi(
            DispatcherMiddleware(
                NotFound(), {"/a": create_flask(auth_a), "/b": create_flask(auth_b)}
            )
        )
    if framework == "django-wsgi":
        from werkzeug.exceptions import NotFound
        from werkzeug.middleware.dispatcher import DispatcherMiddleware

        from examples.django_app.wsgi import create_app as create_django_wsgi

        # One Django handler per mini-program, each with its WAFER_AUTH; Django reads its
        # prefix from SCRIPT_NAME.
        return serve_wsgi(
            DispatcherMiddleware(
                NotFound(), {"/a": create_django_wsgi(auth_a), "/b": create_django_wsgi(auth_b)}
            )
        )
    from starlette.applications import Starlette
    from starlette.routing import Mount

    if framework == "django":
        from examples.django_app.asgi import create_app as create_django

        # Django reads its prefix from the ASGI root_path a Mount sets: each handler routes
        # (and logs in) on the path without it, as under WSGI.
        return serve_asgi(
            Starlette(
                routes=[Mount("/a", create_django(auth_a)), Mount("/b", create_django(auth_b))]
            )
        )
    from examples.starlette_app.app import create_app as create_starlette

    return serve_asgi(
        Starlette(
            routes=[Mount("/a", create_starlette(auth_a)), Mount("/b", create_starlette(auth_b))]
        )
    )


@pytest.fixture
def auths(
    framework: str, make_auth: Callable[..., WaferAuth], fake_server: FakeWeChatServer
) -> Iterator[tuple[WaferAuth, WaferAuth]]:
    # ASGI mounts keep the whole path in scope["path"]: each app's login path has its prefix.
    login = "/{}/weapp/login" if framework == "starlette" else "/weapp/login"
    auth_a = make_auth(login_path=login.format("a"))
    config_b = WaferConfig(
        appid=OTHER_APPID,
        app_secret=OTHER_SECRET,
        api_base=fake_server.url,
        secret_keys=(TEST_SECRET,),
        login_path=login.format("b"),
    )
    auth_b = WaferAuth(config_b, store=auth_a.store)  # one store for both
    yield auth_a, auth_b
    auth_b.wechat.close()


@pytest.fixture
def base(framework: str, auths: tuple[WaferAuth, WaferAuth]) -> Iterator[str]:
    with serve_two(framework, *auths) as url:
        yield url


def login(base: str, fake: FakeWeChat, prefix: str, user: str = "alice") -> dict[str, Any]:
    code = fake.login(APPS[prefix], user)["code"]
    response = requests.get(
        f"{base}{prefix}/weapp/login", headers={"X-WX-Code": code}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def who(base: str, prefix: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{base}{prefix}/weapp/user", headers=headers, timeout=TIMEOUT)


def generations(body: dict[str, Any]) -> list[dict[str, str]]:
    """The session headers of each client generation for a login answer."""
    return [
        {"X-WX-Id": body["session"]["id"], "X-WX-Skey": body["session"]["skey"]},
        {"X-WX-Skey": body["data"]["skey"]},
    ]


def test_two_mini_programs_keep_users_and_sessions_apart(
    base: str, fake: FakeWeChat, auths: tuple[WaferAuth, WaferAuth]
) -> None:
    auth_a, auth_b = auths
    in_a = login(base, fake, "/a")
    in_b = login(base, fake, "/b")
    openid_a = in_a["data"]["userinfo"]["openId"]
    openid_b = in_b["data"]["userinfo"]["openId"]
    assert openid_a != openid_b  # WeChat's openid is per AppID

    for headers in generations(in_a):
        mine = who(base, "/a", headers)
        assert mine.status_code == 200 and mine.json()["data"]["userInfo"]["openId"] == openid_a
        theirs = who(base, "/b", headers)
        assert theirs.status_code == 401 and theirs.json()[MAGIC_ID] == 1
    for headers in generations(in_b):
        assert who(base, "/b", headers).json()["data"]["userInfo"]["openId"] == openid_b
        assert who(base, "/a", headers).status_code == 401

    # A code of one app is refused by the other's login path, and stores nothing.
    code_b = fake.login(OTHER_APPID, "carol")
    refused = requests.get(
        f"{base}/a/weapp/login", headers={"X-WX-Code": code_b["code"]}, timeout=TIMEOUT
    )
    assert 400 <= refused.status_code < 500 and refused.json()[MAGIC_ID] == 1
    assert auth_a.store.get_user(code_b["openid"]) is None

    # One store: each app's user and sessions, apart.
    assert [s.id for s in auth_a.store.list_sessions(openid_a)] == [in_a["session"]["id"]]
    assert [s.id for s in auth_b.store.list_sessions(openid_b)] == [in_b["session"]["id"]]


def test_the_same_person_is_linked_across_them_by_unionid(
    base: str, fake: FakeWeChat, auths: tuple[WaferAuth, WaferAuth]
) -> None:
    auth_a, auth_b = auths
    openid_a = login(base, fake, "/a", "dora")["data"]["userinfo"]["openId"]
    openid_b = login(base, fake, "/b", "dora")["data"]["userinfo"]["openId"]
    login(base, fake, "/b", "eve")
    user_a = auth_a.find_user(openid=openid_a)
    assert user_a is not None and user_a.unionid
    everywhere = auth_b.find_users(unionid=user_a.unionid)
    assert {u.openid for u in everywhere} == {openid_a, openid_b}
    assert auth_a.find_users(unionid=user_a.unionid) == everywhere
    user_b = auth_b.find_user(openid=openid_b, unionid=user_a.unionid)
    assert user_b is not None and user_b.unionid == user_a.unionid
