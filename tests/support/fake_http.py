"""Talking to the fake WeChat over HTTP as a server or a browser does."""

from __future__ import annotations

import html
import re
from typing import Any

import requests

from tests.support.constants import TIMEOUT
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChatServer

#: The request id the fake appends to every errmsg, like WeChat.
RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")


def fake_get(server: FakeWeChatServer, path: str, **params: Any) -> requests.Response:
    """GET ``path`` of the fake with the ``params`` that are not ``None``; a redirect is
    answered, not followed."""
    query = {k: v for k, v in params.items() if v is not None}
    return requests.get(server.url + path, params=query, timeout=TIMEOUT, allow_redirects=False)


def exchange_code(
    server: FakeWeChatServer,
    code: str | None,
    appid: str | None = DEMO_APPID,
    secret: str | None = DEMO_APP_SECRET,
    grant_type: str | None = "authorization_code",
    *,
    path: str,
    code_name: str,
    **extra: str,
) -> requests.Response:
    """Exchange ``code`` (sent as ``code_name``) at the fake's ``path`` with an AppID and
    AppSecret, as a server does; a ``None`` leaves its parameter out. Modules bind ``path``
    and ``code_name`` with :func:`functools.partial`."""
    return fake_get(
        server,
        path,
        appid=appid,
        secret=secret,
        **{code_name: code},
        grant_type=grant_type,
        **extra,
    )


def consent_form(page: requests.Response) -> dict[str, str]:
    """The hidden fields of the fake's authorize (consent) page."""
    return {
        k: html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)
    }


def confirm_consent(
    origin: str, form: dict[str, str], decision: str, http: requests.Session | None = None
) -> requests.Response:
    """Press "allow" or "deny" (``decision``) on the consent page of the fake at ``origin``,
    with ``http``'s cookies when given; the redirect back is answered, not followed."""
    return (http or requests).post(
        f"{origin}/connect/oauth2/authorize/confirm",
        data={**form, "decision": decision},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def errcode_of(response: requests.Response) -> int:
    """The errcode of one of the fake's error answers (HTTP 200 and an errmsg with a rid)."""
    assert response.status_code == 200
    body = response.json()
    assert RID.search(body["errmsg"]), body
    return int(body["errcode"])
