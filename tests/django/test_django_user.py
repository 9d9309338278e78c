"""``request.user``: the Django user linked to the WeChat account, made lazily."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.django.test_django_middleware import Async, Sync, login
from wafer_py import WaferAuth
from wafer_py.fakewechat import FakeWeChat

pytestmark = [pytest.mark.urls("tests.django.urls"), pytest.mark.django_db(transaction=True)]


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
