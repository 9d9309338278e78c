"""The package's wings (wechat/, web/, cli/) and the old module paths kept for one release."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from wafer_py._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module_with_a_warning(old: str) -> None:
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({MOVED[old]!r})\n"
        "assert old is new, (old, new)\n"
        "assert any(issubclass(w.category, DeprecationWarning) and "
        f"{MOVED[old]!r} in str(w.message) for w in seen), [str(w.message) for w in seen]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_wings_keep_the_names_users_import() -> None:
    wechat = importlib.import_module("wafer_py.wechat")
    client = importlib.import_module("wafer_py.wechat.client")
    assert wechat.WeChatClient is client.WeChatClient
    assert wechat.Code2Session is client.Code2Session
    cli = importlib.import_module("wafer_py.cli")
    assert cli.main is importlib.import_module("wafer_py.cli.main").main
    for name in ("flask", "starlette", "asgi", "wsgi"):
        assert importlib.import_module(f"wafer_py.{name}")


def test_the_wechat_package_imports_requests_only_with_the_client() -> None:
    code = (
        "import sys, wafer_py, wafer_py.wechat, wafer_py.wechat.tokens\n"
        "assert 'requests' not in sys.modules, 'requests imported with the package'\n"
        "wafer_py.wechat.WeChatClient\n"
        "assert 'requests' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
