"""The ``wafer-py`` command: :mod:`.main` (demo, sandbox and the table of subcommands),
:mod:`.sessions`, :mod:`.token`, :mod:`.migrate` (with :mod:`.legacy`, the original Wafer
servers' tables) and :mod:`.progress`."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
