"""The ``wafer-py`` command.

* ``wafer-py demo`` serves an example app over HTTP on the embedded defaults (SQLite store,
  a fake WeChat on 127.0.0.1 started in the same process unless ``WAFER_WECHAT_API_BASE``
  is set). It refuses to start its fake where production variables are set. Its ports
  are bound before the banner is printed (:mod:`.ports`): ``--port 0`` shows the port
  bound, a port in use is one line and exit 2.
* ``wafer-py sandbox`` runs the fake WeChat alone, for testing your own server.
* ``check``, ``sessions``, ``token`` and ``migrate-wafer`` live in their own modules.

Configuration comes from ``WAFER_*`` environment variables; docs/cli.md is the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__
from ..config import DEMO_APP_SECRET, DEMO_APPID, WaferConfig
from ..extras import install_hint
from ..logsafe import redact_url
from . import check, migrate, sessions, token
from .opening import CommandFailed
from .ports import listen, port_failed

__all__ = ["main"]


#: The module with ``create_app(auth)`` in an example, where it is not ``app``.
_EXAMPLE_MODULES = {"django": "asgi"}


def _examples_module(framework: str) -> Any:
    """Import an example app: ``wafer_py.examples`` (shipped in the wheel), else the
    ``examples/`` package of the checkout this module runs from."""
    from pathlib import Path

    module = _EXAMPLE_MODULES.get(framework, "app")  # Django's: its project's ASGI module
    name = f"{framework}_app.{module}"
    if framework == "django":  # the example's settings, not those of a project in the shell
        os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        return importlib.import_module(f"wafer_py.examples.{name}")
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("wafer_py.examples"):
            raise _missing(framework, exc) from None
    root = Path(__file__).resolve().parents[2]  # a checkout run without installing
    if (root / "examples" / f"{framework}_app").is_dir() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"examples.{name}")
    except ImportError as exc:
        raise _missing(framework, exc) from None


def _missing(framework: str, exc: ImportError) -> CommandFailed:
    return CommandFailed(f"cannot load the {framework} example ({exc}): {install_hint('demo')}")


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
    env = os.environ
    if not env.get("WAFER_WECHAT_API_BASE"):
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
    if args.framework != "flask" and importlib.util.find_spec("uvicorn") is None:
        raise CommandFailed(f"the {args.framework} demo needs uvicorn: {install_hint('demo')}")
    # Bound first: the banner shows the port bound, and a port in use stops here.
    sock = listen(args.host, args.port, "--port")
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        fake_url = None
        if env.get("WAFER_WECHAT_API_BASE"):
            config = WaferConfig.from_env()  # a WeChat of your own: its AppID and secret
        else:
            fake_url = stack.enter_context(_fake_for_demo(env, args.fake_port)).url
            config = WaferConfig.from_env(api_base=fake_url, open_base=fake_url, fake_wechat=True)
        from ..auth import WaferAuth

        auth = WaferAuth(config)
        stack.callback(auth.close)
        app = _examples_module(args.framework).create_app(auth)
        host = f"[{args.host}]" if ":" in args.host else args.host
        base = f"http://{host}:{sock.getsockname()[1]}"
        print(_banner(args.framework, base, config, fake_url), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            _serve(args.framework, app, sock)
    return 0


def _fake_for_demo(env: Mapping[str, str], port: int) -> Any:
    from ..fakewechat import FakeWeChat

    apps = {DEMO_APPID: DEMO_APP_SECRET}
    if env.get("WAFER_OAUTH_APPID"):  # the official account, if another
        apps[env["WAFER_OAUTH_APPID"]] = env.get("WAFER_OAUTH_APP_SECRET") or DEMO_APP_SECRET
    try:
        return FakeWeChat(apps=apps).serve(port=port)  # on 127.0.0.1
    except OSError as exc:
        raise port_failed(exc, "127.0.0.1", port, "--fake-port") from None


def _banner(framework: str, base: str, config: WaferConfig, fake_url: str | None) -> str:
    return "\n".join(
        [
            f"wafer_py demo ({framework}) on {base}",
            f"  login:          {base}{config.login_path}   (X-WX-Code header)",
            f"  protected:      {base}/weapp/user   (X-WX-Skey, or X-WX-Id + X-WX-Skey)",
            f"  web page:       {base}/web/profile   (open in a browser: WeChat web OAuth)",
            f"  session store:  {redact_url(config.store_url)}",
            f"  WeChat API:     {config.api_base}" + ("   (the fake WeChat)" if fake_url else ""),
            f"  AppID:          {config.appid}",
            _try_it(base, fake_url, config.appid),
            "  Ctrl-C stops it.",
        ]
    )


def _serve(framework: str, app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on the listening ``sock`` until Ctrl-C."""
    if framework == "flask":
        from werkzeug.serving import make_server

        host, port = sock.getsockname()[:2]
        server = make_server(host, port, app, threaded=True, fd=sock.fileno())
        server.serve_forever()
    else:
        import uvicorn

        uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])


def cmd_sandbox(args: argparse.Namespace) -> int:
    import threading

    from ..fakewechat import FakeWeChat

    appid = args.appid or os.environ.get("WAFER_APPID") or DEMO_APPID
    secret = args.secret or os.environ.get("WAFER_APP_SECRET") or DEMO_APP_SECRET
    fake = FakeWeChat(apps={appid: secret})
    try:
        server = fake.serve(host=args.host, port=args.port)
    except OSError as exc:
        raise port_failed(exc, args.host, args.port, "--port") from None
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
    demo.add_argument(
        "--framework",
        choices=("starlette", "flask", "django"),
        default="starlette",
        help="the example served (default: starlette)",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="the app's address (its fake WeChat: 127.0.0.1)"
    )
    demo.add_argument(
        "--port", type=int, default=8000, help="the app's port (default 8000; 0: any free port)"
    )
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
    sandbox.add_argument("--port", type=int, default=8900, help="default 8900; 0: any free port")
    sandbox.add_argument(
        "--appid",
        default=None,
        help="the app the fake knows (default: WAFER_APPID, else the demo's)",
    )
    sandbox.add_argument(
        "--secret",
        default=None,
        help="its AppSecret (default: WAFER_APP_SECRET, else the demo's)",
    )
    sandbox.set_defaults(func=cmd_sandbox)

    token.add_parser(sub)  # wafer-py token get | refresh
    sessions.add_parser(sub)  # wafer-py sessions list | revoke | purge | stats
    migrate.add_parser(sub)  # wafer-py migrate-wafer
    check.add_parser(sub)  # wafer-py check
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CommandFailed as exc:
        print(f"wafer-py {args.command}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # configuration errors: say what is wrong, no traceback
        print(f"wafer-py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
