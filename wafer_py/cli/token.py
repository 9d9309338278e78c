"""``wafer-py token``: the app's ``access_token`` from the shared cache, for shell scripts.

The command-line twin of wx-js-utils' ``getCacheAccessToken``, on the same cache as the
servers (:class:`~wafer_py.wechat.tokens.AccessTokenCache` in the store ``WAFER_STORE_URL``,
WeChat at ``WAFER_WECHAT_API_BASE``, the app ``WAFER_APPID`` / ``WAFER_APP_SECRET``)::

    TOKEN=$(wafer-py token get --reveal)   # cached; fetched only when missing or due
    wafer-py token refresh                 # fetch now (one process at a time)

The token is masked unless ``--reveal``. ``--store URL`` names the store (it must exist:
nothing is created), ``--json`` prints ``{"key", "token", "masked", "expires_in"}`` (and
for ``refresh``, ``"changed"`` and ``"reason"``). When WeChat or the store refuses, one
line on stderr naming the cause, and exit status 2 (as every ``wafer-py`` command).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

from ..config import WaferConfig
from ..exceptions import WaferError, WeChatError
from ..wechat.tokens import DEFAULT_GAP, AccessTokenCache
from .opening import CommandFailed, one_line, open_existing, store_failed, wafer_log_level
from .probes import wechat_failed

__all__ = ["add_actions", "add_parser", "cmd_token", "mask_token"]


def mask_token(token: str) -> str:
    """Enough of a token to tell two apart, not to use one."""
    return f"{token[:6]}...{token[-4:]}" if len(token) > 16 else "***"


def add_parser(sub: Any) -> None:
    """Add ``token get`` and ``token refresh`` to the ``wafer-py`` subcommands."""
    token = sub.add_parser("token", help="the app's access_token from the shared cache")
    add_actions(token.add_subparsers(dest="token_command", required=True))


def add_actions(actions: Any) -> None:
    """Add ``get`` and ``refresh`` to ``actions``, an argparse subparsers object
    (``manage.py wafer_token`` adds them to its own parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--reveal",
        action="store_true",
        help="print the token itself, alone on its line (default: masked)",
    )
    common.add_argument(
        "--classic",
        action="store_true",
        help="fetch from /cgi-bin/token instead of /cgi-bin/stable_token",
    )
    common.add_argument(
        "--key",
        default="access_token",
        help="name of the cache entry (the AppID is appended; default: access_token)",
    )
    common.add_argument(
        "--store", metavar="URL", help="the store of the token cache (default: WAFER_STORE_URL)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument("-v", "--verbose", action="store_true", help="log retries and waits")
    get = actions.add_parser(
        "get", parents=[common], help="print a valid token, fetching one only when needed"
    )
    get.add_argument(
        "--gap",
        type=float,
        default=DEFAULT_GAP,
        help=f"refresh when the token expires within this many seconds (default {DEFAULT_GAP:g})",
    )
    get.set_defaults(func=cmd_token, refresh=False, force=False)
    refresh = actions.add_parser(
        "refresh", parents=[common], help="fetch a new token now (one process at a time)"
    )
    refresh.add_argument(
        "--force",
        action="store_true",
        help="stable_token force_refresh: a new token even if the current "
        "one is good; retires it at once (WeChat allows 20 a day)",
    )
    refresh.set_defaults(func=cmd_token, refresh=True, gap=DEFAULT_GAP)


def cmd_token(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run ``token get`` or ``token refresh``; the ``WAFER_*`` names from ``environ``
    (default: the environment)."""
    with wafer_log_level(logging.INFO if args.verbose else logging.CRITICAL):
        return _token(args, environ)


def _token(args: argparse.Namespace, environ: Mapping[str, str] | None) -> int:
    from ..stores import entry_store
    from ..wechat.client import WeChatClient

    config = WaferConfig.from_env(environ)
    url = getattr(args, "store", None) or config.store_url
    try:
        store = open_existing(url)  # a token is cached in the servers' store, never a new one
    except CommandFailed as exc:
        return _fail(one_line(exc))
    try:
        entries = entry_store(store)
    except TypeError as exc:
        store.close()
        return _fail(one_line(exc))
    client = WeChatClient(
        config.appid, config.app_secret, api_base=config.api_base, timeout=config.wechat_timeout
    )
    try:
        cache = AccessTokenCache(
            entries, client, key=args.key, gap=args.gap, stable=not args.classic
        )
        before = cache.peek()
        token = cache.refresh(force=args.force) if args.refresh else cache.get()
        cached = cache.peek()
    except WeChatError as exc:
        return _fail(wechat_failed(exc, config))
    except WaferError as exc:
        return _fail(store_failed(exc, url))
    finally:
        client.close()
        store.close()
    left = None
    if cached is not None and cached.access_token == token:
        left = max(0, int(cached.expires_at - cache.clock()))
    unchanged = args.refresh and before is not None and before.access_token == token
    why = _why_unchanged(args) if unchanged else None
    if args.json:
        print(
            json.dumps(
                {
                    "key": cache.key,
                    "token": token if args.reveal else mask_token(token),
                    "masked": not args.reveal,
                    "expires_in": left,
                    **({"changed": not unchanged, "reason": why} if args.refresh else {}),
                }
            )
        )
    elif args.reveal:
        print(token)
    else:
        expires = "" if left is None else f", expires in {left} s"
        print(f"{mask_token(token)} (cache entry {cache.key}{expires}; --reveal prints it)")
    if why and not args.json:
        print(f"wafer-py token: the token did not change: {why}", file=sys.stderr)
    return 0


def _why_unchanged(args: argparse.Namespace) -> str:
    if args.force and not args.classic:
        return (
            "WeChat answers a forced refresh made within 30 s of the previous one with the "
            "current token (stable_token); run it again in 30 s for a new one"
        )
    if args.classic:
        return "WeChat's /cgi-bin/token handed back the current token"
    return (
        "stable_token hands back the current token until 5 minutes before it expires; "
        "--force asks for a new one (20 a day, retires the current one at once)"
    )


def _fail(line: str) -> int:
    print(f"wafer-py token: {line}", file=sys.stderr)
    return 2
