"""Scraping ``/metrics`` in the tests: samples by name and labels, and what moved."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

import requests

from tests.support.constants import TIMEOUT
from wafer_py.fakewechat import FakeWeChat

#: A sample: its name and its labels, sorted.
Key = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: str) -> dict[Key, float]:
    """Every sample of an exposition (Prometheus' text format)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def key(name: str, **labels: str) -> Key:
    return (name, tuple(sorted(labels.items())))


def scrape(url: str) -> tuple[str, dict[Key, float]]:
    """The exposition at ``url``, as text and parsed."""
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, parse(response.text)


def moved(before: Mapping[Key, float], after: Mapping[Key, float]) -> dict[Key, float]:
    """The samples whose value changed, by how much (a sample new in ``after`` from 0)."""
    return {
        k: value - before.get(k, 0.0)
        for k, value in after.items()
        if value != before.get(k, 0.0) and not k[0].endswith("_created")
    }


def wait_for_sample(
    url: str, sample: Key, wanted: float, deadline: float = 30.0
) -> dict[Key, float]:
    """Scrape ``url`` until ``sample`` has the value ``wanted`` (state, not time)."""
    end = time.monotonic() + deadline
    while True:
        _, samples = scrape(url)
        if samples.get(sample, 0.0) == wanted:
            return samples
        if time.monotonic() > end:
            raise AssertionError(f"{sample} is {samples.get(sample)}, not {wanted}")
        time.sleep(0.02)


def wait_until(check: Callable[[], bool], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError("the condition never held")
        time.sleep(0.02)


#: ``get(path, headers)`` -> (HTTP status, body): a request to the app under test.
Get = Callable[[str, dict[str, str]], tuple[int, str]]


def exercise(get: Get, fake: FakeWeChat, appid: str, user: str, page: str) -> list[str]:
    """A login, a failed login (a code the fake WeChat never gave), a request with the
    session and one with an skey that names none (to ``page``); the secrets they used."""
    login = fake.login(appid, user)
    status, body = get("/weapp/login", {"X-WX-Code": login["code"]})
    assert status == 200, body
    answer = json.loads(body)
    skey, session_id = answer["data"]["skey"], answer["session"]["id"]
    bad_code = f"never-issued-{user}"
    status, body = get("/weapp/login", {"X-WX-Code": bad_code})
    assert status == 400 and "invalid_code" in body, body
    status, body = get(page, {"X-WX-Skey": skey})
    assert status == 200 and login["openid"] in body, body
    unknown_skey = f"unknown-skey-of-{user}"
    status, body = get(page, {"X-WX-Skey": unknown_skey})
    assert login["openid"] not in body, body
    return [skey, session_id, login["code"], bad_code, login["openid"], unknown_skey]


#: What :func:`exercise` moves, exactly.
EXPECTED = {
    key("wafer_logins_total", outcome="ok", reason="none"): 1.0,
    key("wafer_logins_total", outcome="refused", reason="invalid_code"): 1.0,
    key("wafer_login_seconds_count", outcome="ok"): 1.0,
    key("wafer_login_seconds_count", outcome="refused"): 1.0,
    key("wafer_validations_total", outcome="valid", reason="none"): 1.0,
    key("wafer_validations_total", outcome="invalid", reason="invalid_session"): 1.0,
    key("wafer_wechat_call_seconds_count", api="/sns/jscode2session", outcome="ok"): 1.0,
    key("wafer_wechat_call_seconds_count", api="/sns/jscode2session", outcome="error"): 1.0,
}
#: Store calls it makes at least (an adapter may make more).
EXPECTED_STORE = {"find_login": 2.0, "ensure_user": 1.0, "create_session": 1.0}


def check_moved(before: Mapping[Key, float], after: Mapping[Key, float]) -> None:
    """The counters :func:`exercise` moves moved by as much, and nothing else of
    logins and validations moved."""
    changed = moved(before, after)
    for sample, by in EXPECTED.items():
        assert changed.get(sample) == by, (sample, changed.get(sample))
    for sample in changed:
        if sample[0] in ("wafer_logins_total", "wafer_validations_total"):
            assert sample in EXPECTED, sample
    for op, least in EXPECTED_STORE.items():
        assert changed.get(key("wafer_store_call_seconds_count", op=op), 0) >= least, op
    assert after.get(key("wafer_login_queue_length"), 0.0) == 0.0
