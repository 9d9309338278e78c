"""A worker process for tests/test_token_concurrency.py (imported by spawned processes).

Each process opens the shared store, then runs two phases of ``threads`` threads that all
start at once: ask for a token and make a token-taking call (checksession). Between the
phases it waits at a cross-process barrier while the test expires WeChat's tokens.
"""

from __future__ import annotations

import threading
from typing import Any

from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.stores import open_store
from wafer_py.wechat import WeChatClient
from wafer_py.wechat.api import WeChatAPI
from wafer_py.wechat.tokens import AccessTokenCache

BARRIER_TIMEOUT = 60.0


def _phase(
    api: WeChatAPI, threads: int, openid: str, session_key: str, token_first: bool
) -> list[tuple[str, str, bool]]:
    barrier = threading.Barrier(threads)
    outcomes: list[tuple[str, str, bool]] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            barrier.wait(BARRIER_TIMEOUT)
            if token_first:
                token = api.access_token()
                valid = api.check_session_key(openid, session_key)
            else:
                valid = api.check_session_key(openid, session_key)
                token = api.access_token()
            outcome = ("ok", token, valid)
        except Exception as exc:
            outcome = ("error", repr(exc), False)
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(BARRIER_TIMEOUT)
    return outcomes


def run(
    store_url: str,
    api_base: str,
    openid: str,
    session_key: str,
    threads: int,
    start: Any,
    middle: Any,
    resume: Any,
    results: Any,
) -> None:
    """Run both phases; put ``(phase1, phase2)`` outcomes on ``results``."""
    client = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=api_base, pool_size=threads)
    store = open_store(store_url)
    api = WeChatAPI(client, AccessTokenCache(store, client))
    try:
        start.wait(BARRIER_TIMEOUT)
        first = _phase(api, threads, openid, session_key, token_first=True)
        middle.wait(BARRIER_TIMEOUT)  # the test expires WeChat's tokens now
        resume.wait(BARRIER_TIMEOUT)
        second = _phase(api, threads, openid, session_key, token_first=False)
        results.put((first, second))
    except Exception as exc:
        results.put(([("error", repr(exc), False)], []))
    finally:
        client.close()
        store.close()
