"""The fake WeChat, over real HTTP on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
import requests

from tests.support.constants import OTHER_APPID, OTHER_SECRET, TIMEOUT, TWO_APPS
from tests.support.fake_http import RID, errcode_of, exchange_code
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.crypto import decrypt_data
from wafer_py.exceptions import StaleSessionKey
from wafer_py.fakewechat import CODE_TTL, FakeWeChat, FakeWeChatServer
from wafer_py.fakewechat.miniprogram import ANONYMOUS_PROFILE
from wafer_py.models import PLACEHOLDER_AVATARS, avatar_key

JSCODE2SESSION = "/sns/jscode2session"


pytestmark = pytest.mark.fake_apps(TWO_APPS)


#: ``exchange(server, code, appid, secret, grant_type, **extra)``: jscode2session.
exchange = partial(exchange_code, path=JSCODE2SESSION, code_name="js_code")


def control(server: FakeWeChatServer, name: str, body: Any = None) -> requests.Response:
    return requests.post(f"{server.url}/_fake/{name}", json=body, timeout=TIMEOUT)


def control_get(server: FakeWeChatServer, name: str) -> Any:
    return requests.get(f"{server.url}/_fake/{name}", timeout=TIMEOUT).json()


# ----------------------------------------------------------------- jscode2session


def test_success(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    login = fake.login(DEMO_APPID, user="alice")
    response = exchange(server, login["code"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"session_key", "openid", "unionid"}
    assert body["openid"] == login["openid"]
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", body["openid"])
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", body["unionid"])
    assert len(base64.b64decode(body["session_key"])) == 16
    assert body["session_key"] == fake.session_key_of(DEMO_APPID, body["openid"])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", login["code"])


def test_code_is_single_use(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.login(DEMO_APPID)["code"]
    assert exchange(server, code).json()["openid"]
    second = exchange(server, code)
    assert errcode_of(second) == 40163
    assert second.json()["errmsg"].startswith("code been used rid: ")


def test_code_expires_after_five_minutes(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    fresh = fake.login(DEMO_APPID)["code"]
    stale = fake.login(DEMO_APPID, user="bob")["code"]
    fake.advance(CODE_TTL - 1)
    assert "openid" in exchange(server, fresh).json()
    fake.advance(2)
    response = exchange(server, stale)
    assert errcode_of(response) == 40029
    assert response.json()["errmsg"].startswith("invalid code rid: ")


def test_advance_301_expires_a_code(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.login(DEMO_APPID)["code"]
    fake.advance(301)
    assert errcode_of(exchange(server, code)) == 40029


def test_injected_clock() -> None:
    now = [1_700_000_000.0]
    fake = FakeWeChat(clock=lambda: now[0])
    with fake.serve() as own:
        code = fake.login()["code"]
        now[0] += 301
        assert errcode_of(exchange(own, code)) == 40029
        assert fake.now() == 1_700_000_301.0


def test_unknown_code_and_code_of_another_app(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    assert errcode_of(exchange(server, "0" * 32)) == 40029
    code = fake.login(OTHER_APPID)["code"]
    assert errcode_of(exchange(server, code)) == 40029  # presented by DEMO_APPID
    assert "openid" in exchange(server, code, OTHER_APPID, OTHER_SECRET).json()


def test_wrong_appid(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    response = exchange(server, fake.login()["code"], appid="wxdoesnotexist000")
    assert errcode_of(response) == 40013
    assert response.json()["errmsg"].startswith("invalid appid rid: ")


def test_wrong_secret(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.login()["code"]
    response = exchange(server, code, secret="not-the-secret")
    assert errcode_of(response) == 40125
    assert response.json()["errmsg"].startswith(
        "invalid appsecret, view more at http://t.cn/RAEkdVq rid: "
    )
    # The other app's secret is wrong for this app too, and the code is not consumed.
    assert errcode_of(exchange(server, code, secret=OTHER_SECRET)) == 40125
    assert "openid" in exchange(server, code).json()


@pytest.mark.parametrize(
    ("missing", "errcode", "errmsg"),
    [
        ("appid", 41002, "appid missing"),
        ("secret", 41004, "appsecret missing"),
        ("code", 41008, "missing code"),
    ],
)
def test_missing_params(server: FakeWeChatServer, missing: str, errcode: int, errmsg: str) -> None:
    args: dict[str, Any] = {"code": "somecode"}
    args[missing] = None
    response = exchange(server, **args)
    assert errcode_of(response) == errcode
    assert response.json()["errmsg"].startswith(errmsg + " rid: ")
    # An empty value counts as missing.
    args[missing] = ""
    assert errcode_of(exchange(server, **args)) == errcode


def test_bad_grant_type(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.login()["code"]
    assert errcode_of(exchange(server, code, grant_type="client_credential")) == 40002
    assert errcode_of(exchange(server, code, grant_type=None)) == 40002


def test_unknown_params_are_ignored(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    response = exchange(server, fake.login()["code"], access_token="ACCESS_TOKEN", x="1")
    assert "openid" in response.json()


@pytest.mark.parametrize(
    ("errcode", "errmsg"),
    [
        (-1, "system error"),
        (45011, "api minute-quota reach limit mustslower retry next minute"),
        (40226, "code blocked"),
    ],
)
def test_injected_errors_are_consumed(
    fake: FakeWeChat, server: FakeWeChatServer, errcode: int, errmsg: str
) -> None:
    code = fake.login()["code"]
    fake.inject(JSCODE2SESSION, errcode, times=2)
    for _ in range(2):
        response = exchange(server, code)
        assert errcode_of(response) == errcode
        assert response.json()["errmsg"].startswith(errmsg + " rid: ")
    # Used up; the code was not consumed by the injected failures.
    assert "openid" in exchange(server, code).json()
    assert fake.calls[JSCODE2SESSION] == 3


def test_injected_unnamed_errcode_and_queue_order(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    fake.inject(JSCODE2SESSION, 45011)
    fake.inject(JSCODE2SESSION, 61234)
    assert errcode_of(exchange(server, "x")) == 45011
    generic = exchange(server, "x")
    assert errcode_of(generic) == 61234
    assert generic.json()["errmsg"]
    assert errcode_of(exchange(server, "x")) == 40029


def test_inject_rejects_nonsense(fake: FakeWeChat) -> None:
    with pytest.raises(ValueError):
        fake.inject(JSCODE2SESSION, 45011, times=0)
    with pytest.raises(ValueError):
        fake.inject(JSCODE2SESSION, 0)


def test_content_type_is_text_plain_by_default(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    ok = exchange(server, fake.login()["code"])
    failed = exchange(server, "nope")
    for response in (ok, failed):
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        json.loads(response.text)


def test_content_type_is_configurable() -> None:
    fake = FakeWeChat(content_type="application/json; charset=utf-8")
    with fake.serve() as server:
        response = exchange(server, fake.login()["code"])
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_rid_is_random_per_response(server: FakeWeChatServer) -> None:
    first = exchange(server, "nope").json()["errmsg"]
    second = exchange(server, "nope").json()["errmsg"]
    assert RID.search(first)
    assert first != second


def test_wrong_method_and_unknown_path(server: FakeWeChatServer) -> None:
    post = requests.post(server.url + JSCODE2SESSION, timeout=TIMEOUT)
    assert errcode_of(post) == 43002
    unknown = requests.get(server.url + "/cgi-bin/nothing", timeout=TIMEOUT)
    assert errcode_of(unknown) == 48001
    assert unknown.json()["errmsg"].startswith("api unauthorized rid: ")


def test_calls_are_counted_per_path(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    assert fake.calls[JSCODE2SESSION] == 0
    exchange(server, fake.login()["code"])
    exchange(server, "bad")
    exchange(server, None, appid=None)
    requests.get(server.url + "/nothing", timeout=TIMEOUT)
    control(server, "login", {})
    assert fake.calls[JSCODE2SESSION] == 3
    assert fake.calls["/nothing"] == 1
    assert not any(path.startswith("/_fake") for path in fake.calls)


def test_access_log_hides_secrets(
    fake: FakeWeChat, server: FakeWeChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wafer_py.fakewechat")
    code = fake.login()["code"]
    session = exchange(server, code).json()
    assert JSCODE2SESSION in caplog.text
    for secret in (DEMO_APP_SECRET, code, session["session_key"]):
        assert secret not in caplog.text


# ------------------------------------------------------------------- users and keys


def test_login_rotates_the_session_key(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    first = fake.login(DEMO_APPID)
    second = fake.login(DEMO_APPID)
    kept = fake.login(DEMO_APPID, rotate=False)
    key1 = exchange(server, first["code"]).json()["session_key"]
    key2 = exchange(server, second["code"]).json()["session_key"]
    key3 = exchange(server, kept["code"]).json()["session_key"]
    assert key1 != key2
    assert key2 == key3 == fake.session_key_of(DEMO_APPID, first["openid"])
    assert first["openid"] == second["openid"] == kept["openid"]


def test_openids_are_stable_per_app_and_user(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    alice = fake.login(DEMO_APPID, user="alice")["openid"]
    bob = fake.login(DEMO_APPID, user="bob")["openid"]
    alice_other = fake.login(OTHER_APPID, user="alice")["openid"]
    assert len({alice, bob, alice_other}) == 3
    assert FakeWeChat().login(DEMO_APPID, user="alice")["openid"] == alice
    # unionid is per user, shared across the apps of one Open Platform account.
    a = fake.login(DEMO_APPID, user="alice")["code"]
    b = fake.login(OTHER_APPID, user="alice")["code"]
    union_a = exchange(server, a).json()["unionid"]
    union_b = exchange(server, b, OTHER_APPID, OTHER_SECRET).json()["unionid"]
    assert union_a == union_b


def test_unknown_app_is_refused_by_the_test_api(fake: FakeWeChat) -> None:
    with pytest.raises(ValueError):
        fake.login("wxunknown")
    with pytest.raises(ValueError):
        fake.user_info("wxunknown")
    with pytest.raises(KeyError):
        fake.session_key_of(DEMO_APPID, "onobody")


def test_user_info_decrypts_under_the_exchanged_key(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    login = fake.login(DEMO_APPID, user="alice")
    session = exchange(server, login["code"]).json()
    info = fake.user_info(DEMO_APPID, user="alice")
    assert set(info) == {"encryptedData", "iv", "rawData", "signature", "userInfo"}
    payload = decrypt_data(
        session["session_key"],
        info["encryptedData"],
        info["iv"],
        appid=DEMO_APPID,
        openid=session["openid"],
    )
    assert payload["openId"] == session["openid"]
    assert payload["unionId"] == session["unionid"]
    assert payload["watermark"] == {"appid": DEMO_APPID, "timestamp": int(fake.now())}
    # Today's WeChat: the anonymous profile, whoever the user is.
    assert {k: payload[k] for k in ANONYMOUS_PROFILE} == ANONYMOUS_PROFILE
    assert payload["nickName"] == "微信用户"
    assert payload["gender"] == 0
    assert payload["city"] == payload["province"] == payload["country"] == ""
    assert avatar_key(payload["avatarUrl"]) in PLACEHOLDER_AVATARS


def test_real_profiles_switch(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    """The old behaviour, per fake and over the control API: a profile of the user's own."""
    session = exchange(server, fake.login(DEMO_APPID, user="alice")["code"]).json()
    assert control_get(server, "profiles") == {"real": False}
    assert control(server, "profiles", {"real": True}).json() == {"ok": True, "real": True}
    assert fake.real_profiles is True
    info = fake.user_info(DEMO_APPID, user="alice")
    payload = decrypt_data(
        session["session_key"], info["encryptedData"], info["iv"], appid=DEMO_APPID
    )
    assert payload["nickName"] == "Alice"
    assert payload["language"] == "zh_CN"
    assert payload["city"] == payload["province"] == payload["country"] == ""
    assert payload["avatarUrl"].startswith("https://thirdwx.qlogo.cn/mmopen/vi_32/")
    assert payload["avatarUrl"].endswith("/132")
    assert avatar_key(payload["avatarUrl"]) not in PLACEHOLDER_AVATARS
    assert control(server, "profiles", {"real": "yes"}).status_code == 400
    fake.real_profiles = False
    assert fake.user_info(DEMO_APPID, user="alice")["userInfo"]["nickName"] == "微信用户"
    assert FakeWeChat(real_profiles=True).user_info(user="bo")["userInfo"]["nickName"] == "Bo"
    fake.real_profiles = True
    fake.reset()  # back to how the fake was made
    assert fake.real_profiles is False


