"""Running a ``wafer-py`` command in the test's own process, as a child process would see it.

An interpreter start costs a command test more than the command itself (about a second of a
loaded two-core machine), so tests whose point is what a command does, not how it starts,
call :func:`run_command`: ``wafer_py.cli.main`` with its own stdout and stderr, the
environment it is given, and the root logger ``main`` configures for itself (its records
go to the command's stderr, as in a child). The tests of ``python -m wafer_py`` itself, and
of commands running side by side, still start processes.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import TextIO

from wafer_py.cli import main


def without_wafer_variables() -> dict[str, str]:
    """The environment without its ``WAFER_*`` variables (a command configured by flags)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _Output(io.StringIO):
    """A command's stdout or stderr: what the threads that ran before the command (the
    test's servers) write while it runs goes to the stream it replaces instead."""

    def __init__(self, before: set[threading.Thread], elsewhere: TextIO) -> None:
        super().__init__()
        self._before = before
        self._elsewhere = elsewhere

    def write(self, text: str) -> int:
        if threading.current_thread() in self._before:  # a Thread, not its reusable ident
            return self._elsewhere.write(text)
        return super().write(text)


@contextmanager
def _own_root_logger() -> Iterator[None]:
    """A root logger without handlers, as in a new interpreter, for ``main``'s
    ``basicConfig``; pytest's handlers and level come back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield
    finally:
        added = [h for h in root.handlers if h not in handlers]
        root.handlers = handlers
        root.setLevel(level)
        for handler in added:
            handler.close()


def _exit_status(code: object, stderr: TextIO) -> int:
    """The status a process ends with on ``SystemExit(code)``: a message goes to stderr."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    stderr.write(f"{code}\n")
    return 1


def run_command(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``wafer-py <args>`` in this process with ``env`` as its whole environment (this
    one's when ``None``); its exit status and output, as :func:`subprocess.run` gives them.
    An exception the command lets out is raised here (a child would print a traceback)."""
    before = set(threading.enumerate()) - {threading.current_thread()}
    out, err = _Output(before, sys.stdout), _Output(before, sys.stderr)
    with (
        _environment(dict(os.environ) if env is None else env),
        _own_root_logger(),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            status = main(list(args))
        except SystemExit as exc:
            status = _exit_status(exc.code, err)
    return subprocess.CompletedProcess(["wafer-py", *args], status, out.getvalue(), err.getvalue())
