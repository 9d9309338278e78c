"""Every Python snippet of the README and the docs runs as written (tests/support/snippets.py).

The snippets run in parallel, each in its own interpreter and working directory; a block
marked ``<!-- snippet: skip REASON -->`` (a fragment of a larger project) is not run, only
compiled, so it still has to be valid Python; the marked blocks are few and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.snippets import Outcome, Snippet, collect, extract, run

SNIPPETS = collect()
#: Blocks allowed to be skipped: a new skip must be a deliberate change of this number.
MAX_SKIPPED = 5


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Outcome]]]:
    """Every runnable snippet, started at once on a few workers; each test waits for its own."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield {
            s.name: pool.submit(run, s, tmp_path_factory.mktemp("snippet"))
            for s in SNIPPETS
            if s.skip is None
        }


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.name for s in SNIPPETS])
def test_snippet_runs(snippet: Snippet, outcomes: dict[str, Future[Outcome]]) -> None:
    if snippet.skip is not None:  # a fragment: valid Python, not run (its reason is in the page)
        compile(snippet.code, snippet.name, "exec")
        return
    outcome = outcomes[snippet.name].result()
    assert outcome.ok, outcome.output


def test_snippets_found_and_few_skipped() -> None:
    assert len(SNIPPETS) >= 20, "the snippet runner found too few blocks: is the parser broken?"
    skipped = [s for s in SNIPPETS if s.skip is not None]
    assert len(skipped) <= MAX_SKIPPED, [f"{s.name}: {s.skip}" for s in skipped]


def test_runner_fails_a_snippet_that_does_not_run(tmp_path: Path) -> None:
    page = "Text.\n\n```python\nfrom wafer_py import WaferConfig\n\nWaferConfg()\n```\n"
    (snippet,) = extract(page, "broken.md")
    outcome = run(snippet, tmp_path)
    assert not outcome.ok
    assert "broken.md:3" in outcome.output and "NameError" in outcome.output


def test_runner_fails_a_snippet_whose_check_fails(tmp_path: Path) -> None:
    code = "from wafer_py import WaferConfig\n\nWaferConfig(appid='wx1', app_secret='s')\n"
    broken = code.replace("app_secret='s'", "app_secret=''")  # a config that stops at start
    (good,) = extract(f"```python\n{code}```\n", "good.md")
    (bad,) = extract(f"```python\n{broken}```\n", "bad.md")
    assert run(good, tmp_path).ok
    outcome = run(bad, tmp_path)
    assert not outcome.ok and "WAFER_APP_SECRET is not set" in outcome.output


def test_runner_stops_a_snippet_that_hangs(tmp_path: Path) -> None:
    (snippet,) = extract("```python\nimport time\n\ntime.sleep(60)\n```\n", "slow.md")
    outcome = run(snippet, tmp_path, timeout=1)
    assert not outcome.ok and "still running after 1 s" in outcome.output


def test_skip_marker_needs_a_reason_and_a_python_block() -> None:
    marked = "<!-- snippet: skip needs a Redis Cluster -->\n```python\nx = 1\n```\n"
    assert extract(marked, "a.md")[0].skip == "needs a Redis Cluster"
    with pytest.raises(ValueError, match=r"a\.md:1: a snippet skip marker needs a reason"):
        extract("<!-- snippet: skip -->\n```python\nx = 1\n```\n", "a.md")
    with pytest.raises(ValueError, match="before a non-Python block"):
        extract("<!-- snippet: skip shell -->\n```bash\nls\n```\n", "a.md")
    # A marker covers the next block only, and blocks of other languages are not snippets.
    text = marked + "\nText.\n\n```python\ny = 2\n```\n\n```bash\nexit 1\n```\n"
    assert [s.skip for s in extract(text, "a.md")] == ["needs a Redis Cluster", None]


def test_indented_blocks_and_unclosed_fences() -> None:
    page = "!!! note\n    ```python\n    assert 1 + 1 == 2\n    ```\n"
    (snippet,) = extract(page, "a.md")
    assert snippet.code == "assert 1 + 1 == 2\n" and snippet.line == 2
    with pytest.raises(ValueError, match=r"a\.md:1: a code block is never closed"):
        extract("```python\nx = 1\n", "a.md")
