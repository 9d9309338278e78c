"""``manage.py wafer_sessions``: ``wafer-py sessions`` on the project's store.

The same actions and output (:mod:`wafer_py.cli.sessions`); the store is ``--store``, else
the ``WAFER_STORE_URL`` setting, else the environment variable::

    python manage.py wafer_sessions list --openid OID [--json]
    python manage.py wafer_sessions revoke --openid OID | --session ID
    python manage.py wafer_sessions purge [--batch 1000]
    python manage.py wafer_sessions stats [--json]

A failure is a ``CommandError`` with the CLI's exit status (2: the store; 1: nothing revoked).
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ....cli import sessions
from ..run import run_cli

__all__ = ["Command"]


class Command(BaseCommand):
    help = "List, revoke and purge Wafer sessions; count users, sessions and entries."

    def add_arguments(self, parser: CommandParser) -> None:
        sessions.add_actions(parser.add_subparsers(dest="sessions_command", required=True))

    def handle(self, *args: Any, **options: Any) -> None:
        from ...backends import wafer_setting

        options["store"] = options.get("store") or wafer_setting("WAFER_STORE_URL")
        run_cli(self, lambda: sessions.cmd_sessions(argparse.Namespace(**options)))
