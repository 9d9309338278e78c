"""The servers the tests start themselves from Debian's packages (Redis, Sentinel,
twemproxy, PgBouncer, PostgreSQL, MariaDB): where their programs are, and the
``with`` statement they all share."""

from __future__ import annotations

import os
import shutil
from types import TracebackType
from typing import Self

__all__ = ["find_executable", "LocalServer"]


def find_executable(name: str, *, env: str | None = None) -> str | None:
    """The program ``name``: ``$env`` when that is set (``None`` if it cannot be run),
    else Debian's ``/usr/sbin`` or ``/usr/bin``, else ``PATH``; ``None`` if none."""
    if env is not None:
        configured = os.environ.get(env)
        if configured:
            return configured if os.access(configured, os.X_OK) else None
    for folder in ("/usr/sbin", "/usr/bin"):
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


class LocalServer:
    """``with`` starts the server and closes it on leaving, and closes what a start that
    failed half-way left running. ``close`` is ``stop`` unless a server also has files
    to delete."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
