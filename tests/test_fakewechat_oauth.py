"""The fake WeChat's web OAuth (网页授权), over real HTTP on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.support.constants import CALLBACK, OTHER_APPID, OTHER_SECRET, TIMEOUT, TWO_APPS
from tests.support.fake_http import (
    confirm_consent,
    consent_form,
    errcode_of,
    exchange_code,
    fake_get,
)
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer

pytestmark = pytest.mark.fake_apps(TWO_APPS)


def authorize(
    server: FakeWeChatServer,
    scope: str = "snsapi_base",
    state: str | None = "abc123",
    appid: str | None = DEMO_APPID,
    redirect_uri: str | None = CALLBACK,
    **extra: str,
) -> requests.Response:
    return fake_get(
        server,
        "/connect/oauth2/authorize",
        appid=appid,
        redirect_uri=redirect_uri,
        response_type=extra.pop("response_type", "code"),
        scope=scope,
        state=state,
        **extra,
    )


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


#: ``token(server, code, appid, secret, grant_type)``: the access_token of an OAuth code.
token = partial(exchange_code, path="/sns/oauth2/access_token", code_name="code")


def tokens_for(
    fake: FakeWeChat, server: FakeWeChatServer, scope: str = "snsapi_userinfo", user: str = "alice"
) -> dict[str, Any]:
    body: dict[str, Any] = token(server, fake.oauth.authorize(DEMO_APPID, user, scope)).json()
    return body


# ------------------------------------------------------------------ the authorize page


def test_base_scope_redirects_at_once_with_code_and_state(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    response = authorize(server, "snsapi_base", "abc123")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://example.com/wechat/oauth/callback?next=%2Fweb&code=")
    query = query_of(location)
    assert query["state"] == ["abc123"] and query["next"] == ["/web"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", query["code"][0])
    body = token(server, query["code"][0]).json()
    assert body["scope"] == "snsapi_base" and "unionid" not in body
    assert body["openid"] == fake.login(DEMO_APPID, "alice", rotate=False)["openid"]


def test_userinfo_scope_shows_a_consent_page_then_allow(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    page = authorize(server, "snsapi_userinfo", "xyz")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'id="allow"' in page.text and 'id="deny"' in page.text
    assert "Alice" in page.text
    form = consent_form(page)
    answer = confirm_consent(server.url, form, "allow")
    assert answer.status_code == 302
    query = query_of(answer.headers["Location"])
    assert query["state"] == ["xyz"]
    body = token(server, query["code"][0]).json()
    assert body["scope"] == "snsapi_userinfo" and body["unionid"]


def test_deny_comes_back_without_a_code(server: FakeWeChatServer) -> None:
    form = consent_form(authorize(server, "snsapi_userinfo", "xyz"))
    answer = confirm_consent(server.url, form, "deny")
    assert answer.status_code == 302
    query = query_of(answer.headers["Location"])
    assert query["state"] == ["xyz"] and "code" not in query


def test_user_hint_by_query_parameter_and_cookie(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    bob = fake.login(DEMO_APPID, "bob", rotate=False)["openid"]
    carol = fake.login(DEMO_APPID, "carol", rotate=False)["openid"]
    by_query = authorize(server, user="bob").headers["Location"]
    assert token(server, query_of(by_query)["code"][0]).json()["openid"] == bob
    by_cookie = requests.get(
        server.url + "/connect/oauth2/authorize",
        timeout=TIMEOUT,
        allow_redirects=False,
        params={
            "appid": DEMO_APPID,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": "s",
        },
        cookies={"fakewechat_user": "carol"},
    )
    assert (
        token(server, query_of(by_cookie.headers["Location"])["code"][0]).json()["openid"] == carol
    )
    assert "Bob" in authorize(server, "snsapi_userinfo", user="bob").text


@pytest.mark.parametrize(
    ("changes", "errcode"),
    [
        ({"appid": None}, 10012),
        ({"appid": "wxdoesnotexist000"}, 40013),
        ({"redirect_uri": None}, 10011),
        ({"redirect_uri": "javascript:alert(1)"}, 10003),
        ({"scope": None}, 10010),
        ({"scope": "snsapi_login"}, 10005),
        ({"state": "has space"}, 10013),
        ({"state": "a" * 129}, 10013),
    ],
)
def test_authorize_errors_are_html_pages(
    server: FakeWeChatServer, changes: dict[str, Any], errcode: int
) -> None:
    params: dict[str, Any] = {"scope": "snsapi_base", "state": "abc", **changes}
    response = authorize(server, **params)
    assert response.status_code == 200  # shown to the user, never sent to the server
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert f"errcode: {errcode}" in response.text


def test_redirect_domain_must_be_allowed(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    fake.oauth.allow_domains(DEMO_APPID, "example.com")
    assert authorize(server).status_code == 302
    refused = authorize(server, redirect_uri="https://evil.example.net/cb")
    assert "errcode: 10003" in refused.text and "Location" not in refused.headers


def test_wrong_response_type_is_an_error_page(server: FakeWeChatServer) -> None:
    response = authorize(server, response_type="token")
    assert response.status_code == 200 and "response_type 必须是 code" in response.text
    english = requests.get(
        response.url, headers={"Accept-Language": "en-US,en;q=0.9"}, timeout=TIMEOUT
    )
    assert english.status_code == 200 and "response_type must be code" in english.text


def test_the_pages_speak_the_browsers_language(server: FakeWeChatServer) -> None:
    page = authorize(server, "snsapi_userinfo", "xyz")
    assert '<html lang="zh-CN">' in page.text and page.headers["Vary"] == "Accept-Language"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert 'id="allow" class="btn primary">允许</button>' in page.text
    english = requests.get(page.url, headers={"Accept-Language": "en"}, timeout=TIMEOUT)
    assert '<html lang="en">' in english.text
    assert 'id="allow" class="btn primary">Allow</button>' in english.text
    assert consent_form(english) == consent_form(page)  # the same form either way
    error = requests.get(
        authorize(server, appid=None).url, headers={"Accept-Language": "en"}, timeout=TIMEOUT
    )
    assert "appid is empty" in error.text and "errcode: 10012" in error.text


def test_calls_are_counted(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    authorize(server)
    authorize(server, "snsapi_userinfo")
    assert fake.calls["/connect/oauth2/authorize"] == 2


# ------------------------------------------------------------------- access_token


def test_access_token_success(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    body = tokens_for(fake, server)
    assert set(body) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "openid",
        "scope",
        "unionid",
    }
    assert body["expires_in"] == 7200
    assert body["access_token"] != body["refresh_token"]


@pytest.mark.parametrize(
    ("changes", "errcode"),
    [
        ({"appid": None}, 41002),
        ({"secret": None}, 41004),
        ({"code": None}, 41008),
        ({"grant_type": "client_credential"}, 40002),
        ({"appid": "wxdoesnotexist000"}, 40013),
        ({"secret": "wrong"}, 40125),
        ({"code": "0" * 32}, 40029),
    ],
)
def test_access_token_errors(
    fake: FakeWeChat, server: FakeWeChatServer, changes: dict[str, Any], errcode: int
) -> None:
    params: dict[str, Any] = {"code": fake.oauth.authorize(), **changes}
    assert errcode_of(token(server, **params)) == errcode


def test_code_of_another_app_is_invalid(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.oauth.authorize(OTHER_APPID)
    assert errcode_of(token(server, code)) == 40029
    assert "openid" in token(server, code, OTHER_APPID, OTHER_SECRET).json()


def test_code_is_single_use_40163(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.oauth.authorize()
    assert "access_token" in token(server, code).json()
    second = token(server, code)
    assert errcode_of(second) == 40163
    assert second.json()["errmsg"].startswith("code been used rid: ")


def test_code_expires_after_five_minutes_42003(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    fresh, stale = fake.oauth.authorize(), fake.oauth.authorize(user="bob")
    fake.advance(299)
    assert "access_token" in token(server, fresh).json()
    fake.advance(2)
    response = token(server, stale)
    assert errcode_of(response) == 42003
    assert response.json()["errmsg"].startswith("code timeout rid: ")


# ------------------------------------------------------------------ refresh_token


def refresh(
    server: FakeWeChatServer,
    refresh_token: str | None,
    appid: str | None = DEMO_APPID,
    grant_type: str | None = "refresh_token",
) -> requests.Response:
    return fake_get(
        server,
        "/sns/oauth2/refresh_token",
        appid=appid,
        grant_type=grant_type,
        refresh_token=refresh_token,
    )


def test_refresh_gives_a_new_access_token_and_keeps_the_refresh_token(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    first = tokens_for(fake, server)
    fake.advance(7201)
    body = refresh(server, first["refresh_token"]).json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "openid", "scope"}
    assert body["access_token"] != first["access_token"]
    assert body["refresh_token"] == first["refresh_token"]
    assert body["openid"] == first["openid"] and body["scope"] == "snsapi_userinfo"
    assert body["expires_in"] == 7200


@pytest.mark.parametrize(
    ("changes", "errcode"),
    [
        ({"appid": None}, 41002),
        ({"refresh_token": None}, 41003),
        ({"grant_type": "authorization_code"}, 40002),
        ({"appid": "wxdoesnotexist000"}, 40013),
        ({"refresh_token": "not-a-refresh-token"}, 40030),
        ({"appid": OTHER_APPID}, 40030),
    ],
)
def test_refresh_errors(
    fake: FakeWeChat, server: FakeWeChatServer, changes: dict[str, Any], errcode: int
) -> None:
    params: dict[str, Any] = {"refresh_token": tokens_for(fake, server)["refresh_token"], **changes}
    assert errcode_of(refresh(server, **params)) == errcode


def test_refresh_token_expires_after_30_days_42002(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    body = tokens_for(fake, server)
    fake.advance(30 * 24 * 3600 - 10)
    assert "access_token" in refresh(server, body["refresh_token"]).json()
    fake.advance(11)  # refreshing did not extend it
    response = refresh(server, body["refresh_token"])
    assert errcode_of(response) == 42002
    assert response.json()["errmsg"].startswith("refresh_token timeout rid: ")


# --------------------------------------------------------------- userinfo and auth


def userinfo(
    server: FakeWeChatServer, access_token: str | None, openid: str | None, lang: str | None = None
) -> requests.Response:
    return fake_get(server, "/sns/userinfo", access_token=access_token, openid=openid, lang=lang)


def test_userinfo(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    body = tokens_for(fake, server)
    info = userinfo(server, body["access_token"], body["openid"]).json()
    assert set(info) == {
        "openid",
        "nickname",
        "sex",
        "province",
        "city",
        "country",
        "headimgurl",
        "privilege",
        "unionid",
    }
    assert info["openid"] == body["openid"] and info["unionid"] == body["unionid"]
    assert info["nickname"] == "Alice" and info["sex"] == 0 and info["country"] == ""
    assert info["headimgurl"].startswith("https://thirdwx.qlogo.cn/")
    assert info["privilege"] == []


@pytest.mark.parametrize(
    ("lang", "country", "city"),
    [
        ("zh_CN", "中国", "深圳"),
        ("zh_TW", "中國", "深圳"),
        ("en", "China", "Shenzhen"),
        (None, "中国", "深圳"),
        ("fr", "中国", "深圳"),
    ],
)
def test_userinfo_localises_regions_by_lang(
    fake: FakeWeChat, server: FakeWeChatServer, lang: str | None, country: str, city: str
) -> None:
    fake.oauth.set_profile("alice", country="China", province="Guangdong", city="Shenzhen")
    body = tokens_for(fake, server)
    answer = userinfo(server, body["access_token"], body["openid"], lang)
    info = json.loads(answer.content)  # UTF-8, whatever the content type says
    assert (info["country"], info["city"]) == (country, city)


def test_userinfo_needs_snsapi_userinfo_48001(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    body = tokens_for(fake, server, "snsapi_base")
    assert errcode_of(userinfo(server, body["access_token"], body["openid"])) == 48001


def test_access_token_errors_on_userinfo_and_auth(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    body = tokens_for(fake, server)
    other = tokens_for(fake, server, user="bob")
    well_formed_unknown = "A" * 88
    for path in ("/sns/userinfo", "/sns/auth"):

        def call(access: str | None, openid: str | None, path: str = path) -> int:
            return errcode_of(fake_get(server, path, access_token=access, openid=openid))

        assert call(None, body["openid"]) == 41001
        assert call(body["access_token"], None) == 41009
        assert call("bad token!", body["openid"]) == 40014
        assert call(well_formed_unknown, body["openid"]) == 40001
        assert call(body["access_token"], other["openid"]) == 40003
    ok = fake_get(server, "/sns/auth", access_token=body["access_token"], openid=body["openid"])
    assert ok.json() == {"errcode": 0, "errmsg": "ok"}
    fake.advance(7201)
    for path in ("/sns/userinfo", "/sns/auth"):
        expired = fake_get(server, path, access_token=body["access_token"], openid=body["openid"])
        assert errcode_of(expired) == 42001


def test_reset_forgets_grants(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    body = tokens_for(fake, server)
    fake.reset()
    assert errcode_of(refresh(server, body["refresh_token"])) == 40030
    assert errcode_of(userinfo(server, body["access_token"], body["openid"])) == 40001
    assert fake.calls["/sns/userinfo"] == 1


def test_control_reset_over_http_forgets_grants(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    body = tokens_for(fake, server)
    requests.post(server.url + "/_fake/reset", timeout=TIMEOUT).raise_for_status()
    assert errcode_of(refresh(server, body["refresh_token"])) == 40030


def test_confirm_needs_post(server: FakeWeChatServer) -> None:
    response = fake_get(server, "/connect/oauth2/authorize/confirm")
    assert errcode_of(response) == 43002


def test_injected_errors_reach_the_oauth_endpoints(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    fake.inject("/sns/oauth2/access_token", -1)
    code = fake.oauth.authorize()
    assert errcode_of(token(server, code)) == -1
    assert "access_token" in token(server, code).json()  # the code was not spent


def test_redirect_keeps_the_callback_query(server: FakeWeChatServer) -> None:
    uri = "https://example.com/cb?" + urlencode({"next": "/a?b=1&c=2"})
    query = query_of(authorize(server, redirect_uri=uri).headers["Location"])
    assert query["next"] == ["/a?b=1&c=2"] and query["state"] == ["abc123"]
