"""The SQL store's URL options: which query keys the store reads itself, and how the
rest are checked before they go to a driver.

A store URL's query mixes two kinds of keys: the store's own (:data:`STORE_OPTIONS`:
``table_prefix``, ``max_connections``, ``pool_timeout``), taken out by
:func:`store_options`, and the driver's, which each server's dialect reads from what is
left (``sslmode``, ``prepare_threshold``, ``ssl_ca``, ...). A key neither knows stops
the store at start (:func:`refuse_unknown`): a mistyped option silently ignored would
leave TLS off, or prepared statements on behind PgBouncer. Errors name keys, never
values, except for the values this module parses (a password may be among the others).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import SplitResult

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TABLE_PREFIX",
    "STORE_OPTIONS",
    "StoreOptions",
    "only_options",
    "parse_bool",
    "refuse_unknown",
    "store_options",
    "take",
]

#: URL options the store itself reads (the others go to the driver).
STORE_OPTIONS = ("table_prefix", "max_connections", "pool_timeout")
DEFAULT_TABLE_PREFIX = "wafer_"
DEFAULT_MAX_CONNECTIONS = 10
DEFAULT_POOL_TIMEOUT = 5.0
#: Lower case, so that PostgreSQL's folding of unquoted names changes nothing; short, so
#: that prefixed index names stay within PostgreSQL's 63 characters.
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

T = TypeVar("T")


@dataclass(frozen=True)
class StoreOptions:
    """The store's own options, checked."""

    table_prefix: str
    max_connections: int
    pool_timeout: float


def take(
    options: dict[str, str], name: str, given: T | None, parse: Callable[[str], T]
) -> T | None:
    """An option given as an argument or in the URL (taken out of ``options``); None
    when neither gives it. Given both ways, the two must agree."""
    in_url = options.pop(name, None)
    if in_url is None:
        return given
    try:
        value = parse(in_url)
    except ValueError:
        raise ValueError(f"{name}={in_url!r} in the store URL is not a valid value") from None
    if given is not None and given != value:
        raise ValueError(f"{name} is given twice, differently")
    return value


def store_options(
    options: dict[str, str],
    *,
    table_prefix: str | None = None,
    max_connections: int | None = None,
    pool_timeout: float | None = None,
) -> StoreOptions:
    """Take the store's options out of a URL's query (``options``: what is left is the
    driver's), merged with those given as arguments, defaulted and checked."""
    prefix = take(options, "table_prefix", table_prefix, str) or DEFAULT_TABLE_PREFIX
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"table_prefix {prefix!r}: lower-case letters, digits and _, at most 40")
    size = take(options, "max_connections", max_connections, int)
    size = DEFAULT_MAX_CONNECTIONS if size is None else size
    if size < 1:
        raise ValueError(f"max_connections must be at least 1, not {size}")
    wait = take(options, "pool_timeout", pool_timeout, float)
    wait = DEFAULT_POOL_TIMEOUT if wait is None else wait
    if not 0 <= wait < threading.TIMEOUT_MAX:
        raise ValueError(f"pool_timeout must be a number of seconds >= 0, not {wait}")
    return StoreOptions(prefix, size, wait)


def refuse_unknown(
    options: Mapping[str, Any], server: str, known: Mapping[str, Iterable[str]]
) -> None:
    """Raise ``ValueError`` when ``options`` has a key none of ``known``'s groups
    (``{"psycopg": [...], "libpq": [...]}``) has, naming it, the closest known key, and
    every known key by group (the store's own first). Values are never shown."""
    groups = {"the store's": list(STORE_OPTIONS), **{k: sorted(v) for k, v in known.items()}}
    every = [key for keys in groups.values() for key in keys]
    unknown = sorted(set(options) - set(every))
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, every, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    listed = "; ".join(f"{group}: {', '.join(keys)}" for group, keys in groups.items() if keys)
    raise ValueError(
        f"unknown {server} store URL option(s) {', '.join(hints)}; known options: {listed}"
    )


def parse_bool(name: str, value: str) -> bool:
    """A yes/no option's value (``true``/``false``, ``1``/``0``, ``yes``/``no``,
    ``on``/``off``), or ``ValueError`` naming the option."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} in the store URL: use true or false")


def only_options(
    parts: SplitResult,
    driver_options: Mapping[str, str],
    connect: object,
    async_connect: object,
    async_supported: object,
) -> None:
    """With ``connect=`` (bring your own connections) the URL names the server and the
    store's options only: where to connect and how are the function's to say, once."""
    if connect is None:
        raise ValueError("async_connect= is given without connect=: give both")
    if async_connect is not None and async_supported is None:
        raise ValueError(f"async_connect= is not supported for {parts.scheme}:// stores")
    if parts.netloc or driver_options:
        said = "a host" if parts.netloc else "driver option(s) " + ", ".join(sorted(driver_options))
        raise ValueError(
            f"connect= makes the connections, but the store URL also gives {said}: give "
            f"only the scheme and the store's options ({parts.scheme}://?table_prefix=app_)"
        )
