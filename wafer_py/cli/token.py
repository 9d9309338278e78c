"""``wafer-py token``: the app's ``access_token`` from the shared cache, for shell scripts.

The command-line twin of wx-js-utils' ``getCacheAccessToken``, on the same cache as the
servers (:class:`~wafer_py.wechat.tokens.AccessTokenCache` in the store ``WAFER_STORE_URL``,
WeChat at ``WAFER_WECHAT_API_BASE``, the app ``WAFER_APPID`` / ``WAFER_APP_SECRET``)::

    TOKEN=$(wafer-py token get --reveal)   # cached; fetched only when missing or due
    wafer-py token refresh                 # fetch now (one process at a time)

The token is masked unless ``--reveal``. When WeChat or the store refuses, one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from ..config import WaferConfig
from ..exceptions import WaferError
from ..wechat.tokens import DEFAULT_GAP, AccessTokenCache
from .opening import wafer_log_level

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
    from ..stores import entry_store, open_store
    from ..wechat.client import WeChatClient

    config = WaferConfig.from_env(environ)
    try:
        store = open_store(config.store_url)
    except WaferError as exc:
        return _fail(exc)
    try:
        entries = entry_store(store)
    except TypeError as exc:
        print(f"wafer-py token: {exc}", file=sys.stderr)
        return 1
    client = WeChatClient(
        config.appid, config.app_secret, api_base=config.api_base, timeout=config.wechat_timeout
    )
    try:
        cache = AccessTokenCache(
            entries, client, key=args.key, gap=args.gap, stable=not args.classic
        )
        token = cache.refresh(force=args.force) if args.refresh else cache.get()
        cached = cache.peek()
    except WaferError as exc:
        return _fail(exc)
    finally:
        client.close()
        store.close()
    if args.reveal:
        print(token)
    else:
        left = ""
        if cached is not None and cached.access_token == token:
            left = f", expires in {max(0, int(cached.expires_at - cache.clock()))} s"
        print(f"{mask_token(token)} (cache entry {cache.key}{left}; --reveal prints it)")
    return 0


def _fail(exc: WaferError) -> int:
    print(f"wafer-py token: {exc.message}", file=sys.stderr)
    return 1
