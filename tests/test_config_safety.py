"""Unsafe defaults refused at start (issue #11, items 4 and 5, and the dependency floors).

* No AppID or AppSecret: the app stops naming ``WAFER_APPID`` / ``WAFER_APP_SECRET``; the
  fake's demo app stands in only with ``fake_wechat=True`` and a loopback ``api_base``.
* A store shared between processes (Redis, PostgreSQL, MySQL) without ``WAFER_SECRET_KEY``,
  or any key under 32 characters: the app stops naming ``WAFER_SECRET_KEY``.
* ``wafer-py demo`` with production variables set refuses (status 2); the fake WeChat is
  served on loopback only.
* setup.cfg's lower bounds exclude the releases with published CVEs.
"""

from __future__ import annotations

import configparser
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from packaging.requirements import Requirement

from tests.support import services
from tests.support.app_process import ROOT, app_process
from tests.support.constants import DEMO_APP, TEST_SECRET
from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEFAULT_API_BASE, DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.stores import MemoryStore, RedisStore, SessionStore, SQLiteStore, SQLStore, open_store
from wafer_py.web.login import WebLogin

SHARED_KINDS = ("redis", "postgres", "mysql")
#: A key long enough (32 characters and more).
GOOD_KEY = "k" * 32


@pytest.fixture
def no_wafer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment without any ``WAFER_*`` variable."""
    for name in list(os.environ):
        if name.startswith("WAFER_"):
            monkeypatch.delenv(name)


def _demo_env() -> dict[str, str]:
    return {"WAFER_APPID": DEMO_APPID, "WAFER_APP_SECRET": DEMO_APP_SECRET}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wafer_py(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real command; a process that does not exit in 30 s fails the test."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    return subprocess.run(
        [sys.executable, "-m", "wafer_py", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


# ------------------------------------------------------------------ AppID and AppSecret


def test_no_appid_stops_the_app_naming_it(no_wafer_env: None) -> None:
    with pytest.raises(ValueError, match="WAFER_APPID"):
        WaferAuth(WaferConfig.from_env())
    with pytest.raises(ValueError, match="WAFER_APPID"):
        WaferAuth(WaferConfig.from_env(), store=MemoryStore())
    with pytest.raises(ValueError, match="WAFER_APPID"):
        WaferAuth(store="memory://")  # the default config is no exception
    with pytest.raises(ValueError, match="WAFER_APP_SECRET"):
        WaferConfig.from_env({"WAFER_APPID": "wx1234567890abcdef"})
    with pytest.raises(ValueError, match="WAFER_APP_SECRET"):
        WaferConfig(appid="wx1234567890abcdef", api_base="http://127.0.0.1:9")


def test_a_local_api_base_alone_does_not_bring_the_demo_app() -> None:
    """Only ``fake_wechat=True``, set in code, does: no variable can."""
    env = {"WAFER_WECHAT_API_BASE": "http://127.0.0.1:9", "WAFER_FAKE_WECHAT": "1"}
    with pytest.raises(ValueError, match="WAFER_APPID"):
        WaferConfig.from_env(env)


def test_the_demo_app_stands_in_only_for_a_fake_wechat_on_loopback() -> None:
    for base in ("http://127.0.0.1:8900", "http://[::1]:8900", "http://localhost:8900"):
        config = WaferConfig(api_base=base, fake_wechat=True)
        assert (config.appid, config.app_secret) == (DEMO_APPID, DEMO_APP_SECRET)
    for base in (DEFAULT_API_BASE, "http://10.0.0.5:8900", "http://127.0.0.1.example.com"):
        with pytest.raises(ValueError, match="loopback"):
            WaferConfig(api_base=base, fake_wechat=True)
    given = WaferConfig(
        api_base="http://127.0.0.1:1", fake_wechat=True, appid="wxown", app_secret="s"
    )
    assert (given.appid, given.app_secret) == ("wxown", "s")  # what is given is kept
    assert DEMO_APP_SECRET not in repr(WaferConfig(api_base="http://127.0.0.1:1", fake_wechat=True))


def test_an_example_app_without_appid_does_not_start(tmp_path: Path) -> None:
    """A real server process configured by variables, WAFER_APPID left out."""
    with (
        pytest.raises(RuntimeError, match="WAFER_APPID is not set"),
        app_process(
            "starlette",
            store_url=f"sqlite:///{tmp_path}/s.db",
            api_base="http://127.0.0.1:9",
            log_dir=tmp_path,
            WAFER_APPID="",
        ),
    ):
        pass


def test_the_sandbox_prints_the_variables_to_point_a_server_at_it(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wafer_py", "sandbox", "--port", str(port)],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("WAFER_")},
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = next(line for line in proc.stdout if "point your server at it" in line)
        variables = dict(word.split("=", 1) for word in line.split() if word.startswith("WAFER_"))
        assert variables == {
            "WAFER_WECHAT_API_BASE": f"http://127.0.0.1:{port}",
            "WAFER_APPID": DEMO_APPID,
            "WAFER_APP_SECRET": DEMO_APP_SECRET,
        }
        assert (
            WaferConfig.from_env({**variables, "WAFER_STORE_URL": "memory://"}).appid == DEMO_APPID
        )
    finally:
        proc.terminate()
        proc.wait(15)


# ----------------------------------------------------------------------- secret keys


def test_each_store_class_says_whether_it_is_shared() -> None:
    assert (MemoryStore.shared, SQLiteStore.shared) == (False, False)
    assert (RedisStore.shared, SQLStore.shared) == (True, True)
    assert SessionStore.shared is True  # a backend that does not say is taken as shared

    class Networked(MemoryStore):  # any backend that declares itself shared
        shared: ClassVar[bool] = True

    with pytest.raises(ValueError, match="WAFER_SECRET_KEY is not set"):
        WaferAuth(WaferConfig(**DEMO_APP), store=Networked())


@pytest.fixture(params=SHARED_KINDS)
def shared_store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with services.fresh_store_url(request.param) as url:
        yield url


def test_a_shared_store_without_a_secret_key_stops_the_app(shared_store_url: str) -> None:
    config = WaferConfig(**DEMO_APP, store_url=shared_store_url)
    with pytest.raises(ValueError, match="WAFER_SECRET_KEY is not set"):
        WaferAuth(config)
    store = open_store(shared_store_url)
    try:
        with pytest.raises(ValueError, match="WAFER_SECRET_KEY is not set"):
            WaferAuth(config, store=store)
        with pytest.raises(ValueError, match="WAFER_SECRET_KEY is not set"):
            WebLogin(config, store=store)  # web sessions too
        auth = WaferAuth(config.replace(secret_keys=(GOOD_KEY,)), store=store)
        assert auth._keys == (GOOD_KEY,)
    finally:
        store.close()


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_servers_on_one_redis_without_a_key_do_not_start(framework: str, tmp_path: Path) -> None:
    """Before: each process made up a key and rejected the other's sessions."""
    with (
        services.fresh_store_url("redis") as url,
        pytest.raises(RuntimeError, match="WAFER_SECRET_KEY is not set"),
        app_process(
            framework,
            store_url=url,
            api_base="http://127.0.0.1:9",
            log_dir=tmp_path,
            WAFER_SECRET_KEY="",
        ),
    ):
        pass


