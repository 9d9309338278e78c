"""Import the users of an original Wafer server into a wafer_py store.

Both original servers kept one ``cSessionInfo`` table in MySQL: the v1 PHP session server
(``id`` primary key, ``user_info`` stored as base64 of the JSON text, and duplicate rows
of one ``open_id`` possible) and the v2 Node SDK (``open_id`` primary key, ``user_info``
the JSON text with its watermark). :class:`WaferTable` reads either, streaming the rows;
:func:`import_users` adds each ``open_id`` to a store with its WeChat profile::

    from wafer_py.cli.legacy import WaferTable, import_users
    from wafer_py.stores import open_store

    with WaferTable("mysql://root@127.0.0.1:3306/cAuth") as table, open_store(url) as store:
        report = import_users(table.rows(), store, now=time.time())

What it trusts: the table's ``open_id`` (a row without one is skipped). What it never
copies: the old ``skey`` (predictable ``md5``/``sha1`` values) and ``session_key`` (stored
in plaintext); clients simply log in again. Users already in the store are kept as they
are. Running it twice imports nothing new.

The table is read by :mod:`.legacytable` (:class:`WaferTable`, :class:`LegacyRow`,
:class:`MigrationError`); these names are importable from here too. The
``wafer-py migrate-wafer`` command (:mod:`wafer_py.cli.migrate`) runs it from the shell.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..models import clean_profile
from ..stores.base import SessionStore, call_store
from .legacytable import SQL_EXTRA as SQL_EXTRA
from .legacytable import LegacyRow, MigrationError, WaferTable

__all__ = [
    "LegacyRow",
    "MigrationError",
    "MigrationReport",
    "WaferTable",
    "decode_user_info",
    "import_users",
]

#: How a row's ``open_id`` looks: printable ASCII without spaces (WeChat's are 28 characters
#: of the URL-safe base64 alphabet; the check is looser so that no real one is refused).
_OPENID = re.compile(r"[\x21-\x7e]{1,128}")


def decode_user_info(value: str | bytes | None) -> dict[str, Any]:
    """The JSON object a ``user_info`` column holds: JSON text (v2) or base64 of it (v1).

    Told apart per row: JSON text starts with ``{``, base64 never does. Raises
    ``ValueError`` saying why when there is nothing to read.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("unreadable user_info") from None
    text = (value or "").strip()
    if not text.startswith("{"):
        if not text:
            raise ValueError("empty user_info")
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("unreadable user_info") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("unreadable user_info") from None
    if data is None or data == {} or data == []:
        raise ValueError("empty user_info")
    if not isinstance(data, dict):
        raise ValueError("unreadable user_info")
    return data


@dataclass
class MigrationReport:
    """What :func:`import_users` did (or, with ``dry_run``, would do).

    Every row read is counted once: as the row of a user ``imported`` or ``already_present``,
    as one of the ``duplicates`` (an older row of an ``open_id``), or as ``skipped`` (by
    reason). ``without_profile`` counts, by reason, the imported users whose ``user_info``
    gave no profile: they are imported with an empty one.
    """

    dry_run: bool = False
    schema: str = ""
    rows_read: int = 0
    imported: int = 0
    already_present: int = 0
    #: Users already present who had no unionid and got the one of the table.
    unionids_added: int = 0
    duplicates: int = 0
    without_profile: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``wafer-py migrate-wafer --json``)."""
        return {
            "dry_run": self.dry_run,
            "schema": self.schema,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "already_present": self.already_present,
            "unionids_added": self.unionids_added,
            "duplicate_rows": self.duplicates,
            "without_profile": sum(self.without_profile.values()),
            "without_profile_reasons": dict(self.without_profile),
            "skipped": sum(self.skipped.values()),
            "skipped_reasons": dict(self.skipped),
        }


def _check_open_id(open_id: str | bytes | None) -> tuple[str, str]:
    """``(openid, "")`` for a usable ``open_id``, else ``("", why it is skipped)``."""
    if isinstance(open_id, bytes):
        try:
            open_id = open_id.decode("utf-8")
        except UnicodeDecodeError:
            return "", "malformed open_id"
    if open_id is None or not open_id.strip():
        return "", "empty open_id"
    if not _OPENID.fullmatch(open_id):
        return "", "malformed open_id"
    return open_id, ""


def _newer(row: LegacyRow, than: LegacyRow) -> bool:
    # A row without a last visit is the oldest; on a tie the row seen first stays.
    return (row.last_visit or 0.0) > (than.last_visit or 0.0)


def import_users(
    rows: Iterable[LegacyRow],
    store: SessionStore,
    *,
    now: float,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Add the ``open_id`` of each row to ``store`` with the profile of its ``user_info``.

    The rows of one ``open_id`` must come one after another (:meth:`WaferTable.rows`
    orders them so); of several, the one with the latest ``last_visit`` is imported, and
    the user's ``created_at`` is the earliest ``created`` among them (never later than
    ``now``; ``now`` when there is none). A user already in the store is kept as it is,
    except that a missing unionid is filled in (as :meth:`SessionStore.ensure_user` does).
    ``dry_run`` reads the store and writes nothing. ``progress`` is called with the number
    of rows read so far after each row. Raises ``StoreUnavailable`` when the store fails.
    """
    report = MigrationReport(dry_run=dry_run)
    best: LegacyRow | None = None
    best_id = ""
    earliest: float | None = None
    for row in rows:
        report.rows_read += 1
        openid, problem = _check_open_id(row.open_id)
        if problem:
            report.skipped[problem] += 1
        elif best is not None and openid == best_id:
            report.duplicates += 1
            if _newer(row, best):
                best = row
            if row.created and (earliest is None or row.created < earliest):
                earliest = row.created
        else:
            if best is not None:
                _import_one(best_id, best, earliest, store, now, dry_run, report)
            best, best_id, earliest = row, openid, row.created or None
        if progress is not None:
            progress(report.rows_read)
    if best is not None:
        _import_one(best_id, best, earliest, store, now, dry_run, report)
    return report


def _import_one(
    openid: str,
    row: LegacyRow,
    created: float | None,
    store: SessionStore,
    now: float,
    dry_run: bool,
    report: MigrationReport,
) -> None:
    problem = ""
    try:
        data = decode_user_info(row.user_info)
    except ValueError as exc:
        data, problem = {}, str(exc)
    claimed = data.get("openId")
    if claimed is not None and claimed != openid:
        # Never seen in practice (WeChat encrypts a user's data under their own key), but a
        # profile that names another user is not taken on trust.
        data, problem = {}, "user_info names another openId"
    profile = clean_profile(data)
    if not problem and not profile:
        problem = "no profile fields in user_info"
    unionid = data.get("unionId")
    if not isinstance(unionid, str) or not unionid:
        unionid = None

    existing = call_store(store.get_user, openid)
    if existing is not None:
        report.already_present += 1
        if unionid is not None and existing.unionid is None:
            report.unionids_added += 1
            if not dry_run:
                call_store(store.ensure_user, openid, unionid=unionid, profile={}, now=now)
        return
    report.imported += 1
    if problem:
        report.without_profile[problem] += 1
    if not dry_run:
        since = min(created, now) if created else now
        call_store(store.ensure_user, openid, unionid=unionid, profile=profile, now=since)
