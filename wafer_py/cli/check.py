"""``wafer-py check``: is this configuration one a server can start with?

    wafer-py check [--store URL] [--no-wechat] [--json]

Prints the configuration in force, each value with where it came from (``env``: a
``WAFER_*`` variable; ``flag``: the command line; ``default``), secrets masked; then
opens the store without creating anything and reads it once, and asks WeChat for an
``access_token`` with the configured AppID and AppSecret (``stable_token`` without
forcing: the servers' token is not retired; ``--no-wechat`` skips it). Exit status 0
when all is well, 1 with one line per problem on stderr (a mistyped variable, a value
a server would refuse, a store that is missing or does not answer, credentials WeChat
refuses).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from typing import Any

from ..config import CONFIG_VARIABLES, WaferConfig, config_sources, unknown_variables
from ..exceptions import WaferError
from ..logsafe import redact_url
from ..stores.base import call_store
from .opening import CommandFailed, one_line, open_existing, store_failed, wafer_log_level
from .probes import probe_wechat

__all__ = ["add_parser", "cmd_check"]

#: Fields shown masked: only whether they are set, and their length.
_SECRETS = frozenset({"app_secret", "oauth_app_secret", "secret_keys"})


def add_parser(sub: Any) -> None:
    """Add ``check``."""
    check = sub.add_parser(
        "check",
        help="show the configuration in force; try the store and WeChat",
        description="Show the configuration in force (secrets masked, each value's "
        "source), open the store read-only, and ask WeChat for an access_token. Exit 0 "
        "when all is well, 1 with one line per problem.",
    )
    check.add_argument("--store", metavar="URL", help="the store (default: WAFER_STORE_URL)")
    check.add_argument(
        "--no-wechat", action="store_true", help="do not ask WeChat for an access_token"
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Run ``check`` on the environment."""
    with wafer_log_level(logging.CRITICAL):  # the problems are the output
        report = _check(args, os.environ)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print(report)
    for problem in report["problems"]:
        print(f"wafer-py check: {problem}", file=sys.stderr)
    return 1 if report["problems"] else 0


def _check(args: argparse.Namespace, env: Any) -> dict[str, Any]:
    problems: list[str] = []
    for name, closest in unknown_variables(env):
        hint = f"; did you mean {closest}?" if closest else ""
        problems.append(f"{name} is not a wafer_py setting and is ignored{hint}")
    found = config_sources(None, env)
    flags = {"store_url": args.store} if args.store else {}
    config: WaferConfig | None
    try:
        config = WaferConfig.from_env({k: v for k, (v, _) in found.items()}, **flags)
    except ValueError as exc:
        config = None
        problems.append(str(exc))
    settings = {}
    defaults = {f.name: f.default for f in dataclasses.fields(WaferConfig)}
    for variable, name in CONFIG_VARIABLES.items():
        source = "flag" if name in flags else found[variable][1] if variable in found else "default"
        value = _value(config, found, flags, name)
        value = defaults[name] if value is None and config is None else value
        settings[name] = {"variable": variable, "value": _shown(name, value), "source": source}
    url = str(_value(config, found, flags, "store_url") or defaults["store_url"])
    store = _check_store(url, config, problems)
    wechat = _check_wechat(args, config, problems)
    return {
        "ok": not problems,
        "config": settings,
        "store": store,
        "wechat": wechat,
        "problems": problems,
    }


def _value(
    config: WaferConfig | None,
    found: dict[str, tuple[str, str]],
    flags: dict[str, str],
    name: str,
) -> Any:
    """The value of field ``name``: the config's, or (when the config was refused) the
    flag's or the variable's text; ``None`` when neither gives one."""
    if config is not None:
        return getattr(config, name)
    if name in flags:
        return flags[name]
    variable = next(v for v, field in CONFIG_VARIABLES.items() if field == name)
    return found[variable][0] if variable in found else None


def _shown(name: str, value: Any) -> Any:
    """``value`` as printed: secrets masked, a store URL's password masked."""
    if value in ("", None, ()):
        return None
    if name in _SECRETS:
        if name == "secret_keys" and isinstance(value, str):  # as given, when it was refused
            value = tuple(key for key in value.split(",") if key.strip())
        if isinstance(value, tuple):
            return f"{len(value)} key{'s' * (len(value) != 1)} (masked)"
        return f"set, {len(value)} characters (masked)"
    if name == "store_url":
        return redact_url(str(value))
    return value


def _check_store(url: str, config: WaferConfig | None, problems: list[str]) -> dict[str, Any]:
    shown = redact_url(url)
    try:
        store = open_existing(url)
    except CommandFailed as exc:
        problems.append(one_line(exc))
        return {"url": shown, "ok": False}
    try:
        call_store(store.stats, time.time())
    except WaferError as exc:
        problems.append(store_failed(exc, url))
        return {"url": shown, "ok": False}
    finally:
        store.close()
    shared = bool(getattr(store, "shared", True))
    if shared and config is not None and not config.secret_keys:
        problems.append(
            f"WAFER_SECRET_KEY is not set, and the store {shown} is shared by several "
            "server processes: a server refuses to start without it; give every process "
            'the same key, made with: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"'
        )
    return {"url": shown, "ok": True, "kind": type(store).__name__, "shared": shared}


def _check_wechat(
    args: argparse.Namespace, config: WaferConfig | None, problems: list[str]
) -> dict[str, Any]:
    if args.no_wechat:
        return {"skipped": "--no-wechat"}
    if config is None:
        return {"skipped": "the configuration has a problem"}
    problem = probe_wechat(config)
    if problem is not None:
        problems.append(problem)
    return {"api_base": config.api_base, "appid": config.appid, "ok": problem is None}


def _print(report: dict[str, Any]) -> None:
    print("configuration (source: env = a WAFER_* variable, flag = this command's option,")
    print("default = not set anywhere)")
    rows = [
        (row["variable"], "(not set)" if row["value"] is None else str(row["value"]), row["source"])
        for row in report["config"].values()
    ]
    names, values = (max(len(row[i]) for row in rows) for i in (0, 1))
    for variable, value, source in rows:
        print(f"  {variable:<{names}}  {value:<{values}}  {source}")
    store = report["store"]
    kind = f" ({store['kind']})" if store.get("kind") else ""
    print(f"store:   {'ok' if store['ok'] else 'PROBLEM'}  {store['url']}{kind}")
    wechat = report["wechat"]
    if "skipped" in wechat:
        print(f"WeChat:  skipped ({wechat['skipped']})")
    else:
        state = "ok, an access_token was handed out" if wechat["ok"] else "PROBLEM"
        print(f"WeChat:  {state}  {wechat['api_base']} for {wechat['appid']}")
    count = len(report["problems"])
    print("all good" if not count else f"{count} problem{'s' * (count != 1)} (on stderr)")
