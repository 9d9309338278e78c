"""Each I/O operation written once, run by a sync runner or an async one.

An operation (a login, a session check, a profile update, a revocation) is a *plan*: a
generator that yields the I/O it needs as a step (:class:`StoreCall`, :class:`WeChatLogin`)
and is sent each step's result (or has its exception thrown in). :func:`run` performs the
steps directly. :func:`arun` awaits a step's async form where it has one on this loop (a
store with ``supports_async``, the WeChat client's ``acode2session``, under asyncio),
performs a step that never blocks inline, and hands blocking steps to a worker thread
through :func:`offload`, wafer_py's one thread offload with its one limiter (consecutive
blocking steps share one hop). RedisStore's command plans are the model.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from .exceptions import WeChatUnavailable
from .observe import NO_OBSERVER, Observer
from .stores.base import OUTAGE, acall_store, call_store, store_failure

if TYPE_CHECKING:
    from anyio import CapacityLimiter
    from anyio.lowlevel import RunVar

    from .stores.base import SessionStore
    from .wechat.client import Code2Session, WeChatClient

__all__ = ["Plan", "StoreCall", "WeChatLogin", "run", "arun", "offload", "on_asyncio"]

logger = logging.getLogger("wafer_py")

T = TypeVar("T")


class Step:
    """One I/O step of a plan: :meth:`run` does it blocking, :meth:`arun` on the loop."""

    __slots__ = ()

    def blocks(self) -> bool:
        """Whether :meth:`run` may wait on I/O (then the async runner takes it off the loop)."""
        return True

    def awaitable(self) -> bool:
        """Whether :meth:`arun` exists on the running asyncio loop."""
        return False

    def run(self) -> Any:
        raise NotImplementedError

    def arun(self) -> Awaitable[Any]:
        raise NotImplementedError


#: An operation: yields steps, is sent their results, returns its own.
Plan = Generator[Step, Any, T]

_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


class StoreCall(Step):
    """``store.<name>(*args, **kwargs)``; async through the store's async form
    (``afind_login``, ``atouch_session``) where it has an async driver. The arguments are
    given as a tuple and a dict: this is made on every validated request."""

    __slots__ = ("args", "kwargs", "name", "store")

    def __init__(
        self,
        store: SessionStore,
        name: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] = _NO_KWARGS,
    ) -> None:
        self.store = store
        self.name = name
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def plan(cls, store: SessionStore, name: str, *args: Any, **kwargs: Any) -> Plan[Any]:
        """A plan of this one call (a single-call operation)."""
        result = yield cls(store, name, args, kwargs)
        return result

    def blocks(self) -> bool:
        return self.store.blocking

    def awaitable(self) -> bool:
        return self.name in _ASYNC_FORMS and self.store.supports_async

    def run(self) -> Any:
        observer = self.store.observer
        if observer is NO_OBSERVER and not OUTAGE.down:
            # call_store's work, inline: this runs on every validated request.
            try:
                return getattr(self.store, self.name)(*self.args, **self.kwargs)
            except Exception as exc:
                failure = store_failure(exc)
                if failure is exc:
                    raise
                raise failure from None
        if observer is NO_OBSERVER:
            return call_store(getattr(self.store, self.name), *self.args, **self.kwargs)
        started = time.perf_counter()
        try:
            return call_store(getattr(self.store, self.name), *self.args, **self.kwargs)
        finally:
            observer.store_call(self.name, time.perf_counter() - started)

    def arun(self) -> Awaitable[Any]:
        call = getattr(self.store, _ASYNC_FORMS[self.name])
        observer = self.store.observer
        if observer is NO_OBSERVER:
            return acall_store(call, *self.args, **self.kwargs)
        return _timed(observer, self.name, acall_store(call, *self.args, **self.kwargs))


async def _timed(observer: Observer, name: str, call: Awaitable[Any]) -> Any:
    """Await a store call, telling ``observer`` how long it took."""
    started = time.perf_counter()
    try:
        return await call
    finally:
        observer.store_call(name, time.perf_counter() - started)


#: The store methods with an async form (used where ``supports_async`` is set).
_ASYNC_FORMS = {"find_login": "afind_login", "touch_session": "atouch_session"}


class WeChatLogin(Step):
    """WeChat's ``code2session`` for a login that must be over at ``deadline`` (on
    ``clock``). On the loop it awaits ``acode2session`` (which holds no thread where the
    client can)."""

    __slots__ = ("clock", "code", "deadline", "wechat")

    def __init__(
        self, wechat: WeChatClient, code: str, deadline: float, clock: Callable[[], float]
    ) -> None:
        self.wechat = wechat
        self.code = code
        self.deadline = deadline
        self.clock = clock

    def awaitable(self) -> bool:
        return True

    def run(self) -> Code2Session:
        return self.wechat.code2session(self.code, timeout=self.deadline - self.clock())

    async def arun(self) -> Code2Session:
        acode2session = getattr(self.wechat, "acode2session", None)
        try:
            async with asyncio.timeout(self.deadline - self.clock()):
                if acode2session is not None:
                    answer: Code2Session = await acode2session(self.code)
                    return answer
                return await offload(self.run)  # a client without the async form
        except TimeoutError:
            logger.warning("wafer_py: WeChat did not answer a login within its time")
            raise WeChatUnavailable() from None


class _Done:
    """What a plan returned, carried out of a worker thread (a StopIteration cannot be)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _advance(plan: Plan[Any], step: Step) -> Step | _Done:
    """Perform ``step`` blocking; give the plan its result; the plan's next step."""
    try:
        try:
            result = step.run()
        except Exception as exc:
            return plan.throw(exc)
        return plan.send(result)
    except StopIteration as stop:
        return _Done(stop.value)


