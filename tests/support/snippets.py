"""The Python snippets of the README and the docs, extracted and run as written.

A snippet is a fenced block whose language is ``python`` (or ``py``). Each runs alone in a
fresh interpreter, in an empty working directory, with no ``WAFER_*`` variable set: what it
needs it must say itself. A block that cannot run (a fragment of a Django ``settings.py``,
a sketch against a cloud SDK) is marked on the line before its fence with
``<!-- snippet: skip REASON -->``; the reason is required.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Seconds one snippet may run: each starts a fresh interpreter and imports a framework.
TIMEOUT = 60.0

_OPEN = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^`]*$")
_SKIP = re.compile(r"^\s*<!--\s*snippet:\s*skip\b(?P<reason>.*?)-->\s*$")
_PYTHON = {"python", "py", "python3"}


@dataclass(frozen=True)
class Snippet:
    """One Python block: where it is, its code, and why it is skipped (``None``: it runs)."""

    source: str  # the file, relative to the repository root
    line: int  # the line of its opening fence, counted from 1
    code: str
    skip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class Outcome:
    """How a snippet's run ended: ``ok``, and what it printed when it did not."""

    ok: bool
    output: str


def extract(text: str, source: str) -> list[Snippet]:
    """The Python blocks of one Markdown text. A skip marker without a reason, or a block
    left open, is a ``ValueError`` naming the line: the runner must not guess."""
    lines = text.splitlines()
    found: list[Snippet] = []
    skip: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _SKIP.match(line)
        if marker:
            skip = marker["reason"].strip()
            if not skip:
                raise ValueError(f"{source}:{i + 1}: a snippet skip marker needs a reason")
            i += 1
            continue
        fence = _OPEN.match(line)
        if not fence:
            if line.strip():
                skip = None  # a marker applies to the block right after it only
            i += 1
            continue
        indent, start = fence["indent"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{source}:{start + 1}: a code block is never closed")
        if fence["lang"].lower() in _PYTHON:
            found.append(Snippet(source, start + 1, "\n".join(body) + "\n", skip))
        elif skip:
            raise ValueError(f"{source}:{start + 1}: a skip marker before a non-Python block")
        skip = None
        i += 1
    return found


def documents(root: Path = ROOT) -> list[Path]:
    """The README and every Markdown page under ``docs/``."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def collect(root: Path = ROOT) -> list[Snippet]:
    """Every Python snippet of :func:`documents`, in file and line order."""
    snippets: list[Snippet] = []
    for path in documents(root):
        snippets += extract(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    return snippets


def run(snippet: Snippet, workdir: Path, timeout: float = TIMEOUT) -> Outcome:
    """Run ``snippet`` in a fresh interpreter with ``workdir`` as its working directory,
    this checkout's ``wafer_py`` first on the path and no ``WAFER_*`` variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    script = workdir / "snippet.py"
    script.write_text(snippet.code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(False, f"{snippet.name}: still running after {timeout:.0f} s")
    output = (done.stdout + done.stderr).strip()
    return Outcome(done.returncode == 0, f"{snippet.name}: exit {done.returncode}\n{output}")
