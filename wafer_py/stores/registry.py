"""Which store class opens which URL scheme: the registry behind ``open_store``.

Each store class declares its schemes (:attr:`SessionStore.schemes`) and opens itself
from a URL (:meth:`SessionStore.from_url`). A third-party store joins with
:func:`register_store`; the bundled Redis and SQL stores are registered by name and
imported on first use, so ``import wafer_py`` never imports redis or a SQL driver.
"""

from __future__ import annotations

import importlib
import threading
from urllib.parse import urlsplit

from .base import SessionStore

__all__ = ["open_store", "register_store", "registered_schemes"]

#: Bundled stores whose module imports a driver: scheme -> (module, class). Their class
#: declares the same schemes (a test holds the two together).
_LAZY: dict[str, tuple[str, str]] = {
    **{
        s: ("redis", "RedisStore")
        for s in ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")
    },
    **{s: ("sql", "SQLStore") for s in ("postgresql", "postgres", "mysql", "mariadb")},
    "django": ("django", "DjangoStore"),
}
_REGISTRY: dict[str, type[SessionStore]] = {}
_LOCK = threading.Lock()


def register_store(cls: type[SessionStore]) -> type[SessionStore]:
    """Let :func:`open_store` open ``cls`` for each of its ``schemes``; returns ``cls``,
    so it also serves as a class decorator.

    ``schemes`` are matched case-insensitively, and a ``scheme+driver`` URL also finds
    the store of ``scheme``. A scheme another class holds raises ``ValueError`` (two
    packages claiming ``redis://`` is a misconfiguration, not a choice to make quietly).

    Example::

        @register_store
        class DynamoStore(SessionStore):
            schemes = ("dynamodb",)

            @classmethod
            def from_url(cls, url): ...
    """
    if not (isinstance(cls, type) and issubclass(cls, SessionStore)):
        raise TypeError(f"{cls!r} is not a SessionStore subclass")
    schemes = tuple(s.lower() for s in cls.schemes)
    if not schemes:
        raise ValueError(f"{cls.__name__}.schemes names no URL scheme to open it by")
    with _LOCK:
        for scheme in schemes:
            held = _REGISTRY.get(scheme)
            lazy = _LAZY.get(scheme)
            bundled = lazy is not None and (cls.__module__, cls.__name__) == (
                f"{__package__}.{lazy[0]}",
                lazy[1],
            )
            if (held is not None and held is not cls) or (lazy is not None and not bundled):
                owner = held.__name__ if held is not None else lazy[1] if lazy else "?"
                raise ValueError(f"the URL scheme {scheme!r} is already opened by {owner}")
        for scheme in schemes:
            _REGISTRY[scheme] = cls
    return cls


def registered_schemes() -> list[str]:
    """Every scheme :func:`open_store` opens, sorted."""
    with _LOCK:
        return sorted(set(_REGISTRY) | set(_LAZY))


def _store_class(scheme: str) -> type[SessionStore] | None:
    for name in (scheme, scheme.split("+", 1)[0]):
        with _LOCK:
            found = _REGISTRY.get(name)
        if found is not None:
            return found
        lazy = _LAZY.get(name)
        if lazy is not None:
            module = importlib.import_module(f"{__package__}.{lazy[0]}")
            cls: type[SessionStore] = getattr(module, lazy[1])
            return register_store(cls)
    return None


def open_store(url: str) -> SessionStore:
    """Open the store a URL names, by its scheme.

    ``memory://``; ``sqlite:///path/to.db`` (relative), ``sqlite:////abs/path.db``,
    ``sqlite:///:memory:``; ``redis://``, ``rediss://``, ``unix://`` and
    ``redis+sentinel://`` (the ``redis`` extra); ``postgresql://`` and ``mysql://`` (the
    ``sql`` extra); ``django://ALIAS`` (a Django project's database, the ``django``
    extra); and the schemes of any store given to :func:`register_store`. An unknown
    scheme raises ``ValueError``.
    """
    scheme = urlsplit(url).scheme.lower()
    cls = _store_class(scheme)
    if cls is None:
        raise ValueError(
            f"unknown session store URL scheme {scheme!r}; use one of: "
            + ", ".join(f"{s}://" for s in registered_schemes())
        )
    return cls.from_url(url)
