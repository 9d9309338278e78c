"""``wafer-py sessions`` and ``wafer-py migrate-wafer``: a session store from the shell.

On the store ``--store URL`` names, else ``WAFER_STORE_URL``::

    wafer-py sessions list --openid OID [--json]      # id, created, last seen, expires, state
    wafer-py sessions revoke --openid OID             # every session of the user
    wafer-py sessions revoke --session ID             # one session
    wafer-py sessions purge [--batch 1000]            # delete expired sessions, in batches
    wafer-py sessions stats [--json]                  # users, sessions, entries
    wafer-py migrate-wafer --from mysql://root@127.0.0.1:3306/cAuth [--dry-run]

Nothing printed is a secret: no skey hash, no sealed session_key. A store that cannot be
opened or fails is one line on stderr and exit status 2; ``revoke`` that matched nothing
exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from .config import DEFAULT_STORE_URL
from .exceptions import WaferError
from .logsafe import redact_url
from .migrate import SQL_EXTRA, MigrationError, WaferTable, import_users
from .models import Session
from .stores.base import SessionStore, call_store

__all__ = ["add_parser", "Progress"]

#: ``migrate-wafer`` shows a progress bar for a table of more rows than this.
MANY = 1000


class _Failure(Exception):
    """A command cannot go on: one line for stderr, exit status 2."""


class Progress:
    """A progress bar on ``stream``: redrawn in place (``\\r``) on a terminal, else one
    line at each tenth of the way (for logs). Nothing at all unless ``enabled``."""

    def __init__(self, total: int, what: str, stream: TextIO, *, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.what = what
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._next_tenth = 1
        self._drawn_at = 0.0
        self._done = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        self._done = done
        if self.tty:
            now = time.monotonic()
            if now - self._drawn_at >= 0.1 or done >= self.total:
                self._drawn_at = now
                self.stream.write("\r" + self._line())
                self.stream.flush()
        else:
            tenth = min(10, done * 10 // self.total)
            if tenth >= self._next_tenth:
                self._next_tenth = tenth + 1
                self.stream.write(self._line() + "\n")
                self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (a terminal's cursor is left on it)."""
        if self.enabled and self.tty and self._drawn_at:
            self.stream.write("\r" + self._line() + "\n")
            self.stream.flush()

    def _line(self) -> str:
        total = max(self.total, self._done)
        share = self._done / total
        filled = int(share * 30)
        bar = "#" * filled + "-" * (30 - filled)
        return f"[{bar}] {self._done:,}/{total:,} {self.what} {int(share * 100):3d}%"


# -- opening the store ------------------------------------------------------------------
def _store_url(args: argparse.Namespace) -> str:
    """``--store``, else ``WAFER_STORE_URL``, else the default (no AppID needed here)."""
    return str(args.store or os.environ.get("WAFER_STORE_URL") or DEFAULT_STORE_URL)


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite://`` URL (as :class:`~wafer_py.stores.SQLiteStore` reads
    it), ``None`` for other stores and ``:memory:``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        return None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return None if path in ("", ":memory:") else Path(path)


