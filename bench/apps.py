"""The apps under measurement, the same in process and over HTTP.

One "stack" is a small app with one route, ``/<stack>/hello``, that answers who asked:

* ``bare``: the app alone (no session at all: the limit, zero overhead);
* ``cookie``: the framework's signed-cookie session (Starlette's ``SessionMiddleware``,
  Flask's ``session``), the view reading the user's openid from it;
* ``memory``, ``sqlite``, ``redis``, ``postgres``: wafer_py's middleware validating the
  Wafer session headers against that store, the view reading ``request.user``.

A :class:`Suite` holds every stack of one framework (``starlette`` or ``flask``) and the
requests to send each one. ``asgi_server()`` and ``wsgi_server()`` are the factories that
uvicorn and gunicorn load: they build a suite from ``$WAFER_BENCH_SUITE`` (a JSON file
of :func:`suite_config`), write its requests beside it, and serve every stack behind one
dispatcher, so all variants are measured in one server process.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    CACHE_SIZE,
    SECRET,
    Probe,
    base_store,
    drop_bench_store,
    fill,
    note,
    open_bench_store,
)
from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.stores import SessionStore

#: The signing key of the signed-cookie sessions.
COOKIE_SECRET = "benchmark cookie secret, not for production"
#: Headers every request carries, as a load generator sends them.
BASE_HEADERS = {"Host": "127.0.0.1:8000", "User-Agent": "wafer-bench"}


@dataclass(frozen=True)
class Variant:
    """One row of a table: requests to one stack, and what the app must answer them."""

    name: str
    stack: str
    requests: list[dict[str, str]] = field(repr=False)
    expects: list[str] = field(repr=False)
    store: str | None = None
    generation: str | None = None

    @property
    def path(self) -> str:
        return f"/{self.stack}/hello"


def make_auth(store: SessionStore, api_base: str | None = None, **options: Any) -> WaferAuth:
    """An auth for ``store`` with the benchmark's secret key (and the fake WeChat's URL);
    ``options`` are :class:`~wafer_py.WaferConfig` fields. Without a ``session_cache``
    option, no session cache: every validation asks the store (the "+cache" variants
    ask for one)."""
    options.setdefault("session_cache", 0)
    options.setdefault("appid", DEMO_APPID)  # the fake WeChat's app, named explicitly
    options.setdefault("app_secret", DEMO_APP_SECRET)
    config = WaferConfig(secret_keys=(SECRET,), **options)
    if api_base is not None:
        config = config.replace(api_base=api_base)
    return WaferAuth(config, store=store)


def cache_live(auth: WaferAuth, timeout: float = 10.0) -> bool:
    """Start the auth's session cache and wait until its channel is live."""
    cache = auth.session_cache
    if cache is None:
        return False
    deadline = time.monotonic() + timeout
    while cache.token() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -------------------------------------------------------------------- Starlette


def starlette_stack(stack: str, auth: WaferAuth | None) -> Any:
    """The Starlette app of ``stack`` (``auth`` for a wafer_py stack)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from wafer_py.asgi import WaferMiddleware

    async def bare(request: Request) -> JSONResponse:
        return JSONResponse({"who": "anonymous"})

    async def cookie(request: Request) -> JSONResponse:
        return JSONResponse({"who": request.session.get("openid", "anonymous")})

    async def wafer(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"who": user.openid if user.is_authenticated else "anonymous"})

    middleware: list[Middleware] = []
    view: Callable[[Request], Any] = bare
    if stack == "cookie":
        middleware = [Middleware(SessionMiddleware, secret_key=COOKIE_SECRET)]
        view = cookie
    elif auth is not None:
        middleware = [Middleware(WaferMiddleware, auth=auth)]
        view = wafer
    return Starlette(routes=[Route(f"/{stack}/hello", view)], middleware=middleware)


def starlette_cookie(openid: str) -> str:
    """The session cookie Starlette's ``SessionMiddleware`` sets for ``{"openid": ...}``."""
    import itsdangerous

    data = base64.b64encode(json.dumps({"openid": openid}).encode())
    return itsdangerous.TimestampSigner(COOKIE_SECRET).sign(data).decode()


# ------------------------------------------------------------------------ Flask


def flask_stack(stack: str, auth: WaferAuth | None) -> Any:
    """The Flask app of ``stack`` (``auth`` for a wafer_py stack)."""
    from flask import Flask, session

    from wafer_py.flask import Wafer, get_current_user

    app = Flask(f"bench_{stack}")
    route = f"/{stack}/hello"
    if stack == "cookie":
        app.secret_key = COOKIE_SECRET

        @app.get(route)
        def cookie() -> dict[str, str]:
            return {"who": session.get("openid", "anonymous")}

    elif auth is not None:
        Wafer(app, auth)

        @app.get(route)
        def wafer() -> dict[str, str]:
            user = get_current_user()
            return {"who": "anonymous" if user is None else user.openid}

    else:

        @app.get(route)
        def bare() -> dict[str, str]:
            return {"who": "anonymous"}

    return app


