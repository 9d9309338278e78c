"""The package's layout: its wings (wechat/, web/, cli/), the old module paths kept for one
release, the names kept where split modules held them, and modules short enough to read."""

from __future__ import annotations

import importlib
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wafer_py
from wafer_py._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module_with_a_warning(old: str) -> None:
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({MOVED[old]!r})\n"
        "assert old is new, (old, new)\n"
        "assert any(issubclass(w.category, DeprecationWarning) and "
        f"{MOVED[old]!r} in str(w.message) for w in seen), [str(w.message) for w in seen]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_wings_keep_the_names_users_import() -> None:
    wechat = importlib.import_module("wafer_py.wechat")
    client = importlib.import_module("wafer_py.wechat.client")
    assert wechat.WeChatClient is client.WeChatClient
    assert wechat.Code2Session is client.Code2Session
    cli = importlib.import_module("wafer_py.cli")
    assert cli.main is importlib.import_module("wafer_py.cli.main").main
    for name in ("flask", "starlette", "asgi", "wsgi"):
        assert importlib.import_module(f"wafer_py.{name}")


def test_the_wechat_package_imports_requests_only_with_the_client() -> None:
    code = (
        "import sys, wafer_py, wafer_py.wechat, wafer_py.wechat.tokens\n"
        "assert 'requests' not in sys.modules, 'requests imported with the package'\n"
        "wafer_py.wechat.WeChatClient\n"
        "assert 'requests' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("adapter", "foreign"),
    [("wafer_py.flask", ("starlette",)), ("wafer_py.starlette", ("werkzeug", "flask"))],
)
def test_an_adapter_imports_no_other_framework(adapter: str, foreign: tuple[str, ...]) -> None:
    code = (
        f"import sys, {adapter}\n"
        f"bad = [m for m in {foreign!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- one idea per module, about 300 lines at most (STYLE.md) ---------------------------

#: Lines past which a module is too long to read in one sitting.
MODULE_LINES = 350

#: The modules still longer, each with why it is not split yet (none now: keep it so).
TOO_LONG: dict[str, str] = {}


def _module_lines() -> dict[str, int]:
    root = Path(wafer_py.__file__).parent
    return {
        path.relative_to(root).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }


def test_modules_are_short_enough_to_read_in_one_sitting() -> None:
    lines = _module_lines()
    long = {name for name, count in lines.items() if count > MODULE_LINES}
    assert long - TOO_LONG.keys() == set(), {name: lines[name] for name in long - TOO_LONG.keys()}
    stale = {name for name in TOO_LONG if lines.get(name, 0) <= MODULE_LINES}
    assert not stale, f"take these off TOO_LONG, they are short now (or gone): {sorted(stale)}"


# -- names kept where users import them from -------------------------------------------

KEPT = {
    "wafer_py.flask": [
        "Wafer",
        "current_user",
        "current_identity",
        "get_current_user",
        "login_required",
        "wafer_state",
        "fetch_phone_number",
        "set_profile",
        "upload_avatar",
        "avatar_response",
        "revoke_session",
        "error_response",
        "WaferWeb",
        "web_login_required",
        "current_web_user",
        "get_web_user",
    ],
    "wafer_py.starlette": [
        "WaferMiddleware",
        "WaferUser",
        "SCOPE_KEY",
        "get_current_user",
        "login_required",
        "require_user",
        "wafer_state",
        "fetch_phone_number",
        "set_profile",
        "upload_avatar",
        "avatar_response",
        "revoke_session",
        "error_response",
        "WaferWeb",
        "web_login_required",
        "get_web_user",
        "WEB_USER_KEY",
        "Endpoint",
        "AsyncEndpoint",
    ],
    "wafer_py.auth": ["WaferAuth", "Credentials", "Authenticated", "LoginResult"],
    "wafer_py.web.login": [
        "WebLogin",
        "WebUser",
        "WebAnswer",
        "WebAccess",
        "COOKIE_NAME",
        "CALLBACK_PATH",
        "CONFIRM_BODY_LIMIT",
        "local_path",
    ],
    "wafer_py.protocol": [
        "MAGIC_ID",
        "HEADER_CODE",
        "HEADER_SKEY",
        "WAFER_HEADERS",
        "WaferProtocol",
        "WaferResponse",
        "RequestState",
        "ANONYMOUS",
        "Route",
        "PathMatcher",
        "login_body",
        "error_response",
        "read_credentials",
        "read_encrypted",
        "path_forms",
        "path_matcher",
    ],
    "wafer_py.web.oauth": [
        "WeChatOAuth",
        "OAuthToken",
        "OAuthUserInfo",
        "OAuthCallback",
        "AuthorizeURL",
        "Scope",
        "Lang",
        "SCOPES",
        "LANGS",
        "ACCESS_TOKEN_TTL",
        "REFRESH_TOKEN_TTL",
        "parse_callback",
        "is_valid_state",
    ],
    "wafer_py.testing": [
        "SessionStoreContract",
        "EntryStoreContract",
        "StoreContract",
        "make_session",
        "run_threads",
    ],
    "wafer_py.stores.sqlite": ["SQLiteStore", "MMAP_SIZE", "PRIVATE_MODE"],
    "wafer_py.stores.sql": ["SQLStore", "TABLES", "_poller", "redact_url"],
}


@pytest.mark.parametrize(
    ("module", "name"), [(module, name) for module, names in KEPT.items() for name in names]
)
def test_a_split_module_still_names_what_it_held(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_the_auth_value_types_belong_to_wafer_py_auth() -> None:
    """Written in wafer_py._auth.identity; reprs, pickles and type hints point where users
    import them from."""
    import typing

    from wafer_py.auth import Authenticated, Credentials, LoginResult

    for cls in (Credentials, Authenticated, LoginResult):
        assert cls.__module__ == "wafer_py.auth", cls
        assert typing.get_type_hints(cls), cls
    data = pickle.dumps(Credentials("skey", "id"))
    assert b"wafer_py.auth" in data and b"_auth.identity" not in data
    assert pickle.loads(data) == ("skey", "id")


def test_the_api_page_lists_every_documented_member_of_waferauth() -> None:
    """WaferAuth's methods are written in its parts (wafer_py._auth), so docs/api/auth.md
    lists them by name, in reading order: a new one must be added there."""
    from wafer_py.auth import WaferAuth

    page = Path(__file__).parents[1] / "docs" / "api" / "auth.md"
    listed = re.findall(r"^ +- (\w+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    documented = {
        name
        for name in dir(WaferAuth)
        if not name.startswith("_") and getattr(WaferAuth, name).__doc__
    }
    assert set(listed) == documented


_IMPORTS_ERRORS = re.compile(r"^\s*(from|import)\s+[\w.]*\b_errors\b", re.MULTILINE)


def test_the_error_ladder_is_imported_from_one_place() -> None:
    exceptions = importlib.import_module("wafer_py.exceptions")
    for name in exceptions.__all__:
        assert getattr(exceptions, name).__module__ == "wafer_py.exceptions", name
    root = Path(wafer_py.__file__).parent
    outside = [
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if _IMPORTS_ERRORS.search(path.read_text(encoding="utf-8"))
        and path.parent.name != "_errors"
        and path.name != "exceptions.py"
    ]
    assert outside == [], "import errors from wafer_py.exceptions, not wafer_py._errors"


def test_an_error_pickles_as_the_class_users_import() -> None:
    from wafer_py.exceptions import InvalidCode, StoreUnavailable, WebSessionExpired

    for exc in (
        InvalidCode(40029, "bad rid: 1"),
        StoreUnavailable(detail="down"),
        WebSessionExpired(),
    ):
        data = pickle.dumps(exc)
        assert b"wafer_py.exceptions" in data and b"_errors" not in data
        back = pickle.loads(data)
        assert type(back) is type(exc) and vars(back) == vars(exc)
