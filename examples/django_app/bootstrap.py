"""Django set up once per process for the example: its apps loaded, its database migrated."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import django
from django.core.management import call_command
from django.test.utils import override_settings

from wafer_py import WaferAuth

H = TypeVar("H")
_lock = threading.Lock()
_migrated = False


def setup(handler: type[H], auth: WaferAuth | None) -> H:
    """A Django ``handler`` (ASGI or WSGI) whose middleware uses ``auth`` when given (its
    chain reads the settings once, when built)."""
    global _migrated
    django.setup(set_prefix=False)
    with _lock:
        if not _migrated:
            _off_the_loop(lambda: call_command("migrate", interactive=False, verbosity=0))
            _migrated = True
    if auth is None:
        return handler()
    with override_settings(WAFER_AUTH=auth):
        return handler()


def _off_the_loop(call: Callable[[], object]) -> None:
    """Run ``call`` in a thread of its own and wait: ``uvicorn --factory`` makes the app on
    its event loop, where Django refuses database calls."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="django-example-migrate")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
