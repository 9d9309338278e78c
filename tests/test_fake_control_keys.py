"""The fake's control API refuses a key it does not know (400 listing the known ones):
``{"usr": "bob"}`` once minted a code for alice, and ``phone_number`` (the Python
argument's name) was silently not ``phoneNumber``."""

from __future__ import annotations

import pytest
import requests

from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer


def post(server: FakeWeChatServer, path: str, body: object) -> requests.Response:
    return requests.post(f"{server.url}/_fake/{path}", json=body, timeout=10)


def test_a_mistyped_user_is_refused_naming_the_key(fake_server: FakeWeChatServer) -> None:
    answer = post(fake_server, "login", {"usr": "bob"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "unknown key 'usr' (did you mean 'user'?); known keys: appid, rotate, user",
        "known_keys": ["appid", "rotate", "user"],
    }


def test_the_python_spelling_names_the_json_one(
    fake_server: FakeWeChatServer, fake: FakeWeChat
) -> None:
    fake.login(user="alice")
    answer = post(fake_server, "phone_code", {"user": "alice", "phone_number": "13800138000"})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        "unknown key 'phone_number' (did you mean 'phoneNumber'?); known keys: "
    )
    good = post(fake_server, "phone_code", {"user": "alice", "phoneNumber": "13800138000"})
    assert good.status_code == 200 and good.json()["phoneNumber"] == "13800138000"


@pytest.mark.parametrize(
    ("path", "body", "known"),
    [
        ("userinfo", {"nickname": "x"}, "nickName"),
        ("inject", {"path": "/sns/jscode2session", "errcode": 45011, "count": 2}, "times"),
        ("advance", {"secs": 5}, "seconds"),
        ("latency", {"second": 0}, "seconds"),
        ("profiles", {"reall": True}, "real"),
        ("expire_tokens", {"app_id": "wx"}, "appid"),
        ("reset", {"all": True}, "none: send {}"),
    ],
)
def test_every_endpoint_lists_its_keys(
    fake_server: FakeWeChatServer, path: str, body: dict[str, object], known: str
) -> None:
    answer = post(fake_server, path, body)
    assert answer.status_code == 400
    assert "unknown key" in answer.json()["error"] and known in answer.json()["error"]


def test_known_keys_still_work(fake_server: FakeWeChatServer) -> None:
    assert post(fake_server, "login", {"user": "bob", "rotate": False}).status_code == 200
    info = post(fake_server, "userinfo", {"user": "bob", "nickName": "Bob", "legacy": False})
    assert info.status_code == 200 and info.json()["userInfo"]["nickName"] == "Bob"
    assert post(fake_server, "reset", {}).status_code == 200
