"""``wafer-py sessions``: a session store from the shell.

On the store ``--store URL`` names, else ``WAFER_STORE_URL``::

    wafer-py sessions list --openid OID [--json]      # id, created, last seen, expires, state
    wafer-py sessions revoke --openid OID             # every session of the user
    wafer-py sessions revoke --session ID             # one session
    wafer-py sessions purge [--batch 1000]            # delete expired sessions, in batches
    wafer-py sessions stats [--json]                  # users, sessions, entries

Nothing printed is a secret: no skey hash, no sealed session_key. The store must exist
(:mod:`.opening`: no file or table is created). A store that cannot be opened or fails is
one line on stderr and exit status 2; ``list`` of an unknown user and ``revoke`` that
matched nothing exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..exceptions import WaferError
from ..models import Session
from ..stores.base import SessionStore, call_store
from .opening import (
    CommandFailed,
    one_line,
    open_existing,
    quiet_store_logs,
    store_failed,
    store_url,
)
from .progress import Progress

__all__ = ["add_actions", "add_parser", "cmd_sessions"]


# -- wafer-py sessions -----------------------------------------------------------------
def add_parser(sub: Any) -> None:
    """Add ``sessions`` (list, revoke, purge, stats)."""
    sessions = sub.add_parser("sessions", help="list, revoke and purge sessions; store counts")
    add_actions(sessions.add_subparsers(dest="sessions_command", required=True))


def add_actions(actions: Any) -> None:
    """Add the actions (list, revoke, purge, stats) to ``actions``, an argparse
    subparsers object (``manage.py wafer_sessions`` adds them to its own parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", metavar="URL", help="the session store (default: WAFER_STORE_URL)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

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
    with quiet_store_logs():
        return _sessions(args)


def _sessions(args: argparse.Namespace) -> int:
    url = store_url(args)
    try:
        store = open_existing(url)  # never an empty store made by mistake
        try:
            action: Callable[[SessionStore, argparse.Namespace], int] = args.action
            return action(store, args)
        finally:
            store.close()
    except CommandFailed as exc:
        print(f"wafer-py sessions: {one_line(exc)}", file=sys.stderr)
        return 2
    except WaferError as exc:
        print(f"wafer-py sessions: {store_failed(exc, url)}", file=sys.stderr)
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
        return 0 if known else 1
    if not sessions:
        print(f"openid {args.openid}: no sessions" + ("" if known else " (no such user)"))
        return 0 if known else 1  # an unknown user matched nothing
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
