"""The WeChat account model, get_django_user, WaferBackend and the admin page."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connections
from django.test import Client, RequestFactory, override_settings

from tests.django.conftest import APPID
from wafer_py.auth import Authenticated
from wafer_py.django import backends
from wafer_py.django.admin import mask_phone
from wafer_py.django.backends import WaferBackend, get_django_user
from wafer_py.django.models import WeChatAccount
from wafer_py.models import User
from wafer_py.testing import make_session, run_threads

# WAFER_APPID set for every test (the account's appid); the admin's URLs for its test.
pytestmark = pytest.mark.usefixtures("wafer_appid")


def identity(openid: str = "o-alice", **user: Any) -> Authenticated:
    session, _ = make_session(openid)
    fields: dict[str, Any] = {"profile": {"nickName": "Alice", "avatarUrl": "https://a/1.png"}}
    fields.update(user)
    return Authenticated(User(openid, **fields), session)


@pytest.mark.django_db
def test_first_login_creates_the_user_and_account() -> None:
    user = get_django_user(identity(unionid="u-1", phone="+8613812345678"))
    assert user.username == "wx_o-alice"
    assert not user.has_usable_password()
    account = WeChatAccount.objects.get(user=user)
    assert (account.appid, account.openid, account.unionid) == (APPID, "o-alice", "u-1")
    assert (account.nickname, account.avatar_url, account.phone) == (
        "Alice",
        "https://a/1.png",
        "+8613812345678",
    )
    again = get_django_user(identity(unionid="u-1", phone="+8613812345678"))
    assert again.pk == user.pk
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_account_follows_the_store_user() -> None:
    first = identity()
    user = get_django_user(first)
    changed = replace(
        first.user, unionid="u-2", profile={"nickName": "Bob", "avatarUrl": ""}, phone="+861"
    )
    assert get_django_user(first._replace(user=changed)).pk == user.pk
    account = WeChatAccount.objects.get(user=user)
    assert (account.unionid, account.nickname, account.avatar_url, account.phone) == (
        "u-2",
        "Bob",
        "",
        "+861",
    )


@pytest.mark.django_db
def test_one_openid_in_two_mini_programs_is_two_users() -> None:
    a = get_django_user(identity(), appid="wxaaaaaaaaaaaaaaaa")
    b = get_django_user(identity(), appid="wxbbbbbbbbbbbbbbbb")
    assert a.pk != b.pk
    assert b.username.startswith("wx_o-alice_")
    with pytest.raises(IntegrityError):
        WeChatAccount.objects.create(
            user=get_user_model().objects.create(username="x"),
            appid="wxaaaaaaaaaaaaaaaa",
            openid="o-alice",
        )


@pytest.mark.django_db
def test_a_taken_username_is_not_someone_elses_account() -> None:
    stranger = get_user_model().objects.create(username="wx_o-alice")
    user = get_django_user(identity())
    assert user.pk != stranger.pk
    assert not WeChatAccount.objects.filter(user=stranger).exists()


@pytest.mark.django_db
def test_appid_is_required() -> None:
    with (
        override_settings(WAFER_APPID=None),
        pytest.raises(ImproperlyConfigured, match="WAFER_APPID"),
    ):
        get_django_user(identity())


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_logins_make_one_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every thread looks the account up before any creates it (a barrier holds them
    after the lookup): all but one lose the unique constraint and read the winner's."""
    barrier = threading.Barrier(8)
    real_find = backends._find
    seen: set[int] = set()

    def find_together(appid: str, openid: str) -> Any:
        found = real_find(appid, openid)
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            barrier.wait(timeout=30)
        return found

    monkeypatch.setattr(backends, "_find", find_together)
    users: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def login(i: int) -> None:
        try:
            user = get_django_user(identity("o-race"))
            with lock:
                users.append(user.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    run_threads(login, 8)
    assert not errors
    assert len(set(users)) == 1 and len(users) == 8
    assert WeChatAccount.objects.filter(openid="o-race").count() == 1
    assert get_user_model().objects.filter(username__startswith="wx_o-race").count() == 1


@pytest.mark.django_db
def test_backend_logs_the_user_into_django_sessions() -> None:
    request = RequestFactory().get("/")
    request.session = Client().session
    who = identity()
    user = auth.authenticate(request, identity=who)
    assert user is not None and user.username == "wx_o-alice"
    auth.login(request, user)
    assert request.session[auth.SESSION_KEY] == str(user.pk)
    assert request.session[auth.BACKEND_SESSION_KEY] == "wafer_py.django.backends.WaferBackend"
    assert WaferBackend().get_user(user.pk) == user
    assert WaferBackend().get_user(10**9) is None
    assert WaferBackend().authenticate(request, identity=None) is None
    assert WaferBackend().authenticate(request, username="wx_o-alice", password="") is None
    user.is_active = False
    user.save()
    assert WaferBackend().authenticate(request, identity=who) is None
    assert WaferBackend().get_user(user.pk) is None


def test_mask_phone() -> None:
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("1234567") == "****"
    assert mask_phone("") == ""


@pytest.mark.django_db
@pytest.mark.urls("tests.django.adminurls")
@pytest.mark.usefixtures("wafer")  # the middleware's auth (on the fake WeChat)
def test_admin_masks_the_phone_and_searches(admin_client: Client) -> None:
    get_django_user(identity(unionid="u-search", phone="+8613812345678"))
    get_django_user(identity("o-bob", profile={"nickName": "Bob"}))
    listing = admin_client.get("/admin/wafer_py_django/wechataccount/")
    page = listing.content.decode()
    assert listing.status_code == 200
    assert "+86138****5678" in page and "13812345678" not in page
    for query in ("o-alice", "u-search", "Alice"):
        found = admin_client.get("/admin/wafer_py_django/wechataccount/", {"q": query})
        text = found.content.decode()
        assert "o-alice" in text and "o-bob" not in text, query
    account = WeChatAccount.objects.get(openid="o-alice")
    change = admin_client.get(f"/admin/wafer_py_django/wechataccount/{account.pk}/change/")
    text = change.content.decode()
    assert change.status_code == 200
    assert "+86138****5678" in text and "13812345678" not in text
    assert 'name="openid"' not in text  # read-only
    # A POST cannot change the ids either.
    admin_client.post(
        f"/admin/wafer_py_django/wechataccount/{account.pk}/change/",
        {"openid": "o-mallory", "appid": "wxevil", "phone": "+1"},
    )
    account.refresh_from_db()
    assert (account.openid, account.appid, account.phone) == ("o-alice", APPID, "+8613812345678")
    # Refused: the admin's 403, which WaferMiddleware turns into the protocol's 401 for a
    # request without a Wafer session (the admin's own login is a Django session).
    assert admin_client.get("/admin/wafer_py_django/wechataccount/add/").status_code in (401, 403)
    assert WeChatAccount.objects.count() == 2  # alice's and bob's, no third
