"""The example served over ASGI: ``uvicorn examples.django_app.asgi:application``, or
``wafer-py demo --framework django`` for the demo with the fake WeChat.

The database is a fresh temporary SQLite file, so it is migrated here, at start; a real
project runs ``manage.py migrate`` when it deploys.
"""

from __future__ import annotations

import os

from django.core.handlers.asgi import ASGIHandler

from wafer_py import WaferAuth

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

#: Made on first use (below): importing ``create_app`` builds nothing.
application: ASGIHandler


def create_app(auth: WaferAuth | None = None) -> ASGIHandler:
    """The ASGI application; ``auth`` (tests, the demo) wins over the WAFER_* settings."""
    from .bootstrap import setup

    return setup(ASGIHandler, auth)


def __getattr__(name: str) -> object:
    if name != "application":
        raise AttributeError(name)
    global application
    application = create_app()
    return application
