"""Django REST framework views behind WaferAuthentication and wafer_exception_handler,
in process with APIRequestFactory: both client generations' answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from tests.django.conftest import APPID
from wafer_py import WaferAuth, WaferConfig
from wafer_py.answers import ERR_INVALID_SESSION
from wafer_py.auth import LoginResult
from wafer_py.django.drf import WaferAuthentication
from wafer_py.django.models import WeChatAccount
from wafer_py.exceptions import StoreUnavailable
from wafer_py.protocol import MAGIC_ID, RequestState
from wafer_py.stores import MemoryStore
from wafer_py.wechat.client import Code2Session

pytestmark = pytest.mark.usefixtures("wafer_appid")  # WAFER_APPID, the account's appid
SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="
factory = APIRequestFactory()


class Me(APIView):
    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        return Response({"username": request.user.username, "openid": request.auth.openid})


class Open(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        return Response({"authenticated": bool(request.user.is_authenticated)})


class Broken(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise StoreUnavailable(detail="the database went away")


class Picky(APIView):
    permission_classes = (IsAuthenticated,)

    def post(self, request: Request) -> Response:
        class Body(serializers.Serializer[Any]):
            name = serializers.CharField()

        Body(data=request.data).is_valid(raise_exception=True)
        raise PermissionDenied("not yours")


class FailingStore(MemoryStore):
    def find_login(self, **kwargs: Any) -> Any:
        raise StoreUnavailable(detail="connection refused")


def make_auth(store: MemoryStore | None = None) -> WaferAuth:
    config = WaferConfig(appid=APPID, app_secret="x", secret_keys=("k" * 40,))
    return WaferAuth(config, store=store or MemoryStore())


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch) -> WaferAuth:
    made = make_auth()
    monkeypatch.setattr(WaferAuthentication, "auth", made)
    return made


@pytest.fixture
def login(auth: WaferAuth) -> LoginResult:
    return auth.complete_login(Code2Session("o-drf", SESSION_KEY))


def check_relogin(response: Any, reason: str) -> None:
    assert response.status_code == 401
    body = response.data
    assert body[MAGIC_ID] == 1 and body["error"] == ERR_INVALID_SESSION  # v1
    assert body["code"] == -1  # v2
    assert body["reason"] == reason
    assert response["WWW-Authenticate"].startswith("Wafer")
    assert response["Cache-Control"] == "no-store"
    response.render()
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content) == body


@pytest.mark.django_db
def test_v2_skey_authenticates(login: LoginResult) -> None:
    response = Me.as_view()(factory.get("/me", HTTP_X_WX_SKEY=login.skey))
    assert response.status_code == 200
    assert response.data == {"username": "wx_o-drf", "openid": "o-drf"}
    assert WeChatAccount.objects.get(openid="o-drf").appid == APPID


@pytest.mark.django_db
def test_v1_id_and_skey_authenticate(login: LoginResult) -> None:
    request = factory.get("/me", HTTP_X_WX_ID=login.session_id, HTTP_X_WX_SKEY=login.skey)
    response = Me.as_view()(request)
    assert response.status_code == 200 and response.data["openid"] == "o-drf"


@pytest.mark.django_db
def test_no_session_is_401_in_the_protocol(auth: WaferAuth) -> None:
    check_relogin(Me.as_view()(factory.get("/me")), "missing_session")


@pytest.mark.django_db
def test_a_refused_session_says_why(auth: WaferAuth, login: LoginResult) -> None:
    auth.store.revoke_session(login.session_id)
    response = Me.as_view()(factory.get("/me", HTTP_X_WX_SKEY=login.skey))
    check_relogin(response, "invalid_session")
    response = Me.as_view()(factory.get("/me", HTTP_X_WX_SKEY="not a skey!"))
    check_relogin(response, "invalid_session")


@pytest.mark.django_db
def test_open_views_answer_a_bad_session_anonymously(auth: WaferAuth) -> None:
    response = Open.as_view()(factory.get("/open", HTTP_X_WX_SKEY="0" * 32))
    assert response.status_code == 200 and response.data == {"authenticated": False}


@pytest.mark.django_db
def test_the_middleware_state_is_used_as_it_is(login: LoginResult, monkeypatch: Any) -> None:
    # No WaferAuth to check headers with: the request's state must be enough.
    monkeypatch.setattr(WaferAuthentication, "auth", None)
    monkeypatch.setattr(WaferAuthentication, "_made", None)
    monkeypatch.setattr(WaferAuthentication, "wafer_auth", lambda self: pytest.fail("checked"))
    request = factory.get("/me")
    state = RequestState(identity=_identity(login), generation="v2")
    request.wafer = state  # type: ignore[attr-defined]
    response = Me.as_view()(request)
    assert response.status_code == 200 and response.data["openid"] == "o-drf"


def _identity(login: LoginResult) -> Any:
    from wafer_py.auth import Authenticated

    return Authenticated(login.user, login.session)


@pytest.mark.django_db
def test_store_outage_is_503_in_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WaferAuthentication, "auth", make_auth(FailingStore()))
    response = Me.as_view()(factory.get("/me", HTTP_X_WX_SKEY="a" * 32))
    assert response.status_code == 503
    assert response.data[MAGIC_ID] == 1 and response.data["reason"] == "store_unavailable"
    assert "connection refused" not in str(response.data)


@pytest.mark.django_db
def test_wafer_errors_from_views_are_answered_by_the_protocol(auth: WaferAuth) -> None:
    response = Broken.as_view()(factory.get("/broken"))
    assert response.status_code == 503 and response.data["reason"] == "store_unavailable"
    assert "went away" not in str(response.data)


@pytest.mark.django_db
def test_other_errors_keep_drf_answers(login: LoginResult) -> None:
    view = Picky.as_view()
    bad = view(factory.post("/picky", {}, format="json", HTTP_X_WX_SKEY=login.skey))
    assert bad.status_code == 400 and "name" in bad.data
    denied = view(factory.post("/picky", {"name": "x"}, format="json", HTTP_X_WX_SKEY=login.skey))
    assert denied.status_code == 403 and MAGIC_ID not in denied.data


class PlainDRF(Me):
    """DRF's own exception handler: the 401 comes from authenticate_header alone."""

    def get_exception_handler(self) -> Any:
        from rest_framework.views import exception_handler

        return exception_handler


@pytest.mark.django_db
def test_drf_answers_401_not_403(auth: WaferAuth) -> None:
    response = PlainDRF.as_view()(factory.get("/me"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Wafer realm="wafer"'
