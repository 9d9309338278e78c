"""Metrics where they are deployed (issue #16, item 4): gunicorn workers add up through
``PROMETHEUS_MULTIPROC_DIR`` (docs/metrics.md's snippets run in tests/test_doc_snippets.py,
each asserting that ``/metrics`` answers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.ci import skip_or_fail
from tests.support.constants import DEMO_ENV, TEST_SECRET
from tests.support.metrics import key, scrape
from tests.support.probe import exit_status, wait_for_http
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer

ROOT = Path(__file__).resolve().parent.parent


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
    (tmp_path / "metrics_app.py").write_text(MULTIPROCESS_APP, encoding="utf-8")
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


#: The docs' plain WSGI app, configured by the environment.
MULTIPROCESS_APP = """
from wafer_py import WaferAuth, WaferConfig
from wafer_py.metrics import wsgi_app
from wafer_py.wsgi import WaferWSGIMiddleware


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


wafer = WaferWSGIMiddleware(hello, WaferAuth(WaferConfig.from_env()))
metrics = wsgi_app()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":
        return metrics(environ, start_response)
    return wafer(environ, start_response)
"""
