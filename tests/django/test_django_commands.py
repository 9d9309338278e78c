"""``manage.py wafer_sessions`` and ``wafer_token``, with call_command: the CLI's
actions on the store the Django settings name (the environment as the fallback)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.support.constants import DEMO_APP
from wafer_py.fakewechat import FakeWeChatServer
from wafer_py.stores import SQLiteStore
from wafer_py.stores.django import DjangoStore
from wafer_py.testing import make_session

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def store() -> DjangoStore:
    return DjangoStore("default")


@override_settings(WAFER_STORE_URL="django://default")
def test_sessions_list_revoke_purge_stats(store: DjangoStore) -> None:
    store.ensure_user("o-cmd", unionid=None, profile={}, now=1.0)
    live, skey = make_session("o-cmd", now=1.0, ttl=10_000_000_000.0)
    old, _ = make_session("o-cmd", now=1.0, ttl=10.0)
    for session in (live, old):
        store.create_session(session)

    listed = json.loads(run("wafer_sessions", "list", "--openid", "o-cmd", "--json"))
    assert listed["user"] is True
    assert {s["id"]: s["state"] for s in listed["sessions"]} == {
        live.id: "active",
        old.id: "expired",
    }
    text = run("wafer_sessions", "list", "--openid", "o-cmd")
    for secret in (skey, live.skey_hash, live.sealed_session_key):
        assert secret not in text and secret not in json.dumps(listed)

    stats = json.loads(run("wafer_sessions", "stats", "--json"))
    assert (stats["users"], stats["active_sessions"], stats["expired_sessions"]) == (1, 1, 1)
    assert json.loads(run("wafer_sessions", "purge", "--json", "-q")) == {"purged": 1}
    assert store.get_session(old.id) is None

    assert "revoked session" in run("wafer_sessions", "revoke", "--session", live.id)
    assert store.get_session(live.id) is None
    with pytest.raises(CommandError) as failed:
        run("wafer_sessions", "revoke", "--session", live.id)
    assert failed.value.returncode == 1


def test_settings_first_then_the_environment(
    store: DjangoStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.db"
    with SQLiteStore(str(path)) as other:
        other.ensure_user("o-env", unionid=None, profile={}, now=1.0)
    monkeypatch.setenv("WAFER_STORE_URL", f"sqlite:///{path}")
    store.ensure_user("o-settings", unionid=None, profile={}, now=1.0)

    def knows(openid: str) -> bool:
        try:
            return bool(
                json.loads(run("wafer_sessions", "list", "--openid", openid, "--json"))["user"]
            )
        except CommandError as exc:
            assert exc.returncode == 1  # no such user: nothing matched
            return False

    with override_settings(WAFER_STORE_URL=None):
        assert knows("o-env") and not knows("o-settings")
    with override_settings(WAFER_STORE_URL="django://default"):
        assert knows("o-settings") and not knows("o-env")
        # --store wins over both
        assert knows("o-env") is False
        out = run(
            "wafer_sessions", "list", "--openid", "o-env", "--json", "--store", f"sqlite:///{path}"
        )
        assert json.loads(out)["user"] is True


@override_settings(WAFER_STORE_URL="redis://127.0.0.1:1/0")
def test_a_store_failure_is_a_command_error() -> None:
    with pytest.raises(CommandError) as failed:
        run("wafer_sessions", "stats")
    assert failed.value.returncode == 2
    assert "wafer-py sessions:" in str(failed.value)


def test_token_get_and_refresh(fake_server: FakeWeChatServer, store: DjangoStore) -> None:
    wafer: dict[str, Any] = {
        "WAFER_APPID": DEMO_APP["appid"],
        "WAFER_APP_SECRET": DEMO_APP["app_secret"],
        "WAFER_WECHAT_API_BASE": fake_server.url,
        "WAFER_STORE_URL": "django://default",
    }
    with override_settings(**wafer):
        token = run("wafer_token", "get", "--reveal").strip()
        assert token and " " not in token
        key = f"access_token:{DEMO_APP['appid']}"
        cached = store.get_entry(key, now=0.0)
        assert cached is not None and token in cached  # the cache is the project's database
        assert run("wafer_token", "get", "--reveal").strip() == token
        masked = run("wafer_token", "refresh")
        assert token not in masked and "--reveal" in masked
    with (
        override_settings(**{**wafer, "WAFER_APP_SECRET": None}),
        pytest.raises(CommandError, match="WAFER_APP_SECRET"),
    ):
        run("wafer_token", "get")
