"""Metrics where they are deployed (issue #16, item 4): every snippet of docs/metrics.md
runs as written and serves ``/metrics``; gunicorn workers add up through
``PROMETHEUS_MULTIPROC_DIR``, serving the docs' plain WSGI app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.ci import skip_or_fail
from tests.support.constants import DEMO_ENV, TEST_SECRET
from tests.support.metrics import key, scrape
from tests.support.probe import exit_status, wait_for_http
from tests.support.servers import serve_asgi, serve_wsgi
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer

ROOT = Path(__file__).resolve().parent.parent


def _doc_snippets() -> list[str]:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.parametrize("index", range(len(_doc_snippets())))
def test_the_docs_snippets_run_and_serve_metrics(
    index: int, monkeypatch: pytest.MonkeyPatch, fake_server: FakeWeChatServer
) -> None:
    """Each snippet of docs/metrics.md runs as written (with the environment it names);
    one that makes an ``app`` answers ``/metrics`` with wafer_py's metrics."""
    for name, value in {
        **DEMO_ENV,
        "WAFER_WECHAT_API_BASE": fake_server.url,
        "WAFER_STORE_URL": "memory://",
        "WAFER_SECRET_KEY": TEST_SECRET,
        "WAFER_METRICS": "prometheus",
    }.items():
        monkeypatch.setenv(name, value)
    snippet = _doc_snippets()[index]
    namespace: dict[str, Any] = {"__name__": f"metrics_doc_{index}"}
    exec(compile(snippet, f"docs/metrics.md#{index}", "exec"), namespace)
    app = namespace.get("app")
    if app is None:
        return
    serving = serve_wsgi if "wsgi_app" in snippet else serve_asgi
    with serving(app) as base:
        text, _ = scrape(f"{base}/metrics")
    assert "wafer_logins_total" in text and "wafer_login_queue_length" in text


def test_gunicorn_workers_add_up_through_the_multiprocess_directory(
    tmp_path: Path, fake: FakeWeChat, fake_server: FakeWeChatServer
) -> None:
    """Two workers, each counting its own logins in ``PROMETHEUS_MULTIPROC_DIR``: any
    worker's ``/metrics`` shows them all."""
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        skip_or_fail("gunicorn is not installed (pip install -e '.[dev]')")
    from tests.support.app_process import free_port

    (tmp_path / "prom").mkdir()
    wsgi = next(s for s in _doc_snippets() if "WaferWSGIMiddleware" in s)  # the docs' own
    (tmp_path / "metrics_app.py").write_text(wsgi, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        **DEMO_ENV,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "WAFER_WECHAT_API_BASE": fake_server.url,
        "WAFER_STORE_URL": f"sqlite:///{tmp_path}/workers.db",
        "WAFER_SECRET_KEY": TEST_SECRET,
        "WAFER_METRICS": "prometheus",
    }
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}"]
    with open(tmp_path / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen([*command, "metrics_app:app"], cwd=tmp_path, env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/metrics", exited=lambda: exit_status(proc))
        logins = 8
        for i in range(logins):
            code = fake.login(DEMO_APPID, f"worker-{i}")["code"]
            with requests.Session() as fresh:  # a new connection: any worker may take it
                answer = fresh.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
            assert answer.status_code == 200, answer.text
        ok = key("wafer_logins_total", outcome="ok", reason="none")
        for _ in range(4):  # whichever worker answers the scrape
            _, samples = scrape(f"{base}/metrics")
            assert samples[ok] == logins
    finally:
        proc.terminate()
        proc.wait(15)
    assert len(list((tmp_path / "prom").glob("counter_*.db"))) >= 1
