"""MkDocs hook: serve the repository files that the docs pages include.

``docs/benchmarks.md`` includes ``BENCHMARKS.md`` from the repository root, whose chart is
``bench/results.png``; this adds that file to the site so the include's link resolves
(and ``mkdocs build --strict`` checks it like any other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).parent
SHARED = ("bench/results.png",)


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for path in SHARED:
        files.append(File(path, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