def test_user_info_signature(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    session = exchange(server, fake.login()["code"]).json()
    info = fake.user_info(nickName="小明", gender=1)
    raw = json.loads(info["rawData"])
    assert raw == info["userInfo"]
    assert raw["nickName"] == "小明"
    assert raw["gender"] == 1
    assert not {"openId", "unionId", "watermark"} & set(raw)
    expected = hashlib.sha1((info["rawData"] + session["session_key"]).encode()).hexdigest()
    assert info["signature"] == expected


def test_user_info_after_a_later_login_does_not_open_with_the_old_key(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    old = exchange(server, fake.login()["code"]).json()["session_key"]
    fake.login()  # wx.login again (e.g. inside the getUserInfo callback): key rotated
    info = fake.user_info()
    with pytest.raises(StaleSessionKey):
        decrypt_data(old, info["encryptedData"], info["iv"], appid=DEMO_APPID)


def test_user_info_rejects_unknown_fields(fake: FakeWeChat) -> None:
    with pytest.raises(ValueError):
        fake.user_info(nickname="typo")
    with pytest.raises(ValueError):
        fake.user_info(gender="1")


def test_reset(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    code = fake.login()["code"]
    fake.inject(JSCODE2SESSION, -1)
    fake.advance(100)
    exchange(server, "x")
    fake.reset()
    assert fake.calls[JSCODE2SESSION] == 0
    assert errcode_of(exchange(server, code)) == 40029
    assert "openid" in exchange(server, fake.login()["code"]).json()


# -------------------------------------------------------------------- control API


def test_control_login_then_exchange(server: FakeWeChatServer) -> None:
    response = control(server, "login", {"appid": DEMO_APPID, "user": "carol", "rotate": True})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    login = response.json()
    assert set(login) == {"code", "openid"}
    assert exchange(server, login["code"]).json()["openid"] == login["openid"]
    # appid and user have defaults; an empty body is an empty object.
    default = requests.post(server.url + "/_fake/login", timeout=TIMEOUT).json()
    assert exchange(server, default["code"]).json()["openid"] == default["openid"]


def test_control_userinfo(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    login = control(server, "login", {"user": "dave"}).json()
    session = exchange(server, login["code"]).json()
    info = control(server, "userinfo", {"user": "dave", "nickName": "D", "city": "Shenzhen"})
    assert info.status_code == 200
    data = info.json()
    payload = decrypt_data(
        session["session_key"], data["encryptedData"], data["iv"], appid=DEMO_APPID
    )
    assert payload["nickName"] == "D"
    assert payload["city"] == "Shenzhen"
    assert payload["openId"] == login["openid"]
    expected = hashlib.sha1((data["rawData"] + session["session_key"]).encode()).hexdigest()
    assert data["signature"] == expected


def test_control_inject_advance_calls_reset(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    body = {"path": JSCODE2SESSION, "errcode": 45011, "times": 1}
    assert control(server, "inject", body).json() == {"ok": True}
    assert errcode_of(exchange(server, "x")) == 45011

    code = control(server, "login", {}).json()["code"]
    advanced = control(server, "advance", {"seconds": 301}).json()
    assert advanced["ok"] is True
    assert advanced["now"] == pytest.approx(fake.now(), abs=5)
    assert errcode_of(exchange(server, code)) == 40029

    calls = requests.get(server.url + "/_fake/calls", timeout=TIMEOUT).json()
    assert calls == {"calls": {JSCODE2SESSION: 2}}

    assert control(server, "reset").json() == {"ok": True}
    assert requests.get(server.url + "/_fake/calls", timeout=TIMEOUT).json() == {"calls": {}}


def test_control_index_lists_appids_not_secrets(server: FakeWeChatServer) -> None:
    for path in ("/_fake/", "/_fake"):
        response = requests.get(server.url + path, timeout=TIMEOUT)
        assert response.status_code == 200
        index = response.json()
        assert index["appids"] == [DEMO_APPID, OTHER_APPID]
        assert "POST /_fake/login" in index["control_endpoints"]
        assert "GET /sns/jscode2session" in index["wechat_endpoints"]
        assert DEMO_APP_SECRET not in response.text
        assert OTHER_SECRET not in response.text


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("login", b"{not json"),
        ("login", b"\xff\xfe"),
        ("login", b"[1, 2]"),
        ("login", b'{"user": 5}'),
        ("login", b'{"rotate": "yes"}'),
        ("login", b'{"appid": "wxunknown"}'),
        ("userinfo", b'{"nickname": "typo"}'),
        ("inject", b'{"path": "/sns/jscode2session"}'),
        ("inject", b'{"errcode": 45011}'),
        ("inject", b'{"path": "/sns/jscode2session", "errcode": "45011"}'),
        ("inject", b'{"path": "/sns/jscode2session", "errcode": 45011, "times": 0}'),
        ("advance", b"{}"),
        ("advance", b'{"seconds": "301"}'),
        ("advance", b'{"seconds": -5}'),
    ],
)
def test_control_bad_requests_are_400(server: FakeWeChatServer, name: str, body: bytes) -> None:
    response = requests.post(
        f"{server.url}/_fake/{name}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)


def test_control_unknown_path_and_wrong_method(server: FakeWeChatServer) -> None:
    missing = requests.get(server.url + "/_fake/nothing", timeout=TIMEOUT)
    assert missing.status_code == 404
    assert "error" in missing.json()
    wrong = requests.get(server.url + "/_fake/login", timeout=TIMEOUT)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"


# -------------------------------------------------------------------- concurrency


def test_fifty_threads_exchange_fifty_codes(fake: FakeWeChat, server: FakeWeChatServer) -> None:
    logins = [fake.login(DEMO_APPID, user=f"user{i}") for i in range(50)]
    barrier = threading.Barrier(50)

    def run(login: dict[str, str]) -> dict[str, Any]:
        barrier.wait(timeout=TIMEOUT)
        return dict(exchange(server, login["code"]).json())

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(run, logins))
    assert [r.get("openid") for r in results] == [login["openid"] for login in logins]
    assert fake.calls[JSCODE2SESSION] == 50


def test_one_code_raced_by_twenty_threads_succeeds_once(
    fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    code = fake.login()["code"]
    barrier = threading.Barrier(20)

    def run(_: int) -> dict[str, Any]:
        barrier.wait(timeout=TIMEOUT)
        return dict(exchange(server, code).json())

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(run, range(20)))
    assert sum("openid" in r for r in results) == 1
    assert sorted(r.get("errcode", 0) for r in results) == [0] + [40163] * 19


# ------------------------------------------------------------------- packaging


def test_server_closes_and_releases_its_port() -> None:
    fake = FakeWeChat()
    server = fake.serve()
    url = server.url
    assert requests.get(url + "/_fake/", timeout=TIMEOUT).status_code == 200
    server.close()
    server.close()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_fake/", timeout=TIMEOUT)


def test_close_ends_keep_alive_connections() -> None:
    fake = FakeWeChat()
    with requests.Session() as http:
        with fake.serve() as server:
            assert http.get(server.url + "/_fake/calls", timeout=TIMEOUT).ok
        with pytest.raises(requests.ConnectionError):
            http.get(server.url + "/_fake/calls", timeout=TIMEOUT)


def _foreign_modules(statement: str) -> set[str]:
    """The web-framework / HTTP-client modules a fresh interpreter has after ``statement``."""
    script = (
        f"import sys\n{statement}\n"
        "print(','.join(sorted(m for m in sys.modules\n"
        "      if m.split('.')[0] in ('starlette', 'werkzeug', 'flask', 'requests'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return {m for m in result.stdout.strip().split(",") if m}


def test_import_pulls_in_no_web_framework_or_http_client() -> None:
    loaded = _foreign_modules("import wafer_py.fakewechat")
    # The fake itself adds nothing on top of its parent package...
    assert loaded <= _foreign_modules("import wafer_py")
    # ...and never a web framework nor an HTTP client.
    assert loaded == set()


def test_a_client_that_hangs_up_before_its_answer_prints_no_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An abandoned login leaves the fake writing to a closed socket: a debug line, not
    a traceback on stderr (socketserver's default)."""
    import socket
    import struct
    import time

    fake = FakeWeChat()

    def slow(request: Any) -> Any:
        time.sleep(0.2)  # the client is gone by then
        return fake(request)

    with FakeWeChatServer(slow) as server:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        for _ in range(3):
            client = socket.create_connection((host, int(port)))
            client.sendall(b"GET /sns/jscode2session HTTP/1.1\r\nHost: x\r\n\r\n")
            # Close with a reset (linger 0): the fake's write then fails at once.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(0.6)
    assert "Traceback" not in capfd.readouterr().err
