"""Running a ``wafer-py`` command function inside a Django management command."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

__all__ = ["run_cli"]


def run_cli(command: BaseCommand, call: Callable[[], int]) -> None:
    """Run ``call`` (it prints as the CLI does) with its output sent to the command's
    ``stdout``/``stderr`` (so ``call_command(..., stdout=...)`` gets it); a non-zero
    status becomes a ``CommandError`` with that status and the CLI's error line."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = call()
    command.stdout.write(out.getvalue(), ending="")
    if status:
        message = err.getvalue().strip() or "nothing matched"
        raise CommandError(message, returncode=status)
    command.stderr.write(err.getvalue(), ending="")