def flask_cookie(openid: str) -> str:
    """The session cookie Flask sets for ``{"openid": ...}``."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    app = Flask("bench_cookie")
    app.secret_key = COOKIE_SECRET
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return str(serializer.dumps({"openid": openid}))


# ------------------------------------------------------------------------ suites


@dataclass
class Suite:
    """Every stack of one framework, and the requests of each variant."""

    framework: str
    apps: dict[str, Any]
    variants: list[Variant]
    stores: dict[str, SessionStore]
    auths: dict[str, WaferAuth]

    def close(self) -> None:
        """Stop the session caches' channels; delete the stores' data (keys, tables) and
        close them."""
        for auth in self.auths.values():
            if auth.session_cache is not None:
                auth.session_cache.close()
        for store in self.stores.values():
            drop_bench_store(store)


def build_suite(
    framework: str,
    stores: Iterable[str],
    *,
    sessions: int,
    probes: int,
    tag: str,
    workdir: Path,
    urls: dict[str, str],
) -> Suite:
    """The stacks of ``framework`` with ``stores`` each filled with ``sessions`` sessions,
    ``probes`` of which the requests use (cycled through)."""
    make_stack = starlette_stack if framework == "starlette" else flask_stack
    make_cookie = starlette_cookie if framework == "starlette" else flask_cookie
    openids = [f"o{i:027d}" for i in range(probes)]
    apps = {"bare": make_stack("bare", None), "cookie": make_stack("cookie", None)}
    variants = [
        Variant("bare app", "bare", [dict(BASE_HEADERS)], ["anonymous"]),
        # The bare app sent the session headers it ignores: what reading them costs the
        # server (over HTTP, h11 parses two more header lines).
        Variant(
            "bare app + session headers",
            "bare",
            [{**BASE_HEADERS, "X-WX-Id": "0" * 32, "X-WX-Skey": "0" * 48}],
            ["anonymous"],
        ),
        Variant(
            "signed cookie",
            "cookie",
            [{**BASE_HEADERS, "Cookie": f"session={make_cookie(o)}"} for o in openids],
            openids,
        ),
    ]
    opened: dict[str, SessionStore] = {}
    filled: dict[str, list[Probe]] = {}  # by base store: "redis+cache" shares "redis"'s
    auths: dict[str, WaferAuth] = {}
    try:
        for name in stores:
            # memory+cache is a store of its own (one with the tests' channel)
            base = name if name == "memory+cache" else base_store(name)
            if base not in opened:
                store = open_bench_store(base, f"{tag}_{framework}_{base}", workdir, urls)
                opened[base] = store
                filled[base] = fill(store, sessions, probes=probes)
            store, known = opened[base], filled[base]
            if name.endswith("+cache"):
                auth = make_auth(store, session_cache=CACHE_SIZE)
                if auth.session_cache is None:
                    note(f"note: leaving out {name}: {type(store).__name__} offers no channel")
                    continue
                if not cache_live(auth):
                    note(f"note: leaving out {name}: its channel did not become live")
                    auth.session_cache.close()
                    continue
            else:
                auth = make_auth(store)
            auths[name] = auth
            apps[name] = make_stack(name, auth)
            for generation in ("v1", "v2"):
                variants.append(
                    Variant(
                        f"wafer {name} {generation}",
                        name,
                        [{**BASE_HEADERS, **p.headers(generation)} for p in known],
                        [p.openid for p in known],
                        store=name,
                        generation=generation,
                    )
                )
    except BaseException:
        for store in opened.values():
            drop_bench_store(store)
        raise
    return Suite(framework, apps, variants, opened, auths)


def suite_config(
    path: Path,
    *,
    framework: str,
    stores: list[str],
    sessions: int,
    probes: int,
    tag: str,
    workdir: Path,
    urls: dict[str, str],
) -> Path:
    """Write what a server process needs to build its suite; return where its requests
    will be written once it has (``<path>.requests.json``)."""
    config = {
        "framework": framework,
        "stores": stores,
        "sessions": sessions,
        "probes": probes,
        "tag": tag,
        "workdir": str(workdir),
        "urls": urls,
    }
    path.write_text(json.dumps(config))
    return path.with_suffix(".requests.json")


def _suite_from_env(framework: str) -> Suite:
    path = Path(os.environ["WAFER_BENCH_SUITE"])
    config = json.loads(path.read_text())
    assert config["framework"] == framework
    suite = build_suite(
        framework,
        config["stores"],
        sessions=config["sessions"],
        probes=config["probes"],
        tag=config["tag"],
        workdir=Path(config["workdir"]),
        urls=config["urls"],
    )
    # Written whole under a temporary name, then renamed: the reader never sees half.
    out = path.with_suffix(".requests.json")
    fd, partial = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w") as file:
        json.dump([asdict(v) for v in suite.variants], file)
    os.replace(partial, out)
    return suite


class _ASGIDispatch:
    """Sends ``/<stack>/...`` to that stack's app: the same dict lookup for every variant."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"{message['type']}.complete"})
                if kind == "shutdown":
                    return
        stack = scope["path"].split("/", 2)[1]
        await self.apps[stack](scope, receive, send)


def asgi_server() -> Any:
    """uvicorn's factory: ``uvicorn --factory bench.apps:asgi_server``."""
    return _ASGIDispatch(_suite_from_env("starlette").apps)


def wsgi_server() -> Any:
    """gunicorn's factory: ``gunicorn 'bench.apps:wsgi_server()'``."""
    apps = _suite_from_env("flask").apps

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        stack = environ.get("PATH_INFO", "/").split("/", 2)[1]
        return apps[stack](environ, start_response)

    return dispatch
