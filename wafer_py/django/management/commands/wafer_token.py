"""``manage.py wafer_token``: ``wafer-py token`` with the project's ``WAFER_*`` settings.

The same actions and output (:mod:`wafer_py.cli.token`); the AppID, secret, store and
WeChat API base come from the Django settings, else the environment::

    TOKEN=$(python manage.py wafer_token get --reveal)
    python manage.py wafer_token refresh [--force]
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....cli import token
from ..run import run_cli

__all__ = ["Command"]


class Command(BaseCommand):
    help = "The app's access_token from the shared cache (fetched when missing or due)."

    def add_arguments(self, parser: CommandParser) -> None:
        token.add_actions(parser.add_subparsers(dest="token_command", required=True))

    def handle(self, *args: Any, **options: Any) -> None:
        from ...backends import wafer_environ

        environ = wafer_environ()
        try:
            from ....config import WaferConfig

            WaferConfig.from_env(environ)  # a missing or wrong setting, named
        except ValueError as exc:
            raise CommandError(f"wafer_token: {exc}") from None
        run_cli(self, lambda: token.cmd_token(argparse.Namespace(**options), environ))
