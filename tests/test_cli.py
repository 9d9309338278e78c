"""The ``wafer-py`` command, run as a user runs it: a real process, real HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.cli import running
from tests.support.probe import wait_for_http


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("framework", ["starlette", "flask", "django"])
def test_demo_prints_a_recipe_that_works(framework: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: "" for k in os.environ if k.startswith("WAFER_")}
    with running(
        ["demo", "--framework", framework, "--port", str(port)], tmp_path, until="Ctrl-C", env=env
    ) as lines:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=20)
        start = next(i for i, line in enumerate(lines) if "Try it without a phone" in line)
        recipe = [line.strip() for line in lines[start + 1 :] if line.startswith("    ")]
        assert len(recipe) == 3
        out = subprocess.run(
            ["bash", "-c", "\n".join(recipe)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        body = json.loads(out)
        assert body["code"] == 0
        assert body["data"]["userInfo"]["nickName"] == "微信用户"
        assert any("sqlite:///wafer_sessions.db" in line for line in lines)
    assert (tmp_path / "wafer_sessions.db").exists()


def test_sandbox_runs_the_fake_alone(tmp_path: Path) -> None:
    port = _free_port()
    with running(["sandbox", "--port", str(port)], tmp_path, until="Ctrl-C") as lines:
        assert any(f"http://127.0.0.1:{port}" in line for line in lines)
        wait_for_http(f"http://127.0.0.1:{port}/_fake/", timeout=20)
        code = requests.post(
            f"http://127.0.0.1:{port}/_fake/login", json={"user": "z"}, timeout=5
        ).json()["code"]
        assert re.fullmatch(r"[A-Za-z0-9]+", code)


def test_bad_configuration_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wafer_py", "demo", "--port", str(_free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "WAFER_SESSION_TTL": "soon"},
    )
    assert result.returncode == 2
    assert "WAFER_SESSION_TTL must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr
