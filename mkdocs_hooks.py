"""MkDocs hooks: serve the repository files the docs include, and tidy the docstrings.

``docs/benchmarks.md`` includes ``BENCHMARKS.md`` from the repository root, whose chart is
``bench/results.png``; :func:`on_files` adds that file to the site so the include's link
resolves (and ``mkdocs build --strict`` checks it like any other).

The docstrings name things with Sphinx roles (``:class:`~wafer_py.auth.WaferAuth```), which
mkdocstrings leaves as they are; :func:`on_page_content` shows them as code, with the
``~`` form shortened to the last name as Sphinx does; a paragraph ending in ``::`` (the
reST mark of the example after it) ends in ``:``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).parent
SHARED = ("bench/results.png",)
_LITERAL_MARK = re.compile(r"::</p>")
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>(~?)([^<]+)</code>")


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for path in SHARED:
        files.append(File(path, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def _shorten(match: re.Match[str]) -> str:
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    return _LITERAL_MARK.sub(":</p>", _ROLE.sub(_shorten, html))
