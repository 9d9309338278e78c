"""``request.user``: the Django user linked to the WeChat account, made lazily.

It needs ``wafer_py.django.backends`` (the model and ``get_django_user``, built in parallel
with the adapter): until that module is there, these tests skip saying so.
"""

from __future__ import annotations

import importlib.util

import pytest
from django.contrib.auth import get_user_model

from tests.django.test_django_middleware import Async, Sync, login
from wafer_py import WaferAuth
from wafer_py.fakewechat import FakeWeChat

HAS_BACKENDS = importlib.util.find_spec("wafer_py.django.backends") is not None

pytestmark = [
    pytest.mark.urls("tests.django.urls"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not HAS_BACKENDS,
        reason="wafer_py.django.backends (get_django_user, the WeChatAccount model) is not "
        "merged yet: request.user cannot be linked without it",
    ),
]


def test_request_user_is_the_linked_django_user_made_on_first_use(
    wafer: WaferAuth, fake: FakeWeChat
) -> None:
    client, aclient = Sync(), Async()
    skey = login(client, fake, "linked")
    headers = {"X-WX-Skey": skey}
    users = get_user_model().objects
    assert client.get("/open", headers=headers).json()["authenticated"]
    assert users.count() == 0  # a view that does not touch request.user costs no query
    first = client.get("/linked", headers=headers).json()
    assert first["authenticated"] is True and first["pk"] is not None
    assert client.get("/linked", headers=headers).json() == first  # the same user again
    assert aclient.get("/async/linked", headers=headers).json() == first  # await auser()
    assert users.count() == 1
    other = client.get("/linked", headers={"X-WX-Skey": login(client, fake, "other")}).json()
    assert other["pk"] != first["pk"]
