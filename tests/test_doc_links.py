"""The Markdown files at the top of the repository link only to files that exist.

The docs site's own links are checked by ``mkdocs build --strict`` (CI); README.md,
SECURITY.md and BENCHMARKS.md are read on the forge and by pip, outside that build.
"""

from __future__ import annotations

import re

import pytest

from tests.support.snippets import ROOT

_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
TOP = ("README.md", "SECURITY.md", "BENCHMARKS.md", "CHANGELOG.md")


@pytest.mark.parametrize("name", TOP)
def test_relative_links_resolve(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    missing = []
    for match in _LINK.finditer(text):
        target = match["target"].split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor, a URL
            continue
        if not (ROOT / target).exists():
            missing.append(target)
    assert not missing, f"{name} links to files that do not exist: {missing}"


def test_readme_links_to_the_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {m["target"] for m in _LINK.finditer(text)}
    assert "docs/index.md" in linked and "docs/api/index.md" in linked
