"""Mistyped WAFER_* variables are named, with the closest known one; ``wafer-py --version``."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import wafer_py
from tests.support.constants import DEMO_ENV
from wafer_py import WaferConfig
from wafer_py.config import KNOWN_VARIABLES, unknown_variables


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("WAFER_STORE", "WAFER_STORE_URL"),  # quietly used a SQLite file before
        ("WAFER_API_BASE", "WAFER_WECHAT_API_BASE"),  # sent logins to the real WeChat
        ("WAFER_SECRET_KEYS", "WAFER_SECRET_KEY"),
        ("WAFER_APP_SECERT", "WAFER_APP_SECRET"),
    ],
)
def test_a_mistyped_variable_is_named_with_the_closest_known_one(
    typo: str, meant: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wafer_py")
    WaferConfig.from_env({**DEMO_ENV, typo: "value"})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert typo in warnings[0] and f"did you mean {meant}?" in warnings[0]
    assert "value" not in warnings[0]  # the value may be a secret: never shown


def test_known_and_tool_variables_are_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wafer_py")
    env = {name: "1" for name in KNOWN_VARIABLES}
    env.update(WAFER_TEST_REDIS_URL="redis://x", WAFER_E2E_USER="u", WAFER_BENCH_COMMIT="c")
    assert unknown_variables(env) == []
    WaferConfig.from_env({**DEMO_ENV, "WAFER_TEST_REDIS_URL": "redis://x", "HOME": "/root"})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_name_like_none_is_named_without_a_guess() -> None:
    assert unknown_variables({"WAFER_ZZZZZZZZZZ": "1"}) == [("WAFER_ZZZZZZZZZZ", None)]


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wafer_py", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wafer-py {wafer_py.__version__}"