def test_a_key_under_32_characters_is_refused(tmp_path: Path) -> None:
    short = "x" * 31
    for keys in ((short,), (GOOD_KEY, short), ("x",)):
        with pytest.raises(ValueError, match="WAFER_SECRET_KEY") as caught:
            WaferConfig(**DEMO_APP, secret_keys=keys)
        assert short not in str(caught.value) and "'x'" not in str(caught.value)
    with pytest.raises(ValueError, match="WAFER_SECRET_KEY: key 2 of 2"):
        WaferConfig.from_env({**_demo_env(), "WAFER_SECRET_KEY": f"{GOOD_KEY}, {short}"})
    with pytest.raises(ValueError, match="WAFER_SECRET_KEY"):
        WaferConfig.from_env({**_demo_env(), "WAFER_SECRET_KEY": "x"})
    store = SQLiteStore(tmp_path / "s.db")
    try:  # a key given to the web login directly is held to the same rule
        with pytest.raises(ValueError, match="WAFER_SECRET_KEY"):
            WebLogin(WaferConfig(**DEMO_APP), store=store, secret_keys=[short])
    finally:
        store.close()
    assert WaferConfig(**DEMO_APP, secret_keys=(GOOD_KEY,)).secret_keys == (GOOD_KEY,)


def test_one_machine_stores_still_run_without_a_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wafer_py")
    config = WaferConfig(**DEMO_APP)
    sqlite = WaferAuth(config, store=f"sqlite:///{tmp_path}/one.db")
    again = WaferAuth(config, store=f"sqlite:///{tmp_path}/one.db")
    memory = WaferAuth(config, store="memory://")
    try:
        assert sqlite._keys == again._keys  # the key file beside the database
        assert (tmp_path / "one.db.key").read_text().strip() == sqlite._keys[0]
        assert len(memory._keys[0]) >= 32 and memory._keys != sqlite._keys
        assert "generated beside the SQLite store" in caplog.text
        assert "using a random one" in caplog.text
    finally:
        for auth in (sqlite, again, memory):
            auth.close()


