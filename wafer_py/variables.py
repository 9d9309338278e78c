"""The ``WAFER_*`` variables: which exist, which config field each sets, and the one
order in which every adapter reads them (the framework's configuration, then the
environment). :mod:`wafer_py.config` re-exports these names."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["KNOWN_VARIABLES", "CONFIG_VARIABLES", "config_sources", "unknown_variables"]

#: Every ``WAFER_*`` variable wafer_py reads (the Django adapter's settings included).
KNOWN_VARIABLES = frozenset(
    {
        "WAFER_APPID",
        "WAFER_APP_SECRET",
        "WAFER_WECHAT_API_BASE",
        "WAFER_WECHAT_OPEN_BASE",
        "WAFER_STORE_URL",
        "WAFER_SESSION_TTL",
        "WAFER_SESSION_MAX_AGE",
        "WAFER_SUPERSEDED_TTL",
        "WAFER_SESSION_CACHE",
        "WAFER_SECRET_KEY",
        "WAFER_LOGIN_PATH",
        "WAFER_MAX_CONCURRENT_LOGINS",
        "WAFER_MAX_QUEUED_LOGINS",
        "WAFER_LOGIN_TIMEOUT",
        "WAFER_OAUTH_APPID",
        "WAFER_OAUTH_APP_SECRET",
        "WAFER_CHECK_NICKNAMES",
        "WAFER_PROTECT",
        "WAFER_AUTH",
        "WAFER_WEB",
        "WAFER_METRICS",
    }
)
#: The :class:`WaferConfig` field each configuration variable sets (the others in
#: :data:`KNOWN_VARIABLES` are the adapters' own: ``WAFER_PROTECT``, ``WAFER_AUTH``...).
CONFIG_VARIABLES = {
    "WAFER_APPID": "appid",
    "WAFER_APP_SECRET": "app_secret",
    "WAFER_WECHAT_API_BASE": "api_base",
    "WAFER_WECHAT_OPEN_BASE": "open_base",
    "WAFER_STORE_URL": "store_url",
    "WAFER_SECRET_KEY": "secret_keys",
    "WAFER_SESSION_TTL": "session_ttl",
    "WAFER_SESSION_MAX_AGE": "session_max_age",
    "WAFER_LOGIN_PATH": "login_path",
    "WAFER_MAX_CONCURRENT_LOGINS": "max_concurrent_logins",
    "WAFER_MAX_QUEUED_LOGINS": "max_queued_logins",
    "WAFER_LOGIN_TIMEOUT": "login_timeout",
    "WAFER_OAUTH_APPID": "oauth_appid",
    "WAFER_OAUTH_APP_SECRET": "oauth_app_secret",
    "WAFER_CHECK_NICKNAMES": "check_nicknames",
    "WAFER_SUPERSEDED_TTL": "superseded_ttl",
    "WAFER_SESSION_CACHE": "session_cache",
    "WAFER_METRICS": "metrics",
}
#: Prefixes of the variables of wafer_py's own tests, end-to-end runs and benchmarks.
_TOOL_PREFIXES = ("WAFER_TEST_", "WAFER_E2E_", "WAFER_BENCH_")


def config_sources(
    framework: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    framework_name: str = "config",
) -> dict[str, tuple[str, str]]:
    """The ``WAFER_*`` values in force, as text, each with where it came from.

    The one order every adapter reads: the framework's own configuration first
    (``framework``: Flask's ``app.config``, Django's settings, labelled
    ``framework_name``), then the environment (``"env"``) for the names it leaves out.
    A framework value of ``None`` or ``""`` counts as left out; a list or tuple (several
    secret keys, newest first) is joined by commas. Give the first items of the pairs
    to :meth:`WaferConfig.from_env`.
    """
    env = os.environ if environ is None else environ
    found = {k: (v, "env") for k, v in env.items() if k.startswith("WAFER_") and v != ""}
    for name, value in (framework or {}).items():
        if not name.startswith("WAFER_") or value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        found[name] = (str(value), framework_name)
    return found


def unknown_variables(env: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The ``WAFER_*`` names in ``env`` that wafer_py does not read, each with the known
    name closest to it (``WAFER_STORE`` -> ``WAFER_STORE_URL``), or ``None``: a mistyped
    variable would otherwise be ignored without a word."""
    found = []
    for name in sorted(env):
        if name.startswith("WAFER_") and name not in KNOWN_VARIABLES:
            if name.startswith(_TOOL_PREFIXES):
                continue
            close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1, cutoff=0.6)
            found.append((name, close[0] if close else None))
    return found
