"""Running ``python -m wafer_py`` as a user runs a long-lived command (demo, sandbox)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running(
    args: list[str], cwd: Path, until: str, env: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """Run ``python -m wafer_py ARGS``; yield its output lines once ``until`` was printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wafer_py", *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if until in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(30), "no output in time"
        assert proc.poll() is None, "\n".join(lines)
        yield lines
    finally:
        proc.terminate()
        proc.wait(15)
