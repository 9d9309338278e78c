"""The core without HTTP: expiry, revocation, key rotation, secrets in reprs."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.support.clock import Clock
from wafer_py import Credentials, InvalidSession, WaferAuth, WaferConfig
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import StaleSessionKey
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import RequestState


def test_sliding_expiry_and_absolute_cap(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    clock = Clock()
    auth = make_auth(clock=clock, session_ttl=100, session_max_age=250, touch_interval=0)
    result = auth.login(fake.login(DEMO_APPID, "slider")["code"])
    creds = Credentials(skey=result.skey)
    for _ in range(2):  # each use within the TTL renews it
        clock.advance(90)
        auth.validate(creds)
    clock.advance(60)  # 240 s after login: still inside the cap
    assert auth.validate(creds).session.expires_at == result.session.created_at + 250
    clock.advance(11)  # past the absolute cap, although used 11 s ago
    with pytest.raises(InvalidSession):
        auth.validate(creds)


def test_idle_session_expires(make_auth: Callable[..., WaferAuth], fake: FakeWeChat) -> None:
    clock = Clock()
    auth = make_auth(clock=clock, session_ttl=100)
    result = auth.login(fake.login(DEMO_APPID, "idle")["code"])
    clock.advance(100)
    with pytest.raises(InvalidSession, match="expired"):
        auth.validate(Credentials(skey=result.skey, session_id=result.session_id))
    assert auth.purge_expired() == 1


def test_touch_interval_limits_writes(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    clock = Clock()
    auth = make_auth(clock=clock, touch_interval=60)
    result = auth.login(fake.login(DEMO_APPID, "toucher")["code"])
    clock.advance(30)
    assert auth.validate(Credentials(skey=result.skey)).session.last_seen == clock.now - 30
    clock.advance(31)
    assert auth.validate(Credentials(skey=result.skey)).session.last_seen == clock.now


def test_revoke_one_and_all(make_auth: Callable[..., WaferAuth], fake: FakeWeChat) -> None:
    auth = make_auth()
    a = auth.login(fake.login(DEMO_APPID, "rev")["code"])
    b = auth.login(fake.login(DEMO_APPID, "rev")["code"])
    c = auth.login(fake.login(DEMO_APPID, "rev")["code"])
    assert auth.revoke(a.session_id) is True
    with pytest.raises(InvalidSession):
        auth.validate(Credentials(skey=a.skey))
    auth.validate(Credentials(skey=b.skey))
    assert auth.revoke_user(b.user.openid) == 2
    for result in (b, c):
        with pytest.raises(InvalidSession):
            auth.validate(Credentials(skey=result.skey, session_id=result.session_id))


def test_v1_credentials_need_the_matching_id(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    a = auth.login(fake.login(DEMO_APPID, "pair")["code"])
    b = auth.login(fake.login(DEMO_APPID, "pair")["code"])
    assert auth.validate(Credentials(skey=a.skey, session_id=a.session_id)).generation == "v1"
    with pytest.raises(InvalidSession):
        auth.validate(Credentials(skey=a.skey, session_id=b.session_id))


def test_secret_rotation_keeps_sessions(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, tmp_path: object
) -> None:
    old = make_auth(
        secret_keys=("old-key-of-the-rotation-test-0000000",),
        store_url="sqlite:///" + f"{tmp_path}/rot.db",
    )
    result = old.login(fake.login(DEMO_APPID, "rot")["code"])
    rotated = make_auth(
        secret_keys=(
            "new-key-of-the-rotation-test-0000000",
            "old-key-of-the-rotation-test-0000000",
        ),
        store_url=old.config.store_url,
    )
    who = rotated.validate(Credentials(skey=result.skey))
    info = fake.user_info(DEMO_APPID, "rot", nickName="Rotated")
    assert rotated.update_profile(who, info["encryptedData"], info["iv"]).user.nickname == (
        "Rotated"
    )
    dropped = make_auth(
        secret_keys=("new-key-of-the-rotation-test-0000000",), store_url=old.config.store_url
    )
    with pytest.raises(InvalidSession):
        dropped.validate(Credentials(skey=result.skey))


def test_unsealable_key_is_a_stale_session_key(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    result = auth.login(fake.login(DEMO_APPID, "seal")["code"])
    who = auth.validate(Credentials(skey=result.skey))
    broken = replace(who.session, sealed_session_key="g1.deadbeef.AAAA")
    info = fake.user_info(DEMO_APPID, "seal")
    with pytest.raises(StaleSessionKey):
        auth.update_profile(type(who)(who.user, broken), info["encryptedData"], info["iv"])


def test_no_secret_in_reprs_or_logs(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY, generate_latest

    from wafer_py.protocol import WaferProtocol

    caplog.set_level(logging.DEBUG)
    auth = make_auth(
        secret_keys=("top-secret-key-that-must-never-be-logged",), metrics="prometheus"
    )
    code = fake.login(DEMO_APPID, "quiet")
    result = auth.login(code["code"])
    session_key = fake.session_key_of(DEMO_APPID, code["openid"])
    credentials = Credentials(skey=result.skey, session_id=result.session_id)
    who = auth.validate(credentials)
    protocol = WaferProtocol(auth)  # the metrics' labels and the log lines of refusals
    protocol.check("/x", {"x-wx-skey": result.skey[::-1], "x-wx-id": result.session_id})
    protocol.login({"x-wx-code": code["code"]})  # spent: refused
    texts = [
        repr(credentials),
        str(credentials),
        repr(result),
        repr(who),
        repr(RequestState(identity=who, generation="v1")),
        repr(result.session),
        repr(auth),
        repr(auth.config),
        repr(auth.secrets),
        repr(auth.wechat),
        str(result),
        caplog.text,
        generate_latest(REGISTRY).decode(),
    ]
    for text in texts:
        for secret in (
            session_key,
            result.skey,
            "top-secret-key",
            auth.config.app_secret,
            result.session.skey_hash,
            result.session.sealed_session_key,
        ):
            assert secret not in text
    exposition = texts[-1]  # nor what names a user or a session, in labels
    for named in (result.session_id, code["code"], code["openid"], result.skey[::-1]):
        assert named not in exposition
    assert code["code"] not in caplog.text and result.skey[::-1] not in caplog.text


def test_config_from_env() -> None:
    config = WaferConfig.from_env(
        {
            "WAFER_APPID": "wxabc",
            "WAFER_APP_SECRET": "s",
            "WAFER_STORE_URL": "memory://",
            "WAFER_SESSION_TTL": "60",
            "WAFER_SECRET_KEY": "new-key-of-the-rotation-test-0000000, "
            "old-key-of-the-rotation-test-0000000",
            "WAFER_WECHAT_API_BASE": "http://127.0.0.1:1",
        }
    )
    assert (config.appid, config.store_url, config.session_ttl) == ("wxabc", "memory://", 60)
    assert config.secret_keys == (
        "new-key-of-the-rotation-test-0000000",
        "old-key-of-the-rotation-test-0000000",
    )
    with pytest.raises(ValueError, match="WAFER_SESSION_TTL"):
        WaferConfig.from_env({"WAFER_SESSION_TTL": "soon"})


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, wafer_py, wafer_py.protocol, wafer_py.testing;"
        "bad = [m for m in ('starlette', 'werkzeug', 'flask', 'uvicorn', 'django')"
        " if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
    # wafer_py.django imports Django only when a name of it is used (settings.py may import it)
    code = (
        "import sys, wafer_py.wsgi, wafer_py.django;"
        "print('starlette' in sys.modules, 'django' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False False"


def test_sessions_per_user_are_capped_and_pruned(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    clock = Clock()
    auth = make_auth(clock=clock, max_sessions_per_user=3, session_ttl=100)
    first = auth.login(fake.login(DEMO_APPID, "heavy")["code"])
    clock.advance(101)  # the first session expires
    results = []
    for _ in range(4):
        clock.advance(1)
        results.append(auth.login(fake.login(DEMO_APPID, "heavy")["code"]))
    kept = auth.store.list_sessions(first.user.openid)
    assert [s.id for s in kept] == [r.session_id for r in results[1:]]
    with pytest.raises(InvalidSession):  # the oldest live one gave way
        auth.validate(Credentials(skey=results[0].skey))


def test_processes_without_a_secret_share_the_sqlite_key(
    fake_server: object, fake: FakeWeChat, tmp_path: object
) -> None:
    import os
    import stat

    url = f"sqlite:///{tmp_path}/shared.db"
    base = fake_server.url
    one = WaferAuth(WaferConfig(api_base=base, fake_wechat=True, store_url=url))
    two = WaferAuth(WaferConfig(api_base=base, fake_wechat=True, store_url=url))
    try:
        result = one.login(fake.login(DEMO_APPID, "shared")["code"])
        assert two.validate(Credentials(skey=result.skey)).openid == result.user.openid
        key_file = f"{tmp_path}/shared.db.key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    finally:
        one.close()
        two.close()