# --------------------------------------------------------- the demo in production


PRODUCTION = {
    "WAFER_APPID": "wx00112233445566ff",
    "WAFER_APP_SECRET": "0123456789abcdef0123456789abcdef",
    "WAFER_SECRET_KEY": TEST_SECRET,
}


def test_the_demo_refuses_to_run_in_production(tmp_path: Path) -> None:
    store = tmp_path / "production.db"
    env = {**PRODUCTION, "WAFER_STORE_URL": f"sqlite:///{store}"}
    port = _free_port()
    result = _wafer_py(["demo", "--port", str(port)], env, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    for name in ("WAFER_APPID", "WAFER_APP_SECRET", "WAFER_SECRET_KEY", "WAFER_STORE_URL"):
        assert name in result.stderr
    assert "WAFER_WECHAT_API_BASE" in result.stderr
    assert "Traceback" not in result.stderr
    assert PRODUCTION["WAFER_APP_SECRET"] not in result.stderr + result.stdout
    assert TEST_SECRET not in result.stderr + result.stdout
    assert not store.exists()  # nothing was minted into it, nothing was even opened


@pytest.mark.parametrize(
    "name", ["WAFER_APPID", "WAFER_APP_SECRET", "WAFER_SECRET_KEY", "WAFER_STORE_URL"]
)
def test_any_one_production_variable_is_enough_to_refuse(name: str, tmp_path: Path) -> None:
    value = PRODUCTION.get(name, f"sqlite:///{tmp_path}/production.db")
    result = _wafer_py(["demo", "--port", str(_free_port())], {name: value}, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"refusing to start a fake WeChat: {name} is set" in result.stderr


def test_the_demo_fake_is_on_loopback_whatever_the_apps_host(tmp_path: Path) -> None:
    """``--host`` places the example app; its fake WeChat stays on 127.0.0.1."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wafer_py", "demo", "--host", "127.0.0.2", "--port", str(port)],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("WAFER_")},
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "WeChat API:" in line:
                break
        api = next(line for line in lines if "WeChat API:" in line).split()[2]
        assert api.startswith("http://127.0.0.1:"), lines
        assert requests.get(api + "/_fake/", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "localhost.example"])
def test_the_fake_wechat_serves_loopback_only(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeWeChat().serve(host=host)
    result = _wafer_py(["sandbox", "--host", host, "--port", str(_free_port())], {}, tmp_path)
    assert result.returncode == 2 and "loopback" in result.stderr, result.stderr
    module = subprocess.run(
        [sys.executable, "-m", "wafer_py.fakewechat", "--host", host, "--port", "0"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert module.returncode == 2 and "loopback" in module.stderr, module.stderr


# ------------------------------------------------------------- dependency floors

#: (package, a release with a published CVE, the release that fixed it, what). Each
#: floor in setup.cfg refuses the first in every section that names the package.
VULNERABLE = [
    ("werkzeug", "3.0.5", "3.0.6", "CVE-2024-49766, CVE-2024-49767"),
    ("werkzeug", "3.1.5", "3.1.6", "GHSA-hgf8-39gv-g3f2, GHSA-87hc-h4r5-73f7, GHSA-29vq-49wr-vm6x"),
    ("starlette", "0.39.2", "0.40.0", "CVE-2024-47874"),
    ("starlette", "0.49.0", "0.49.1", "CVE-2025-62727"),
    ("starlette", "1.0.0", "1.0.1", "CVE-2026-48710"),
    ("starlette", "1.3.0", "1.3.1", "CVE-2026-54282, CVE-2026-54283"),
    ("requests", "2.32.3", "2.32.4", "CVE-2024-47081"),
    ("requests", "2.32.5", "2.33.0", "CVE-2026-25645"),
    ("cryptography", "42.0.3", "42.0.4", "CVE-2024-26130"),
    ("cryptography", "44.0.0", "44.0.1", "CVE-2024-12797"),
    ("cryptography", "46.0.4", "46.0.5", "CVE-2026-26007"),
    ("cryptography", "49.0.0", "50.0.0", "CVE-2026-69247"),
    ("h11", "0.15.0", "0.16.0", "CVE-2025-43859"),
    ("flask", "3.1.0", "3.1.1", "CVE-2025-47278"),
    ("django", "4.2.25", "4.2.26", "CVE-2025-64458, CVE-2025-64459"),
    ("flask", "3.1.2", "3.1.3", "GHSA-68rp-wp8r-4726"),
    ("gunicorn", "22.0.0", "23.0.0", "CVE-2024-1135, CVE-2024-6827"),
    ("pymysql", "1.1.0", "1.1.1", "CVE-2024-36039"),
    ("redis", "4.5.3", "4.5.4", "CVE-2023-28858, CVE-2023-28859"),
    ("jinja2", "3.1.5", "3.1.6", "CVE-2025-27516"),
    ("urllib3", "2.6.3", "2.7.0", "CVE-2026-44431, CVE-2026-44432"),
    ("pillow", "10.2.0", "10.3.0", "CVE-2024-28219"),
    ("pillow", "12.2.0", "12.3.0", "heap-overflow and decompression-bomb advisories"),
    ("python-multipart", "0.0.17", "0.0.18", "CVE-2024-53981"),
]


def _sections() -> dict[str, list[Requirement]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    found = {"install_requires": parser.get("options", "install_requires")}
    found.update(parser.items("options.extras_require"))
    return {
        name: [
            Requirement(line.strip())
            for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        for name, text in found.items()
    }


@pytest.mark.parametrize(("package", "vulnerable", "fixed", "what"), VULNERABLE)
def test_dependency_floors_exclude_releases_with_cves(
    package: str, vulnerable: str, fixed: str, what: str
) -> None:
    named = [
        (section, req)
        for section, reqs in _sections().items()
        for req in reqs
        if req.name.lower() == package
    ]
    assert named, f"{package} is in no section of setup.cfg"
    installed = metadata.version(package)  # what the tests run on meets every floor
    for section, req in named:
        assert not req.specifier.contains(vulnerable), f"[{section}] {req} allows {what}"
        assert req.specifier.contains(installed), f"[{section}] {req} refuses {installed}"


def test_every_extra_with_uvicorn_brings_a_safe_h11() -> None:
    sections: dict[str, Any] = _sections()
    with_uvicorn = [s for s, reqs in sections.items() if any(r.name == "uvicorn" for r in reqs)]
    assert with_uvicorn
    for section in with_uvicorn:
        assert any(r.name == "h11" for r in sections[section]), section
