"""``wafer-py migrate-wafer``: import the users of a Node/PHP Wafer server into a store.

    wafer-py migrate-wafer --from mysql://root@127.0.0.1:3306/cAuth [--dry-run]

The reading is :mod:`wafer_py.cli.legacytable`'s and the import :mod:`wafer_py.cli.legacy`'s;
this is the command: options, a progress bar, and one line on stderr with exit status 2 when
something fails (130 when interrupted: running it again goes on, imported users are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..exceptions import WaferError
from ..logsafe import redact_url
from ..stores.base import SessionStore
from .legacy import MigrationError, WaferTable, import_users
from .opening import (
    CommandFailed,
    one_line,
    open_cli_store,
    quiet_store_logs,
    sqlite_file,
    store_failed,
    store_url,
)
from .progress import Progress

__all__ = ["add_parser", "cmd_migrate"]

#: ``migrate-wafer`` shows a progress bar for a table of more rows than this.
MANY = 1000


def add_parser(sub: Any) -> None:
    """Add ``migrate-wafer``."""
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
    with quiet_store_logs():
        return _migrate(args)


def _migrate(args: argparse.Namespace) -> int:
    from ..stores import MemoryStore

    url = store_url(args)
    read = 0
    try:
        with WaferTable(args.source, args.table) as table:
            file = sqlite_file(url)
            if args.dry_run and file is not None and not file.exists():
                store: SessionStore = MemoryStore()  # a dry run creates no file
            else:
                store = open_cli_store(url)
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
    except (MigrationError, CommandFailed) as exc:
        print(f"wafer-py migrate-wafer: {one_line(exc)}", file=sys.stderr)
        return 2
    except WaferError as exc:
        again = " (running it again goes on: imported users are kept)" if read else ""
        print(
            f"wafer-py migrate-wafer: {store_failed(exc, url)} after {read} rows{again}",
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
