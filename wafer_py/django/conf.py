"""The Django settings of wafer_py: ``WAFER_*``, the same names as the environment variables.

Each setting is read from ``django.conf.settings`` first and from the environment when the
project does not set it (a 12-factor project keeps its secrets in the environment). A
setting that is missing or wrong stops the project at start with ``ImproperlyConfigured``
naming it, never a silent fallback.

Two settings exist only here: ``WAFER_PROTECT`` (path prefixes that need a session, or a
predicate; a comma-separated list in the environment) and ``WAFER_AUTH`` (a ready
:class:`~wafer_py.auth.WaferAuth`, or the dotted path of a callable returning one; it wins
over the others, like ``Wafer(app, auth)`` in Flask).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..auth import WaferAuth
from ..config import WaferConfig, config_sources
from ..protocol import PathMatcher, path_matcher

__all__ = ["wafer_settings", "wafer_config", "wafer_auth", "wafer_protect"]

#: Settings that are not WaferConfig variables (not passed to ``WaferConfig.from_env``).
_ADAPTER_SETTINGS = frozenset({"WAFER_AUTH", "WAFER_PROTECT"})


def wafer_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``WAFER_*`` values as text: ``settings``', then the environment's for the
    names the settings leave out (:func:`~wafer_py.config.config_sources`)."""
    ours = {
        name: getattr(settings, name)
        for name in dir(settings)
        if name.startswith("WAFER_") and name not in _ADAPTER_SETTINGS
    }
    found = config_sources(ours, environ, framework_name="settings")
    return {k: v for k, (v, _) in found.items() if k not in _ADAPTER_SETTINGS}


def wafer_config(environ: Mapping[str, str] | None = None) -> WaferConfig:
    """A :class:`~wafer_py.config.WaferConfig` from the settings (the environment as a
    fallback); ``ImproperlyConfigured`` naming the setting when one is missing or wrong."""
    try:
        return WaferConfig.from_env(wafer_settings(environ))
    except ValueError as exc:
        raise ImproperlyConfigured(f"wafer_py: {exc}") from None


def wafer_auth() -> WaferAuth:
    """The project's :class:`~wafer_py.auth.WaferAuth`: ``WAFER_AUTH``, or one built
    from :func:`wafer_config`."""
    given: Any = getattr(settings, "WAFER_AUTH", None)
    if given is None:
        return WaferAuth(wafer_config())
    if isinstance(given, str):
        try:
            given = import_string(given)()
        except ImportError as exc:
            raise ImproperlyConfigured(f"WAFER_AUTH: cannot import {given!r}: {exc}") from None
    if not isinstance(given, WaferAuth):
        raise ImproperlyConfigured(
            "WAFER_AUTH must be a WaferAuth, or the dotted path of a callable returning one"
        )
    return given


def wafer_protect() -> PathMatcher:
    """``WAFER_PROTECT`` (path prefixes, or a predicate on the path) as a matcher."""
    value: Any = getattr(settings, "WAFER_PROTECT", None)
    if value is None:
        value = os.environ.get("WAFER_PROTECT") or None
    if isinstance(value, str):
        value = [prefix.strip() for prefix in value.split(",") if prefix.strip()]
    if value is not None and not callable(value):
        if not isinstance(value, Iterable) or not all(isinstance(p, str) for p in value):
            raise ImproperlyConfigured(
                "WAFER_PROTECT must be a list of path prefixes or a callable"
            )
        bad = [p for p in value if not p.startswith("/")]
        if bad:
            raise ImproperlyConfigured(f"WAFER_PROTECT: {bad[0]!r} must start with '/'")
    return path_matcher(value)
