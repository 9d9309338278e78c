"""The SQLite store's files on disk, its owner's alone: the database and its key file.

The database, SQLite's WAL and shared-memory files beside it, and the key file (the
secret a machine's processes share when ``WAFER_SECRET_KEY`` is not set) hold the
access_token, web sessions and sealed session keys: they are made 0600, and an existing
one open to others is tightened, with a warning naming it.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

from ..exceptions import StoreUnavailable

__all__ = ["PRIVATE_MODE", "SIDE_FILES", "make_private", "private_database", "key_file_secret"]

logger = logging.getLogger("wafer_py")

#: Owner read and write only: the files hold the access_token, web sessions and sealed
#: session keys.
PRIVATE_MODE = 0o600
#: What SQLite keeps beside the database file in WAL mode.
SIDE_FILES = ("-wal", "-shm")


def make_private(path: Path) -> None:
    """Tighten an existing file readable or writable by others to 0600, with a warning
    naming it (a file made by an older version, or copied in with a loose umask)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, PRIVATE_MODE)
    except OSError as exc:
        logger.warning(
            "wafer_py: %s is accessible to other users (mode %s) and could not be made private: %s",
            path,
            oct(mode),
            exc,
        )
        return
    logger.warning(
        "wafer_py: %s was accessible to other users (mode %s); now 0600", path, oct(mode)
    )


def private_database(file: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite then gives its WAL
    and shared-memory files the database's mode), and tighten existing ones."""
    for side in ("", *SIDE_FILES):
        make_private(Path(str(file) + side))
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def key_file_secret(key_path: Path) -> str:
    """The secret in ``key_path`` (mode 0600), made once by whichever process comes first.

    A process that finds the file still empty waits for its maker to write it;
    :class:`~wafer_py.exceptions.StoreUnavailable` if it stays unreadable.
    """
    make_private(key_path)
    for _ in range(100):
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            text = key_path.read_text().strip()
            if text:
                return text
            time.sleep(0.01)  # another process is writing it right now
            continue
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        return key_path.read_text().strip()
    logger.error("wafer_py: cannot read the key file %s", key_path)
    raise StoreUnavailable()
