"""The built wheel, installed as a user installs it: not editable, in fresh virtualenvs.

Catches what an editable install hides: a module or package file the wheel leaves out
(the demo once imported a top-level ``examples`` package no wheel shipped), an extra that
misses a dependency, a console script that does not start. Takes about a minute: the sdist
and wheel are built (the wheel from the sdist, as ``python -m build`` does) and installed
twice, once with the extras that matter and once plain. The installed ``wafer-py check``
then opens a Redis, a PostgreSQL and a MariaDB store with the extras' drivers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import services
from tests.support.ci import skip_or_fail
from tests.support.constants import DEMO_ENV, TEST_SECRET
from wafer_py.fakewechat import FakeWeChatServer
from wafer_py.stores import open_store

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "demo,redis,sql"


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def _clean_env() -> dict[str, str]:
    """The environment without ``WAFER_*`` and ``PYTHONPATH`` (which would put the
    checkout's wafer_py ahead of the installed one)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WAFER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from the checkout."""
    try:
        import build  # noqa: F401
    except ImportError:
        skip_or_fail("the build package is not installed (the dev extra has it)")
    out = tmp_path_factory.mktemp("dist")
    done = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(list(out.glob("*.tar.gz"))) == 1
    return next(out.glob("*.whl"))


def _venv(where: Path, wheel: Path, extras: str) -> Path:
    """A fresh virtualenv with ``wheel[extras]`` installed; its ``bin`` directory."""
    done = _run([sys.executable, "-m", "venv", str(where)], timeout=120)
    assert done.returncode == 0, done.stderr
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    done = _run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", target],
        timeout=600,
        env=_clean_env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return where / "bin"


@pytest.fixture(scope="module")
def full(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("venv-full"), dist, EXTRAS)


@pytest.fixture(scope="module")
def plain(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("venv-plain"), dist, "")


def test_the_wheel_ships_every_package_of_the_checkout(dist: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(dist).namelist())
    for init in [*ROOT.glob("wafer_py/**/__init__.py"), *ROOT.glob("examples/**/__init__.py")]:
        relative = init.relative_to(ROOT).as_posix()
        shipped = relative if relative.startswith("wafer_py/") else f"wafer_py/{relative}"
        assert shipped in names, f"{relative} is not in the wheel"
    assert "wafer_py/py.typed" in names


def test_the_installed_command_is_the_installed_package(full: Path) -> None:
    version = _run([str(full / "wafer-py"), "--version"], timeout=60, env=_clean_env())
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"wafer-py \d+\.\d+\.\d+\S*\n", version.stdout)
    where = _run(
        [str(full / "python"), "-c", "import wafer_py; print(wafer_py.__file__)"],
        timeout=60,
        env=_clean_env(),
        cwd="/",
    )
    assert where.stdout.startswith(str(full.parent)), where.stdout


@contextmanager
def _demo(bin_dir: Path, framework: str, cwd: Path) -> Iterator[list[str]]:
    proc = subprocess.Popen(
        [str(bin_dir / "wafer-py"), "demo", "--framework", framework, "--port", "0"],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A project's settings in the shell are not the example's (the demo once took them).
        env={**_clean_env(), "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "yours.settings"},
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops it" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), "the demo printed no recipe in time"
        assert proc.poll() is None, "\n".join(lines)
        yield lines
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.parametrize("framework", ["starlette", "flask", "django"])
def test_the_installed_demo_runs_the_recipe_it_prints(
    full: Path, framework: str, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        skip_or_fail("curl is not installed (the demo's recipe uses it)")
    with _demo(full, framework, tmp_path) as lines:
        heading = next(line for line in lines if line.startswith("wafer_py demo"))
        banner = re.search(r"on http://127\.0\.0\.1:(\d+)$", heading)
        assert banner and int(banner.group(1)) > 0, heading
        start = next(i for i, line in enumerate(lines) if "Try it without a phone" in line)
        recipe = [line.strip() for line in lines[start + 1 :] if line.startswith("    ")]
        assert len(recipe) == 3 and f":{banner.group(1)}/weapp/user" in recipe[-1]
        done = _run(["bash", "-euo", "pipefail", "-c", "\n".join(recipe)], timeout=60)
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["code"] == 0, body
        assert body["data"]["userInfo"]["openId"]


def test_without_the_demo_extra_the_demo_names_the_extra(plain: Path, tmp_path: Path) -> None:
    version = _run([str(plain / "wafer-py"), "--version"], timeout=60, env=_clean_env())
    assert version.returncode == 0, version.stderr
    done = _run(
        [str(plain / "wafer-py"), "demo", "--port", "0"],
        timeout=60,
        env=_clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "pip install -e '.[demo]'" in done.stderr, done.stderr


@pytest.mark.parametrize("kind", ["redis", "postgres", "mysql"])
def test_the_installed_extras_reach_each_store(
    full: Path, kind: str, fake_server: FakeWeChatServer
) -> None:
    """``wafer-py check`` from the installed command: the redis and sql extras' drivers
    open a real store, and WeChat (the fake) hands out a token."""
    with services.fresh_store_url(kind) as url:
        open_store(url).close()  # as a server makes it
        env = {
            **_clean_env(),
            **DEMO_ENV,
            "WAFER_STORE_URL": url,
            "WAFER_SECRET_KEY": TEST_SECRET,
            "WAFER_WECHAT_API_BASE": fake_server.url,
        }
        done = _run([str(full / "wafer-py"), "check", "--json"], timeout=120, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["store"]["ok"] and report["wechat"]["ok"]
