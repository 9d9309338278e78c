"""The example apps as real server processes, configured by ``WAFER_*`` variables only.

This is how a deployment runs them: ``uvicorn examples.starlette_app.app:create_app
--factory`` and ``gunicorn 'examples.flask_app.app:create_app()'`` (the Django example:
``uvicorn`` for "django", ``gunicorn examples.django_app.wsgi:application`` for
"django-wsgi"), each process with its own port, all sharing one store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.probe import NotReady, exit_status, wait_for_http
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID

ROOT = Path(__file__).resolve().parents[2]
SECRET = "shared-secret-of-the-test-deployment"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class AppProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _command(framework: str, port: int, threads: int = 8) -> list[str]:
    wsgi_apps = {
        "flask": "examples.flask_app.app:create_app()",
        "django-wsgi": "examples.django_app.wsgi:application",
    }
    if framework in wsgi_apps:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            wsgi_apps[framework],
        ]
    asgi_app = {"django": "examples.django_app.asgi"}.get(framework, "examples.starlette_app.app")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"{asgi_app}:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def _start(framework: str, env: Mapping[str, str], log_dir: Path, threads: int) -> AppProcess:
    port = free_port()
    log = log_dir / f"{framework}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            _command(framework, port, threads),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return AppProcess(f"http://127.0.0.1:{port}", process, log)


def _wait_ready(framework: str, app: AppProcess) -> None:
    try:
        wait_for_http(app.url + "/health", exited=lambda: exit_status(app.process))
    except NotReady as exc:
        tail = app.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{framework} app did not start: {exc}\n{tail}") from None


def _stop(app: AppProcess) -> None:
    app.process.terminate()
    try:
        app.process.wait(10)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait()


@contextmanager
def app_processes(
    frameworks: Sequence[str],
    *,
    store_url: str,
    api_base: str,
    log_dir: Path,
    threads: int = 8,
    **extra: str,
) -> Iterator[list[AppProcess]]:
    """Serve each example app of ``frameworks`` in its own process, all started before
    any is waited for (their start-ups overlap); yield them once each ``/health``
    answers. ``threads`` is gunicorn's (Flask); ``extra`` are more environment variables."""
    env: Mapping[str, str] = {
        **os.environ,
        "WAFER_STORE_URL": store_url,
        "WAFER_SECRET_KEY": SECRET,
        "WAFER_WECHAT_API_BASE": api_base,
        "WAFER_WECHAT_OPEN_BASE": api_base,
        "WAFER_APPID": DEMO_APPID,  # the fake's app: a config never assumes it from env
        "WAFER_APP_SECRET": DEMO_APP_SECRET,
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    apps: list[AppProcess] = []
    try:
        for framework in frameworks:
            apps.append(_start(framework, env, log_dir, threads))
        for framework, app in zip(frameworks, apps, strict=True):
            _wait_ready(framework, app)
        yield apps
    finally:
        for app in apps:
            _stop(app)


@contextmanager
def app_process(
    framework: str,
    *,
    store_url: str,
    api_base: str,
    log_dir: Path,
    threads: int = 8,
    **extra: str,
) -> Iterator[AppProcess]:
    """Serve one example app in its own process; yield it once ``/health`` answers.
    ``threads`` is gunicorn's (Flask); ``extra`` are more environment variables."""
    with app_processes(
        [framework],
        store_url=store_url,
        api_base=api_base,
        log_dir=log_dir,
        threads=threads,
        **extra,
    ) as (app,):
        yield app
