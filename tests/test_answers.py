"""Errors carry what happened; the adapter layers' tables carry HTTP.

Every error class of wafer_py has its own row in the protocol's table
(:mod:`wafer_py.answers`) and in the web-login pages' (:mod:`wafer_py.web.errors`): a new
class without one fails here instead of falling through to its parent's answer unseen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import wafer_py.exceptions as exceptions
from wafer_py.answers import ANSWERS, ERR_INVALID_SESSION, ERR_LOGIN_FAILED, answer_for
from wafer_py.exceptions import (
    DecryptError,
    InvalidSession,
    MalformedEncryptedData,
    MissingCredentials,
    OpenIdMismatch,
    StaleSessionKey,
    StaleWatermark,
    WaferError,
    WeChatAPIError,
    WeChatBusy,
    WeChatUnavailable,
    WrongAppId,
    wechat_error,
)
from wafer_py.protocol import error_response
from wafer_py.web.errors import PAGE_STATUS, page_status
from wafer_py.wechat import parse_wechat_body


def _classes(root: type[WaferError] = WaferError) -> Iterator[type[WaferError]]:
    yield root
    for sub in root.__subclasses__():
        yield from _classes(sub)


#: wafer_py's own classes (subclasses that tests define are not the package's), wherever
#: defined: a class that wafer_py.exceptions does not name fails the test below.
CLASSES = sorted(
    {cls for cls in _classes() if cls.__module__.split(".")[0] == "wafer_py"},
    key=lambda cls: cls.__name__,
)


def _instance(cls: type[WaferError]) -> WaferError:
    if issubclass(cls, WeChatAPIError):
        return cls(cls.errcodes[0] if cls.errcodes else 99999, "errmsg rid: 1")
    return cls()


def test_the_ladder_is_found_whole() -> None:
    assert len(CLASSES) == len(exceptions.__all__) - 1  # every public class but wechat_error
    assert {cls.__name__ for cls in CLASSES} == set(exceptions.__all__) - {"wechat_error"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_each_class_has_its_own_row_in_both_tables(cls: type[WaferError]) -> None:
    assert cls in ANSWERS, f"{cls.__name__} has no answer in wafer_py.answers.ANSWERS"
    assert cls in PAGE_STATUS, f"{cls.__name__} has no status in wafer_py.web.errors"
    exc = _instance(cls)
    assert answer_for(exc) == ANSWERS[cls] and page_status(exc) == PAGE_STATUS[cls]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_errors_carry_no_http(cls: type[WaferError]) -> None:
    exc = _instance(cls)
    for name in ("status", "error", "relogin"):
        assert not hasattr(cls, name) and not hasattr(exc, name), (cls.__name__, name)
    assert exc.message and "reason" in cls.__dict__  # says what happened, in its own words


def test_reasons_tell_every_class_apart() -> None:
    reasons = [cls.reason for cls in CLASSES]
    assert len(set(reasons)) == len(reasons)


def test_only_a_session_problem_makes_clients_log_in_again() -> None:
    relogin = {cls for cls in CLASSES if ANSWERS[cls].relogin}
    assert relogin == {InvalidSession, MissingCredentials}
    for cls in CLASSES:
        body = error_response(_instance(cls)).body
        status = ANSWERS[cls].status
        if cls in relogin:
            assert (body["error"], body["code"], status) == (ERR_INVALID_SESSION, -1, 401)
        else:  # -1 would send a v2 client into a pointless re-login
            assert body["code"] == status and body["error"] != ERR_INVALID_SESSION


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_login_error_is_login_failed_with_code_minus_one(cls: type[WaferError]) -> None:
    exc = _instance(cls)
    answer = error_response(exc, login=True)
    assert answer.status == ANSWERS[cls].status
    assert (answer.body["error"], answer.body["code"]) == (ERR_LOGIN_FAILED, -1)
    assert (answer.body["reason"], answer.body["message"]) == (exc.reason, exc.message)


def test_web_pages_are_never_401_or_403() -> None:
    # Those are the statuses the mini-program middleware swaps for its JSON answer.
    assert {status for status in PAGE_STATUS.values() if status < 500} == {400}


def test_a_subclass_of_your_own_gets_its_parents_rows() -> None:
    class SessionRevokedByAdmin(InvalidSession):
        reason = "revoked_by_admin"

    exc = SessionRevokedByAdmin()
    assert answer_for(exc) == ANSWERS[InvalidSession] and page_status(exc) == 400
    body = error_response(exc).body
    assert (body["error"], body["reason"], body["code"]) == (
        ERR_INVALID_SESSION,
        "revoked_by_admin",
        -1,
    )


def test_decrypt_error_is_the_parent_of_every_decrypt_failure() -> None:
    for cls in (
        MalformedEncryptedData,
        StaleSessionKey,
        WrongAppId,
        OpenIdMismatch,
        StaleWatermark,
    ):
        assert issubclass(cls, DecryptError) and not issubclass(cls, InvalidSession)


def test_the_wire_error_types_are_still_importable_from_exceptions() -> None:
    from wafer_py.exceptions import ERR_CHECK_LOGIN_FAILED as moved

    assert moved == "ERR_CHECK_LOGIN_FAILED"
    with pytest.raises(AttributeError):
        exceptions.NOT_A_NAME  # noqa: B018


@pytest.mark.parametrize("errcode", ['"busy"', '""', "[40029]", "{}"])
def test_an_unreadable_errcode_is_not_made_into_minus_one(errcode: str) -> None:
    body = f'{{"errcode": {errcode}, "errmsg": "x"}}'
    with pytest.raises(ValueError):
        wechat_error(json.loads(body)["errcode"], "x")
    with pytest.raises(WeChatUnavailable) as caught:  # what a body that is not JSON gets
        parse_wechat_body(body.encode(), "/wxa/test")
    assert not isinstance(caught.value, WeChatBusy)
