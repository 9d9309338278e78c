"""The ``wafer-py`` command: :mod:`.main` (demo, sandbox and the table of subcommands, with
:mod:`.ports`), :mod:`.check`, :mod:`.sessions`, :mod:`.token`, :mod:`.migrate` (with
:mod:`.legacy`, the import of the original Wafer servers' users, and :mod:`.legacytable`,
their tables), :mod:`.opening` (a store opened without creating it), :mod:`.probes` (the
store and WeChat tried, failures in one line) and :mod:`.progress`. Reference: docs/cli.md."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
