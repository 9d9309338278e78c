"""The ``wafer-py`` command.

* ``wafer-py demo`` serves an example app over HTTP on the embedded defaults (SQLite store,
  a fake WeChat on 127.0.0.1 started in the same process unless ``WAFER_WECHAT_API_BASE``
  is set). It refuses to start its fake where production variables are set.
* ``wafer-py sandbox`` runs the fake WeChat alone, for testing your own server.

Configuration comes from ``WAFER_*`` environment variables (see the README).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__
from ..config import DEMO_APP_SECRET, DEMO_APPID, WaferConfig
from . import migrate, sessions, token

__all__ = ["main"]


#: The module with ``create_app(auth)`` in an example, where it is not ``app``.
_EXAMPLE_MODULES = {"django": "asgi"}


def _examples_module(framework: str) -> Any:
    """Import an example app: the checkout's ``examples/`` package."""
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    module = _EXAMPLE_MODULES.get(framework, "app")  # Django's: its project's ASGI module
    if (root / "examples" / f"{framework}_app" / f"{module}.py").exists() and (
        str(root) not in sys.path
    ):
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"examples.{framework}_app.{module}")
    except ImportError as exc:
        raise SystemExit(
            f"wafer-py demo: cannot load the {framework} example ({exc}). Run it from a "
            "checkout of wafer_py installed with: pip install -e '.[demo]'"
        ) from None


def _try_it(base: str, fake_url: str | None, appid: str) -> str:
    if fake_url is None:
        return (
            f"  Log in with a real mini-program pointed at {base}/weapp/login, "
            "then call /weapp/user with its session."
        )
    return "\n".join(
        [
            "  Try it without a phone (bash):",
            f'    CODE=$(curl -s -X POST {fake_url}/_fake/login -d \'{{"appid": "{appid}", '
            '"user": "alice"}\' | python3 -c '
            "'import json,sys; print(json.load(sys.stdin)[\"code\"])')",
            f'    SKEY=$(curl -s -H "X-WX-Code: $CODE" {base}/weapp/login | python3 -c '
            '\'import json,sys; print(json.load(sys.stdin)["data"]["skey"])\')',
            f'    curl -s -H "X-WX-Skey: $SKEY" {base}/weapp/user',
        ]
    )


#: What a production deployment sets. The demo's fake WeChat would mint valid sessions
#: for that AppID, under that key, into that store: with any of them set (and no
#: ``WAFER_WECHAT_API_BASE``), ``wafer-py demo`` refuses to start.
PRODUCTION_VARIABLES = ("WAFER_APPID", "WAFER_APP_SECRET", "WAFER_SECRET_KEY", "WAFER_STORE_URL")