def _open_store(url: str) -> SessionStore:
    from .stores import open_store

    try:
        return open_store(url)
    except WaferError as exc:
        detail = " ".join((getattr(exc, "detail", "") or exc.message).split())
        raise _Failure(f"cannot open the session store {redact_url(url)}: {detail}") from None
    except ImportError as exc:
        raise _Failure(
            f"cannot open the session store {redact_url(url)}: {_one_line(exc)} "
            "(the redis and sql extras: pip install 'wafer-session[redis]' or "
            f"{SQL_EXTRA})"
        ) from None
    except Exception as exc:  # a bad URL (ValueError), an unwritable path (OSError), a driver
        raise _Failure(
            f"cannot open the session store {redact_url(url)}: {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _store_failed(exc: WaferError, url: str) -> str:
    detail = getattr(exc, "detail", "") or exc.message
    return f"the session store {redact_url(url)} failed: {' '.join(detail.split())}"


def _quiet_store_logs() -> None:
    # The store logs outages for servers ("answering 503"); here the error is the output.
    logging.getLogger("wafer_py").setLevel(logging.CRITICAL)


# -- wafer-py sessions -----------------------------------------------------------------
def add_parser(sub: Any) -> None:
    """Add ``sessions`` (list, revoke, purge, stats) and ``migrate-wafer``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", metavar="URL", help="the session store (default: WAFER_STORE_URL)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    sessions = sub.add_parser("sessions", help="list, revoke and purge sessions; store counts")
    actions = sessions.add_subparsers(dest="sessions_command", required=True)

    show = actions.add_parser("list", parents=[common], help="the sessions of a user")
    show.add_argument("--openid", required=True)
    show.set_defaults(func=cmd_sessions, action=_list)

    revoke = actions.add_parser(
        "revoke", parents=[common], help="end the sessions of a user, or one session"
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--openid", help="every session of this user")
    which.add_argument("--session", metavar="ID", help="this session")
    revoke.set_defaults(func=cmd_sessions, action=_revoke)

    purge = actions.add_parser(
        "purge", parents=[common], help="delete expired sessions (and expired entries)"
    )
    purge.add_argument(
        "--batch",
        type=_positive,
        default=1000,
        help="sessions deleted per transaction (default 1000)",
    )
    purge.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    purge.set_defaults(func=cmd_sessions, action=_purge)

    stats = actions.add_parser("stats", parents=[common], help="users, sessions and entries")
    stats.set_defaults(func=cmd_sessions, action=_stats)

    _add_migrate_parser(sub)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text!r}")
    return value


def cmd_sessions(args: argparse.Namespace) -> int:
    """Run one ``sessions`` action on the store."""
    _quiet_store_logs()
    url = _store_url(args)
    try:
        file = _sqlite_file(url)
        if file is not None and not file.exists():
            # Opening would create an empty store: surely not the one meant.
            raise _Failure(f"no SQLite store at {file} (--store URL or WAFER_STORE_URL)")
        store = _open_store(url)
        try:
            action: Callable[[SessionStore, argparse.Namespace], int] = args.action
            return action(store, args)
        finally:
            store.close()
    except _Failure as exc:
        print(f"wafer-py sessions: {_one_line(exc)}", file=sys.stderr)
        return 2
    except WaferError as exc:
        print(f"wafer-py sessions: {_store_failed(exc, url)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `wafer-py sessions list ... | head`
        return _reader_gone()


def _reader_gone() -> int:
    # Python would complain again when it flushes stdout at exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _session_data(session: Session, now: float) -> dict[str, Any]:
    # Listed field by field: a Session also holds the skey hash and the sealed key.
    return {
        "id": session.id,
        "created_at": session.created_at,
        "last_seen": session.last_seen,
        "expires_at": session.expires_at,
        "state": "expired" if session.is_expired(now) else "active",
    }


def _list(store: SessionStore, args: argparse.Namespace) -> int:
    now = time.time()
    sessions = [_session_data(s, now) for s in call_store(store.list_sessions, args.openid)]
    known = bool(sessions) or call_store(store.get_user, args.openid) is not None
    if args.json:
        print(json.dumps({"openid": args.openid, "user": known, "sessions": sessions}))
        return 0
    if not sessions:
        print(f"openid {args.openid}: no sessions" + ("" if known else " (no such user)"))
        return 0
    active = sum(1 for s in sessions if s["state"] == "active")
    print(
        f"openid {args.openid}: {len(sessions)} session{'s' * (len(sessions) != 1)} "
        f"({active} active, {len(sessions) - active} expired; times in UTC)"
    )
    table = [("SESSION", "CREATED", "LAST SEEN", "EXPIRES", "STATE")]
    for s in sessions:
        times = (_when(s["created_at"]), _when(s["last_seen"]), _when(s["expires_at"]))
        table.append((s["id"], *times, s["state"]))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _revoke(store: SessionStore, args: argparse.Namespace) -> int:
    if args.session is not None:
        count = int(call_store(store.revoke_session, args.session))
        text = f"revoked session {args.session}" if count else f"no session {args.session}"
    else:
        count = call_store(store.revoke_user, args.openid)
        plural = "s" * (count != 1)
        text = f"revoked {count} session{plural} of {args.openid}"
    if args.json:
        print(json.dumps({"revoked": count}))
    else:
        print(text)
    return 0 if count else 1


def _purge(store: SessionStore, args: argparse.Namespace) -> int:
    now = time.time()
    expected = 0 if args.quiet else call_store(store.stats, now).expired_sessions
    # A bar when it takes more than one batch.
    bar = Progress(expected, "expired sessions purged", sys.stderr, enabled=expected > args.batch)
    total = 0
    try:
        while True:
            count = call_store(store.purge_expired, now, limit=args.batch)
            total += count
            bar.update(total)
            if count < args.batch:
                break
    except KeyboardInterrupt:
        bar.finish()
        print(f"interrupted: purged {total} expired sessions", file=sys.stderr)
        return 130
    bar.finish()
    if args.json:
        print(json.dumps({"purged": total}))
    else:
        print(f"purged {total} expired session{'s' * (total != 1)}")
    return 0


def _stats(store: SessionStore, args: argparse.Namespace) -> int:
    stats = call_store(store.stats, time.time())
    counts = {
        "users": stats.users,
        "active_sessions": stats.active_sessions,
        "expired_sessions": stats.expired_sessions,
        "entries": stats.entries,
    }
    if args.json:
        print(json.dumps(counts))
    else:
        for name, value in counts.items():
            print(f"{name.replace('_', ' '):<18}{value:>12,}")
    return 0


# -- wafer-py migrate-wafer ------------------------------------------------------------
def _add_migrate_parser(sub: Any) -> None:
    migrate = sub.add_parser(
        "migrate-wafer",
        help="import the users of a Node/PHP Wafer server (its cSessionInfo table)",
        description="Import the users of an original Wafer server's cSessionInfo table "
        "(MySQL/MariaDB; the v1 PHP and v2 Node layouts) into a wafer_py store. Old skeys "
        "and session_keys are not imported: users log in again. Users already in the "
        "store are kept. Running it again imports nothing new.",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the Wafer database: mysql://user:password@host:3306/cAuth",
    )
    migrate.add_argument("--table", default="cSessionInfo", help="default: cSessionInfo")
    migrate.add_argument(
        "--store", metavar="URL", help="the wafer_py store (default: WAFER_STORE_URL)"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="count what would be imported, write nothing"
    )
    migrate.add_argument("--json", action="store_true", help="print the counts as JSON")
    migrate.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    migrate.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Run ``migrate-wafer``."""
    from .stores import MemoryStore

    _quiet_store_logs()
    url = _store_url(args)
    read = 0
    try:
        with WaferTable(args.source, args.table) as table:
            file = _sqlite_file(url)
            if args.dry_run and file is not None and not file.exists():
                store: SessionStore = MemoryStore()  # a dry run creates no file
            else:
                store = _open_store(url)
            try:
                total = 0 if args.quiet else table.count()
                bar = Progress(total, "rows read", sys.stderr, enabled=total > MANY)

                def progress(done: int) -> None:
                    nonlocal read
                    read = done
                    bar.update(done)

                report = import_users(
                    table.rows(), store, now=time.time(), dry_run=args.dry_run, progress=progress
                )
                bar.finish()
            finally:
                store.close()
            report.schema = table.schema
    except (MigrationError, _Failure) as exc:
        print(f"wafer-py migrate-wafer: {_one_line(exc)}", file=sys.stderr)
        return 2
    except WaferError as exc:
        again = " (running it again goes on: imported users are kept)" if read else ""
        print(
            f"wafer-py migrate-wafer: {_store_failed(exc, url)} after {read} rows{again}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(
            f"\nwafer-py migrate-wafer: interrupted after {read} rows "
            "(running it again goes on: imported users are kept)",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    layout = {
        "v1": "v1 layout, the PHP session server",
        "v2": "v2 layout, the Node SDK",
    }.get(report.schema, "layout not recognised; read by column name")
    print(f"{args.table} at {redact_url(args.source)} ({layout}) -> {redact_url(url)}")
    if report.dry_run:
        print("dry run: nothing was written")
    without = sum(report.without_profile.values())
    skipped = sum(report.skipped.values())
    lines = [
        ("rows read", report.rows_read, ""),
        (
            "to import" if report.dry_run else "imported",
            report.imported,
            f"{without} without profile: {_reasons(report.without_profile)}" if without else "",
        ),
        ("already present", report.already_present, "kept as they are"),
        ("duplicate rows", report.duplicates, "older rows of an open_id; the newest was used"),
        ("skipped rows", report.skipped.total(), _reasons(report.skipped) if skipped else ""),
    ]
    if report.unionids_added:
        lines.append(("unionids added", report.unionids_added, "to users present without one"))
    for name, value, note in lines:
        print(f"  {name:<16}{value:>10,}" + (f"   ({note})" if note else ""))
    print("Old skeys and session_keys are not imported: each user logs in again once.")
    return 0


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
