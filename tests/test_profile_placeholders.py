"""WeChat's anonymous profile never overwrites the user's (issue #13, item 1).

Since 2022-11 ``wx.getUserInfo``/``wx.getUserProfile`` give every user the nickname
"微信用户" and the grey avatar; a login or seed request carrying that encrypted data must
keep the nickname and avatar the user set, while a real profile still updates them. Over
real HTTP, both examples, both client generations' session headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support.servers import serve_example
from wafer_py import WaferAuth
from wafer_py.config import DEFAULT_AVATAR, DEFAULT_NICKNAME, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.fakewechat.miniprogram import ANONYMOUS_PROFILE
from wafer_py.models import real_profile

SET = {"nickName": "阿花", "avatarUrl": "https://cdn.example.com/avatars/ahua.png"}


@pytest.fixture
def auth(make_auth: Callable[..., WaferAuth]) -> WaferAuth:
    return make_auth()


@pytest.fixture
def base(framework: str, auth: WaferAuth) -> Iterator[str]:
    with serve_example(framework, auth) as url:
        yield url


@pytest.fixture(params=["v1", "v2"])
def generation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def session_headers(answer: dict[str, Any], generation: str) -> dict[str, str]:
    """What each client generation sends with a request that needs the session."""
    if generation == "v1":
        return {"X-WX-Id": answer["session"]["id"], "X-WX-Skey": answer["session"]["skey"]}
    return {"X-WX-Skey": answer["data"]["skey"]}


def login(base: str, fake: FakeWeChat, user: str, **profile: Any) -> dict[str, Any]:
    """A login with a code and the encrypted user info wx.getUserInfo gives now."""
    code = fake.login(DEMO_APPID, user)["code"]
    info = fake.user_info(DEMO_APPID, user, **profile)
    response = requests.get(
        f"{base}/weapp/login",
        headers={
            "X-WX-Code": code,
            "X-WX-Encrypted-Data": info["encryptedData"],
            "X-WX-IV": info["iv"],
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def code_only(base: str, fake: FakeWeChat, user: str) -> dict[str, Any]:
    code = fake.login(DEMO_APPID, user)["code"]
    response = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def seed(
    base: str, fake: FakeWeChat, user: str, headers: dict[str, str], **profile: Any
) -> dict[str, Any]:
    """The seed flow: an authenticated request carrying encrypted user info."""
    info = fake.user_info(DEMO_APPID, user, **profile)
    response = requests.get(
        f"{base}/weapp/user",
        headers={**headers, "X-WX-Encrypted-Data": info["encryptedData"], "X-WX-IV": info["iv"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["data"]["userInfo"])


def set_profile(auth: WaferAuth, openid: str) -> None:
    """What the fill-in flow stores (the store's API, as POST /weapp/profile would)."""
    assert auth.store.update_profile(openid, dict(SET), now=auth.clock()) is not None


def test_the_fake_answers_like_todays_wechat(fake: FakeWeChat) -> None:
    fake.login(DEMO_APPID, "zoe")
    assert fake.user_info(DEMO_APPID, "zoe")["userInfo"] == ANONYMOUS_PROFILE


def test_an_anonymous_profile_never_overwrites_a_set_one(
    base: str, fake: FakeWeChat, auth: WaferAuth, generation: str
) -> None:
    first = code_only(base, fake, "ahua")
    openid = first["data"]["userinfo"]["openId"]
    set_profile(auth, openid)
    before = auth.store.get_user(openid)

    again = login(base, fake, "ahua")  # anonymous encryptedData
    assert {k: again["data"]["userinfo"][k] for k in SET} == SET
    info = seed(base, fake, "ahua", session_headers(again, generation))
    assert {k: info[k] for k in SET} == SET
    user = requests.get(
        f"{base}/weapp/user", headers=session_headers(again, generation), timeout=10
    ).json()["data"]["userInfo"]
    assert {k: user[k] for k in SET} == SET
    assert auth.store.get_user(openid) == before  # not even rewritten


def test_a_real_profile_still_updates(
    base: str, fake: FakeWeChat, auth: WaferAuth, generation: str
) -> None:
    first = code_only(base, fake, "bao")
    openid = first["data"]["userinfo"]["openId"]
    set_profile(auth, openid)

    again = login(base, fake, "bao", nickName="Bao Real", avatarUrl="https://x.example/b/132")
    assert again["data"]["userinfo"]["nickName"] == "Bao Real"
    assert again["data"]["userinfo"]["avatarUrl"] == "https://x.example/b/132"
    info = seed(base, fake, "bao", session_headers(again, generation), nickName="Bao 2", gender=2)
    assert (info["nickName"], info["gender"]) == ("Bao 2", 2)
    user = auth.store.get_user(openid)
    assert user is not None and user.profile["nickName"] == "Bao 2"
    assert user.profile["gender"] == 2


def test_a_code_only_user_is_filled_in_later_from_real_data(
    base: str, fake: FakeWeChat, auth: WaferAuth, generation: str
) -> None:
    first = code_only(base, fake, "cai")
    assert first["data"]["userinfo"]["nickName"] == DEFAULT_NICKNAME
    info = seed(base, fake, "cai", session_headers(first, generation), nickName="Cai")
    assert info["nickName"] == "Cai"
    # The anonymous placeholder afterwards does not undo it.
    info = seed(base, fake, "cai", session_headers(first, generation))
    assert info["nickName"] == "Cai"


def test_a_new_user_with_anonymous_data_gets_the_defaults(
    base: str, fake: FakeWeChat, auth: WaferAuth
) -> None:
    body = login(base, fake, "dan")
    userinfo = body["data"]["userinfo"]
    assert userinfo["nickName"] == DEFAULT_NICKNAME
    assert userinfo["avatarUrl"] == DEFAULT_AVATAR
    user = auth.store.get_user(userinfo["openId"])
    assert user is not None
    assert user.profile == {"nickName": DEFAULT_NICKNAME, "avatarUrl": DEFAULT_AVATAR}


def test_real_profile_drops_placeholders() -> None:
    grey = str(ANONYMOUS_PROFILE["avatarUrl"])
    assert real_profile(dict(ANONYMOUS_PROFILE)) == {}
    assert real_profile({"avatarUrl": grey.replace("https://", "http://")}) == {}
    assert real_profile({"avatarUrl": grey.rsplit("/", 1)[0] + "/46"}) == {}
    assert real_profile({"avatarUrl": DEFAULT_AVATAR, "nickName": " 微信用户 "}) == {}
    assert real_profile({"gender": 0, "city": "", "language": "zh_CN"}) == {"language": "zh_CN"}
    real = {"nickName": "微信用户2", "gender": 1, "city": "深圳", "avatarUrl": grey + "x"}
    assert real_profile(real) == real
    assert real_profile({"nickName": "Me"}, nicknames=frozenset({"Me"})) == {}
