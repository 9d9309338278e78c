"""``wafer-py demo`` and ``sandbox`` and their ports: ``--port 0`` prints the port bound;
the banner and recipe only once the servers listen; a port in use is one line naming the
flag and exit 2 (once: the recipe for a port someone else holds, or a traceback)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cli import running


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    return subprocess.run(
        [sys.executable, "-m", "wafer_py", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["demo", "--port", "{port}"], "--port"),
        (["demo", "--port", "0", "--fake-port", "{port}"], "--fake-port"),
        (["demo", "--framework", "flask", "--port", "{port}"], "--port"),
        (["sandbox", "--port", "{port}"], "--port"),
    ],
)
def test_a_port_in_use_is_one_line_and_exit_2(
    args: list[str], flag: str, taken: int, tmp_path: Path
) -> None:
    done = run(*(a.format(port=taken) for a in args), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # no banner, no recipe aimed at someone else's server
    lines = [line for line in done.stderr.splitlines() if not line.startswith("WARNING")]
    assert lines == [
        f"wafer-py {args[0]}: port {taken} on 127.0.0.1 is in use ({flag}): stop what holds "
        f"it, or choose another port ({flag} 0 takes any free one)"
    ]


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_port_0_prints_the_port_bound(framework: str, tmp_path: Path) -> None:
    env = {k: "" for k in os.environ if k.startswith("WAFER_")}
    with running(
        ["demo", "--framework", framework, "--port", "0"], tmp_path, until="Ctrl-C", env=env
    ) as lines:
        heading = next(line for line in lines if line.startswith("wafer_py demo"))
        found = re.search(r"on http://127\.0\.0\.1:(\d+)$", heading)
        assert found and found.group(1) != "0", heading
        port = int(found.group(1))
        recipe = "\n".join(lines)
        assert f"http://127.0.0.1:{port}/weapp/login" in recipe
        assert ":0/" not in recipe
        # Printed after the socket listens: the first request needs no wait.
        answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert answer.status_code == 200


def test_sandbox_port_0_prints_the_port_bound(tmp_path: Path) -> None:
    with running(["sandbox", "--port", "0"], tmp_path, until="Ctrl-C") as lines:
        found = re.search(r"fake WeChat on http://127\.0\.0\.1:(\d+)$", lines[0])
        assert found and found.group(1) != "0"
        answer = requests.get(f"http://127.0.0.1:{found.group(1)}/_fake/", timeout=10)
        assert answer.status_code == 200


def test_a_host_not_of_this_machine_is_one_line(tmp_path: Path) -> None:
    done = run("demo", "--host", "192.0.2.1", "--port", "0", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot listen on 192.0.2.1: not an address of this machine (--host)" in done.stderr
