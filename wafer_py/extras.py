"""How to install an extra, in words true today: from a checkout, and once published.

The error hints of optional features (a SQL or Redis store, the demo's servers, avatar
uploads) name the extra through :func:`install_hint`, so they never repeat a command
that fails where the distribution is not on the package index.
"""

from __future__ import annotations

__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """``pip install -e '.[sql]'`` in a checkout, ``pip install 'wafer-session[sql]'``
    once published: one phrase for an error message."""
    return (
        f"install the {extra} extra: pip install -e '.[{extra}]' in a checkout of wafer_py "
        f"(pip install 'wafer-session[{extra}]' once it is published)"
    )