def run(plan: Plan[T]) -> T:
    """Run ``plan`` in this thread, every step blocking."""
    try:
        step = next(plan)
        while True:
            try:
                result = step.run()
            except Exception as exc:
                step = plan.throw(exc)
            else:
                step = plan.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def arun(plan: Plan[T]) -> T:
    """Run ``plan`` without blocking the event loop (see the module's docstring)."""
    loop = on_asyncio()
    try:
        step: Step | _Done = next(plan)
        while not isinstance(step, _Done):
            if loop and step.awaitable():
                try:
                    result = await step.arun()
                except Exception as exc:
                    step = plan.throw(exc)
                else:
                    step = plan.send(result)
            elif step.blocks():
                step = await offload(_through, plan, step, loop)
            else:
                step = _advance(plan, step)
    except StopIteration as stop:
        value: T = stop.value
        return value
    value = step.value
    return value


def _through(plan: Plan[Any], step: Step, loop: bool) -> Step | _Done:
    """In a worker thread: perform blocking steps until one the loop should take."""
    while True:
        after = _advance(plan, step)
        if isinstance(after, _Done) or not after.blocks() or (loop and after.awaitable()):
            return after
        step = after


def on_asyncio() -> bool:
    """Whether an asyncio loop runs this task (not trio: the async store drivers and the
    async WeChat call use asyncio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


#: Worker threads wafer_py may hold at once on one event loop (``WaferMiddleware``'s
#: ``max_threads`` sets it).
MAX_THREADS = 64
_limiters: RunVar[CapacityLimiter] | None = None  # one limiter per event loop


def set_max_threads(count: int) -> None:
    """Set :data:`MAX_THREADS` (for event loops that have not offloaded anything yet)."""
    if count < 1:
        raise ValueError("max_threads must be at least 1")
    global MAX_THREADS
    MAX_THREADS = count


async def offload(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` in a worker thread (anyio's, so asyncio and trio alike),
    at most :data:`MAX_THREADS` at once per event loop. wafer_py's only way off the loop."""
    import anyio.to_thread  # anyio (Starlette's) only for async callers

    if kwargs:
        call = functools.partial(call, **kwargs)

    global _limiters
    if _limiters is None:
        _limiters = anyio.lowlevel.RunVar("wafer_py.threads")
    try:
        limiter = _limiters.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(MAX_THREADS)
        _limiters.set(limiter)
    return await anyio.to_thread.run_sync(call, *args, limiter=limiter)
