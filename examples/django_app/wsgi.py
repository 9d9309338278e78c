"""The example served over WSGI: ``gunicorn examples.django_app.wsgi:application``.

The database is a fresh temporary SQLite file, so it is migrated here, at start; a real
project runs ``manage.py migrate`` when it deploys.
"""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler

from wafer_py import WaferAuth

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

#: Made on first use (below): importing ``create_app`` builds nothing.
application: WSGIHandler


def create_app(auth: WaferAuth | None = None) -> WSGIHandler:
    """The WSGI application; ``auth`` (tests) wins over the WAFER_* settings."""
    from .bootstrap import setup

    return setup(WSGIHandler, auth)


def __getattr__(name: str) -> object:
    if name != "application":
        raise AttributeError(name)
    global application
    application = create_app()
    return application
