"""Old import paths of modules that moved into wings (``wafer_py.tokens`` is now
``wafer_py.wechat.tokens``): importing one still works for this release, with a
:class:`DeprecationWarning` naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "install"]

#: Old module -> new module.
MOVED = {
    "wafer_py.asynchttp": "wafer_py.wechat.asynchttp",
    "wafer_py.wechat_async": "wafer_py.wechat.aio",
    "wafer_py.tokens": "wafer_py.wechat.tokens",
    "wafer_py.wechat_api": "wafer_py.wechat.api",
    "wafer_py.phone": "wafer_py.wechat.phone",
    "wafer_py.oauth": "wafer_py.web.oauth",
    "wafer_py.oauthstate": "wafer_py.web.state",
    "wafer_py.weblogin": "wafer_py.web.login",
    "wafer_py.migrate": "wafer_py.cli.legacy",
    "wafer_py.cli_sessions": "wafer_py.cli.sessions",
    "wafer_py.cli_token": "wafer_py.cli.token",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and hands out the new module itself (one module object)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the new module has run already; the old name now points at it


def install() -> None:
    """Put the alias finder first on ``sys.meta_path``, once (the old files are gone, so
    no other finder should answer for those names)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
