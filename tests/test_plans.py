"""wafer_py.plans: one operation, two runners; the one routing decision."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wafer_py import WaferAuth
from wafer_py.exceptions import StoreUnavailable
from wafer_py.plans import Plan, StoreCall, arun, offload, run
from wafer_py.protocol import WaferProtocol
from wafer_py.stores import MemoryStore, SQLiteStore


def _profile_plan(store: Any, seen: list[int]) -> Plan[tuple[Any, Any, str]]:
    first = yield StoreCall(store, "get_user", ("o-plan",))
    seen.append(threading.get_ident())
    second = yield StoreCall(store, "get_user", ("o-missing",))
    seen.append(threading.get_ident())
    try:
        yield StoreCall(store, "revoke_user", ("o-plan",))
        outcome = "revoked"
    except StoreUnavailable:
        outcome = "store down"
    return first, second, outcome


def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(str(tmp_path / "plans.db"))
    store.ensure_user("o-plan", unionid=None, profile={"nickName": "plan"}, now=1.0)
    return store


def test_both_runners_give_the_same_answer(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sync = run(_profile_plan(store, []))
    loop = asyncio.run(arun(_profile_plan(store, [])))
    assert sync[0] == loop[0] and sync[0] is not None and sync[0].openid == "o-plan"
    assert sync[1] is None and loop[1] is None
    assert sync[2] == loop[2] == "revoked"


def test_a_failed_step_is_thrown_into_the_plan(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def plan() -> Plan[str]:
        try:  # the call fails inside the store: StoreUnavailable, thrown in
            yield StoreCall(store, "revoke_user", ("o-plan",), {"no_such_argument": 1})
        except StoreUnavailable:
            return "caught"
        return "not raised"

    assert run(plan()) == "caught"
    assert asyncio.run(arun(plan())) == "caught"
    assert run(StoreCall.plan(store, "get_user", "o-plan")) is not None  # the outage ends


def test_blocking_steps_in_a_row_share_one_worker_thread(tmp_path: Path) -> None:
    """SQLite's get_user has no async form: the async runner takes the plan off the loop,
    and runs the next blocking step in the same thread instead of hopping back."""
    store = _store(tmp_path)
    seen: list[int] = []

    async def main() -> int:
        await arun(_profile_plan(store, seen))
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert len(seen) == 2 and seen[0] == seen[1] != loop_thread


def test_a_store_that_never_blocks_stays_on_the_loop() -> None:
    store = MemoryStore()
    store.ensure_user("o-plan", unionid=None, profile={}, now=1.0)
    seen: list[int] = []

    async def main() -> int:
        await arun(_profile_plan(store, seen))
        return threading.get_ident()

    assert seen == [asyncio.run(main())] * 2


def test_offload_runs_in_a_thread_with_keywords() -> None:
    def where(x: int, *, y: int) -> tuple[int, int]:
        return threading.get_ident(), x + y

    async def main() -> tuple[int, tuple[int, int]]:
        return threading.get_ident(), await offload(where, 1, y=2)

    loop_thread, (worker, total) = asyncio.run(main())
    assert total == 3 and worker != loop_thread


def test_one_routing_decision(make_auth: Callable[..., WaferAuth]) -> None:
    memory = WaferProtocol(make_auth(store_url="memory://"))
    sqlite = WaferProtocol(make_auth())  # supports_async
    skey = {"x-wx-skey": "s" * 20}
    login = memory.login_path

    def routes() -> dict[str, str]:
        return {
            "anonymous": sqlite.route("/api", {}),
            "memory": memory.route("/api", skey),
            "sqlite": sqlite.route("/api", skey),
            "login": memory.route(login, {}),
            "websocket at the login path": sqlite.route(None, {}),
        }

    async def on_asyncio() -> dict[str, str]:
        return routes()

    assert asyncio.run(on_asyncio()) == {
        "anonymous": "inline",
        "memory": "inline",
        "sqlite": "loop",
        "login": "loop",
        "websocket at the login path": "inline",
    }
    # without an asyncio loop (trio): what waits goes to a thread
    assert routes() == {
        "anonymous": "inline",
        "memory": "inline",
        "sqlite": "thread",
        "login": "thread",
        "websocket at the login path": "inline",
    }
