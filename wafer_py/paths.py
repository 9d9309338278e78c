"""Which request paths a middleware protects, whatever spelling reaches the view.

A router or proxy in front of a view may decode, merge or resolve a path once more than
the middleware saw it, so a path matches when any of its forms does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote

__all__ = ["PathMatcher", "path_forms", "path_matcher"]

PathMatcher = Callable[[str], bool]


_SLASHES = re.compile(r"/{2,}")


def _merge_slashes(path: str) -> str:
    return _SLASHES.sub("/", path)


def _remove_dot_segments(path: str) -> str:
    """``.`` and ``..`` segments resolved as RFC 3986 does (``/a/./b/../c`` -> ``/a/c``)."""
    out: list[str] = []
    head, *segments = path.split("/")
    for i, segment in enumerate(segments, 1):
        last = i == len(segments)
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
            continue
        if last:
            out.append("")  # "/a/b/.." is the directory "/a/"
    return head + "/" + "/".join(out) if segments else head


def _plain(path: str) -> bool:
    """Whether nothing in ``path`` can be rewritten (the usual case, tested first)."""
    return "//" not in path and "/." not in path and "%" not in path


def path_forms(path: str) -> tuple[str, ...]:
    """The path as sent, and as each layer in front of a view may have rewritten it.

    A router or proxy may decode percent-escapes (``%2F``) once more, merge repeated
    slashes (Werkzeug's router does) and resolve ``.``/``..`` segments, in that order, or
    any of these alone: this is every such form. A plain path (no ``//``, ``/.`` or
    ``%``) is its only form, at the cost of three substring tests.
    """
    if _plain(path):
        return (path,)
    forms = [path]
    if "%" in path:
        forms.append(unquote(path, errors="replace"))
    forms += [_merge_slashes(form) for form in forms]
    resolved = [_remove_dot_segments(form) for form in forms]
    forms += resolved + [_merge_slashes(form) for form in resolved]
    return tuple(dict.fromkeys(forms))


def path_matcher(protect: Iterable[str] | PathMatcher | None) -> PathMatcher:
    """A predicate from path prefixes (``"/api/"``) or a callable; ``None`` matches none.

    A path matches when any of its :func:`path_forms` does: ``//api/x``, ``/%2Fapi/x`` or
    ``/x/../api/x`` reach the view of ``/api/x`` behind some router or proxy, so they are
    protected like it. A callable is asked about each form.
    """
    if protect is None:
        return lambda path: False
    match: PathMatcher
    if callable(protect):
        match = protect
    else:
        prefixes = tuple(protect)

        def match(path: str) -> bool:
            return path.startswith(prefixes)

    def matcher(path: str) -> bool:
        if match(path):
            return True
        return not _plain(path) and any(match(form) for form in path_forms(path)[1:])

    return matcher