def _production_variables(env: Mapping[str, str]) -> list[str]:
    """The production variables set in ``env`` (the demo app's own values do not count)."""
    demo = {"WAFER_APPID": DEMO_APPID, "WAFER_APP_SECRET": DEMO_APP_SECRET}
    return [
        name
        for name in PRODUCTION_VARIABLES
        if env.get(name, "").strip() and env[name].strip() != demo.get(name)
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    from ..auth import WaferAuth

    env = os.environ
    fake_server = None
    if env.get("WAFER_WECHAT_API_BASE"):
        config = WaferConfig.from_env()  # a WeChat of your own: its AppID and secret
    else:
        found = _production_variables(env)
        if found:
            print(
                f"wafer-py demo: refusing to start a fake WeChat: {', '.join(found)} "
                f"{'is' if len(found) == 1 else 'are'} set, as in production, and "
                "WAFER_WECHAT_API_BASE is not. The fake would mint valid sessions for that "
                "AppID, under that key, into that store. Unset "
                f"{' and '.join(PRODUCTION_VARIABLES)} to run the demo, or set "
                "WAFER_WECHAT_API_BASE to a WeChat of your own.",
                file=sys.stderr,
            )
            return 2
        from ..fakewechat import FakeWeChat

        apps = {DEMO_APPID: DEMO_APP_SECRET}
        if env.get("WAFER_OAUTH_APPID"):  # the official account, if another
            apps[env["WAFER_OAUTH_APPID"]] = env.get("WAFER_OAUTH_APP_SECRET") or DEMO_APP_SECRET
        fake_server = FakeWeChat(apps=apps).serve(port=args.fake_port)  # on 127.0.0.1
        config = WaferConfig.from_env(
            api_base=fake_server.url, open_base=fake_server.url, fake_wechat=True
        )
    try:
        auth = WaferAuth(config)
    except BaseException:
        if fake_server is not None:
            fake_server.close()
        raise
    module = _examples_module(args.framework)
    app = module.create_app(auth)
    base = f"http://{args.host}:{args.port}"
    fake_url = fake_server.url if fake_server is not None else None
    lines = [
        f"wafer_py demo ({args.framework}) on {base}",
        f"  login:          {base}{config.login_path}   (X-WX-Code header)",
        f"  protected:      {base}/weapp/user   (X-WX-Skey, or X-WX-Id + X-WX-Skey)",
        f"  web page:       {base}/web/profile   (open in a browser: WeChat web OAuth)",
        f"  session store:  {config.store_url}",
        f"  WeChat API:     {config.api_base}" + ("   (the fake WeChat)" if fake_url else ""),
        f"  AppID:          {config.appid}",
        _try_it(base, fake_url, config.appid),
        "  Ctrl-C stops it.",
    ]
    print("\n".join(lines), flush=True)
    try:
        if args.framework == "flask":
            from werkzeug.serving import run_simple

            run_simple(args.host, args.port, app, threaded=True)
        else:
            try:
                import uvicorn
            except ImportError:
                raise SystemExit(
                    "wafer-py demo: uvicorn is needed: pip install 'wafer-session[demo]'"
                ) from None
            uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    except KeyboardInterrupt:
        pass
    finally:
        auth.close()
        if fake_server is not None:
            fake_server.close()
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    import threading

    from ..fakewechat import FakeWeChat

    appid = args.appid or os.environ.get("WAFER_APPID") or DEMO_APPID
    secret = args.secret or os.environ.get("WAFER_APP_SECRET") or DEMO_APP_SECRET
    fake = FakeWeChat(apps={appid: secret})
    server = fake.serve(host=args.host, port=args.port)
    shown = secret if secret == DEMO_APP_SECRET else "<the secret you gave>"
    print(
        "\n".join(
            [
                f"fake WeChat on {server.url}",
                f"  AppID {appid} (secret from WAFER_APP_SECRET, or the demo secret)",
                f"  point your server at it: WAFER_WECHAT_API_BASE={server.url} "
                f"WAFER_APPID={appid} WAFER_APP_SECRET={shown}",
                f"  mint a login code:   curl -s -X POST {server.url}/_fake/login "
                f'-d \'{{"appid": "{appid}", "user": "alice"}}\'',
                f"  encrypted user info: curl -s -X POST {server.url}/_fake/userinfo "
                f'-d \'{{"appid": "{appid}", "user": "alice"}}\'',
                f"  the control API:     curl -s {server.url}/_fake/",
                "  Ctrl-C stops it.",
            ]
        ),
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wafer-py", description="Wafer mini-program login for Python servers."
    )
    parser.add_argument("--version", action="version", version=f"wafer-py {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="serve an example app with the fake WeChat")
    demo.add_argument("--framework", choices=("starlette", "flask", "django"), default="starlette")
    demo.add_argument(
        "--host", default="127.0.0.1", help="the app's address (its fake WeChat: 127.0.0.1)"
    )
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--fake-port", type=int, default=0, help="port of the fake WeChat (default: any free port)"
    )
    demo.set_defaults(func=cmd_demo)

    sandbox = sub.add_parser("sandbox", help="run the fake WeChat alone")
    sandbox.add_argument(
        "--host",
        default="127.0.0.1",
        help="a loopback address (127.0.0.1, ::1): the fake is never served to the network",
    )
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.add_argument("--appid", default=None)
    sandbox.add_argument("--secret", default=None)
    sandbox.set_defaults(func=cmd_sandbox)

    token.add_parser(sub)  # wafer-py token get | refresh
    sessions.add_parser(sub)  # wafer-py sessions list | revoke | purge | stats
    migrate.add_parser(sub)  # wafer-py migrate-wafer
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:  # configuration errors: say what is wrong, no traceback
        print(f"wafer-py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
