"""Run the fake WeChat from a shell: ``python -m wafer_py.fakewechat --port 8900``."""

from __future__ import annotations

import argparse
import contextlib
import threading

from ..config import DEMO_APP_SECRET, DEMO_APPID
from .fake import FakeWeChat


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m wafer_py.fakewechat", description=__doc__)
    parser.add_argument(
        "--host", default="127.0.0.1", help="a loopback address (127.0.0.1, ::1), nothing else"
    )
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument(
        "--app",
        action="append",
        metavar="APPID:SECRET",
        help=f"an app the fake knows (repeatable; default {DEMO_APPID}:<demo secret>)",
    )
    parser.add_argument("--content-type", default="text/plain")
    args = parser.parse_args(argv)
    apps: dict[str, str] = {}
    for item in args.app or [f"{DEMO_APPID}:{DEMO_APP_SECRET}"]:
        appid, sep, secret = item.partition(":")
        if not sep or not appid or not secret:
            parser.error(f"--app must be APPID:SECRET, got {item!r}")
        apps[appid] = secret
    fake = FakeWeChat(apps, content_type=args.content_type)
    try:
        server = fake.serve(args.host, args.port)
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2
    with server:
        print(f"fake WeChat on {server.url} (control API: {server.url}/_fake/)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
