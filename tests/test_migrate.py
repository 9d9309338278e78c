"""``wafer-py migrate-wafer``: the users of an original Wafer server's ``cSessionInfo``
table, in a scratch database of the local MariaDB, imported into a wafer_py store.

The tables are created with the original schemas (wafer-protocol.md §2.7 for the v1 PHP
session server, §3.5 for the v2 Node SDK) and filled the way those servers wrote them.
The target stores come from ``TARGETS``: SQLite, and the shared Redis, PostgreSQL and
MariaDB servers.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import services
from tests.support.command import run_command, without_wafer_variables
from tests.support.services import require
from wafer_py.cli.legacy import decode_user_info
from wafer_py.models import User, clean_profile
from wafer_py.stores import open_store

pymysql = pytest.importorskip("pymysql")

# db.sql of tencentyun/wafer-session-server (§2.7): `id` is the primary key, open_id may repeat.
V1_TABLE = """
CREATE TABLE `cSessionInfo` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `uuid` varchar(100) NOT NULL,
  `skey` varchar(100) NOT NULL,
  `create_time` datetime NOT NULL,
  `last_visit_time` datetime NOT NULL,
  `open_id` varchar(100) NOT NULL,
  `session_key` varchar(100) NOT NULL,
  `user_info` varchar(2048) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `auth` (`uuid`,`skey`),
  KEY `weixin` (`open_id`,`session_key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

# cAuth.sql of wafer2-quickstart (§3.5): open_id is the primary key.
V2_TABLE = """
CREATE TABLE `cSessionInfo` (
  `open_id` varchar(100) NOT NULL,
  `uuid` varchar(100) NOT NULL,
  `skey` varchar(100) NOT NULL,
  `create_time` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `last_visit_time` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `session_key` varchar(100) NOT NULL,
  `user_info` varchar(2048) NOT NULL,
  PRIMARY KEY (`open_id`),
  KEY `skey` (`skey`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

APPID = "wx5fa4de0c0ffee000"
ZHANG = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
LI = "oGZUI0Wq3x8SvT5b1Iu9Ht7kq2fA"
WANG = "oGZUI0cAr0lpURg3nEx9pIr3dXyZ"
ZHAO = "oGZUI0Zh4oQbL7cK2mVn8sRt1uWx"
QIAN = "oGZUI0Qi5aNyE3jH6gTf0kPs9dLb"


@contextmanager
def sqlite_target(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path}/sessions.db"


#: name -> a factory of an empty target store's URL (a context manager that cleans up).
TARGETS: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "sqlite": sqlite_target,
    "redis": lambda tmp: services.fresh_store_url("redis"),
    "postgres": lambda tmp: services.fresh_store_url("postgres"),
    "mysql": lambda tmp: services.fresh_store_url("mysql"),
}


def user_info(openid: str, nickname: str, **extra: Any) -> dict[str, Any]:
    """Decrypted user info as WeChat gave it to both servers, watermark included."""
    return {
        "openId": openid,
        "nickName": nickname,
        "gender": 1,
        "language": "zh_CN",
        "city": "Guangzhou",
        "province": "Guangdong",
        "country": "China",
        "avatarUrl": "https://wx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTK/132",
        **extra,
        "watermark": {"timestamp": 1520000000, "appid": APPID},
    }


def v1_user_info(info: dict[str, Any]) -> str:
    """The PHP session server's column: base64 of PHP's json_encode (\\u escapes, \\/)."""
    text = json.dumps(info, separators=(",", ":")).replace("/", "\\/")
    return base64.b64encode(text.encode()).decode()


def v2_user_info(info: dict[str, Any]) -> str:
    """The Node SDK's column: JSON.stringify of the decrypted data."""
    return json.dumps(info, ensure_ascii=False, separators=(",", ":"))


def old_secrets() -> tuple[str, str, str]:
    """uuid, skey, session_key as the originals made them."""
    return secrets.token_hex(16), secrets.token_hex(16), base64.b64encode(os.urandom(16)).decode()


@dataclass
class Source:
    """A scratch database on the MariaDB server."""

    url: str
    conn: Any

    def execute(self, sql: str, *args: Any) -> Any:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
        self.conn.commit()
        return rows

    def unix(self, when: str) -> float:
        return float(self.execute("SELECT UNIX_TIMESTAMP(%s)", when)[0][0])

    def old_values(self) -> list[str]:
        return [
            v for row in self.execute("SELECT skey, session_key FROM cSessionInfo") for v in row
        ]


@pytest.fixture
def source() -> Iterator[Source]:
    base = urlsplit(require("mysql"))
    name = f"wafer_migrate_{secrets.token_hex(4)}"
    options: dict[str, Any] = {
        "host": base.hostname or "127.0.0.1",
        "port": base.port or 3306,
        "user": base.username or "root",
        "password": base.password or "",
        "charset": "utf8mb4",
    }
    admin = pymysql.connect(**options)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn = pymysql.connect(database=name, **options)
        try:
            yield Source(base._replace(path=f"/{name}").geturl(), conn)
        finally:
            conn.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with TARGETS[request.param](tmp_path) as url:
        yield url


def fill_v1(source: Source) -> dict[str, dict[str, Any]]:
    """The PHP session server's table; returns the user info expected per openid."""
    source.execute(V1_TABLE)
    zhang = user_info(ZHANG, "张三", unionId="oU9sD0x1ZhangSanUnionId0001")
    li_old = user_info(LI, "旧昵称")
    li_new = user_info(LI, "李四 🐱", city="深圳")
    wang = user_info(WANG, "王五")
    broken = v1_user_info(wang)[:40] + "%%%"  # cut short, as a full varchar(2048) would be
    qian = user_info(ZHANG, "钱七")  # a profile that names another user
    rows = [
        (ZHANG, v1_user_info(zhang), "2018-03-01 10:00:00", "2018-03-20 09:00:00"),
        (LI, v1_user_info(li_old), "2018-01-05 08:00:00", "2018-01-06 08:00:00"),
        (LI, v1_user_info(li_new), "2018-05-01 12:00:00", "2018-05-02 12:30:00"),
        (WANG, broken, "2018-02-01 00:00:00", "2018-02-01 00:00:00"),
        ("", v1_user_info(user_info("", "无名")), "2018-02-01 00:00:00", "2018-02-01 00:00:00"),
        (ZHAO, "", "2018-04-01 00:00:00", "2018-04-01 00:00:00"),
        (QIAN, v1_user_info(qian), "2018-04-02 00:00:00", "2018-04-02 00:00:00"),
    ]
    for openid, info, created, visited in rows:
        uuid, skey, session_key = old_secrets()
        source.execute(
            "INSERT INTO cSessionInfo (uuid, skey, create_time, last_visit_time, open_id, "
            "session_key, user_info) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            uuid,
            skey,
            created,
            visited,
            openid,
            session_key,
            info,
        )
    return {ZHANG: zhang, LI: li_new, WANG: {}, ZHAO: {}, QIAN: {}}


def fill_v2(source: Source) -> dict[str, dict[str, Any]]:
    """The Node SDK's table; returns the user info expected per openid."""
    source.execute(V2_TABLE)
    zhang = user_info(ZHANG, "张三", unionId="oU9sD0x1ZhangSanUnionId0001")
    li = user_info(LI, "李四 🐱")
    rows = [
        (ZHANG, v2_user_info(zhang), "2018-03-01 10:00:00"),
        (LI, v2_user_info(li), "2018-05-01 12:00:00"),
        (WANG, v2_user_info(user_info(WANG, "王五"))[:100], "2018-02-01 00:00:00"),
        ("", v2_user_info(user_info("", "无名")), "2018-02-01 00:00:00"),
    ]
    for openid, info, created in rows:
        uuid, skey, session_key = old_secrets()
        source.execute(
            "INSERT INTO cSessionInfo (open_id, uuid, skey, create_time, last_visit_time, "
            "session_key, user_info) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            openid,
            uuid,
            skey,
            created,
            created,
            session_key,
            info,
        )
    return {ZHANG: zhang, LI: li, WANG: {}}


def migrate(*args: str) -> subprocess.CompletedProcess[str]:
    """``wafer-py migrate-wafer <args>`` (in this process), configured by its flags alone."""
    return run_command("migrate-wafer", *args, env=without_wafer_variables())


def run_json(source: Source, target: str, *args: str) -> dict[str, Any]:
    result = migrate("--from", source.url, "--store", target, "--json", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def users_of(target: str, openids: list[str]) -> dict[str, User | None]:
    with open_store(target) as store:
        return {openid: store.get_user(openid) for openid in openids}


def assert_imported(
    source: Source, target: str, expected: dict[str, dict[str, Any]], created: dict[str, str]
) -> None:
    users = users_of(target, list(expected))
    for openid, info in expected.items():
        user = users[openid]
        assert user is not None, openid
        assert user.profile == clean_profile(info)
        assert user.unionid == info.get("unionId")
        assert user.created_at == source.unix(created[openid])
    with open_store(target) as store:
        stats = store.stats(time.time())
        assert (stats.users, stats.sessions) == (len(expected), 0)
    # No old skey or session_key made it into the store.
    path = urlsplit(target).path[1:]
    if target.startswith("sqlite:") and Path(path).exists():
        files = [Path(path), Path(path + "-wal")]
        stored = b"".join(file.read_bytes() for file in files if file.exists())
        for value in source.old_values():
            assert value.encode() not in stored


def test_v1_table_of_the_php_session_server(source: Source, target: str) -> None:
    expected = fill_v1(source)
    report = run_json(source, target)
    assert report == {
        "dry_run": False,
        "schema": "v1",
        "rows_read": 7,
        "imported": 5,
        "already_present": 0,
        "unionids_added": 0,
        "duplicate_rows": 1,
        "without_profile": 3,
        "without_profile_reasons": {
            "unreadable user_info": 1,
            "empty user_info": 1,
            "user_info names another openId": 1,
        },
        "skipped": 1,
        "skipped_reasons": {"empty open_id": 1},
    }
    created = {
        ZHANG: "2018-03-01 10:00:00",
        LI: "2018-01-05 08:00:00",  # the earliest row of the two; the profile of the newest
        WANG: "2018-02-01 00:00:00",
        ZHAO: "2018-04-01 00:00:00",
        QIAN: "2018-04-02 00:00:00",
    }
    assert_imported(source, target, expected, created)
    li = users_of(target, [LI])[LI]
    assert li is not None and (li.nickname, li.profile["city"]) == ("李四 🐱", "深圳")


def test_v2_table_of_the_node_sdk(source: Source, target: str) -> None:
    expected = fill_v2(source)
    report = run_json(source, target)
    assert (report["schema"], report["rows_read"], report["imported"]) == ("v2", 4, 3)
    assert report["without_profile_reasons"] == {"unreadable user_info": 1}
    assert (report["duplicate_rows"], report["skipped_reasons"]) == (0, {"empty open_id": 1})
    created = {ZHANG: "2018-03-01 10:00:00", LI: "2018-05-01 12:00:00", WANG: "2018-02-01 00:00:00"}
    assert_imported(source, target, expected, created)
    zhang = users_of(target, [ZHANG])[ZHANG]
    assert zhang is not None and zhang.userinfo()["unionId"] == "oU9sD0x1ZhangSanUnionId0001"
    assert "watermark" not in zhang.profile and "openId" not in zhang.profile


def test_python_m_wafer_py_runs_the_command(source: Source, tmp_path: Path) -> None:
    """The other tests run the command in the test's process; this one as users do, in
    an interpreter of its own, and gets the same report."""
    fill_v2(source)
    env = without_wafer_variables()
    target = f"sqlite:///{tmp_path}/sessions.db"
    args = ["migrate-wafer", "--from", source.url, "--store", target, "--json", "--dry-run"]
    child = subprocess.run(
        [sys.executable, "-m", "wafer_py", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == json.loads(run_command(*args, env=env).stdout)
    assert json.loads(child.stdout)["imported"] == 3


def test_running_twice_imports_nothing_new_and_keeps_present_users(
    source: Source, target: str
) -> None:
    fill_v1(source)
    with open_store(target) as store:
        # Zhang already logged in to the new server, code only: no unionid, a new nickname.
        store.ensure_user(ZHANG, unionid=None, profile={"nickName": "新昵称"}, now=1.9e9)
    first = run_json(source, target)
    assert (first["imported"], first["already_present"], first["unionids_added"]) == (4, 1, 1)
    zhang = users_of(target, [ZHANG])[ZHANG]
    assert zhang is not None
    assert (zhang.profile, zhang.created_at) == ({"nickName": "新昵称"}, 1.9e9)
    assert zhang.unionid == "oU9sD0x1ZhangSanUnionId0001"  # filled in, nothing overwritten
    before = users_of(target, [ZHANG, LI, WANG, ZHAO, QIAN])

    second = run_json(source, target)
    assert (second["imported"], second["already_present"], second["unionids_added"]) == (0, 5, 0)
    assert (second["rows_read"], second["duplicate_rows"], second["skipped"]) == (7, 1, 1)
    assert users_of(target, [ZHANG, LI, WANG, ZHAO, QIAN]) == before


def test_dry_run_writes_nothing(source: Source, target: str, tmp_path: Path) -> None:
    fill_v2(source)
    if target.startswith("sqlite:"):  # a dry run into a store not made yet does not make it
        missing = f"sqlite:///{tmp_path}/not-yet.db"
        report = run_json(source, missing, "--dry-run")
        assert (report["dry_run"], report["imported"]) == (True, 3)
        assert not (tmp_path / "not-yet.db").exists()
    open_store(target).close()
    report = run_json(source, target, "--dry-run")
    assert (report["dry_run"], report["imported"], report["without_profile"]) == (True, 3, 1)
    with open_store(target) as store:
        assert store.stats(time.time()).users == 0
    assert run_json(source, target)["imported"] == 3
    again = run_json(source, target, "--dry-run")
    assert (again["imported"], again["already_present"]) == (0, 3)


def test_the_report_for_people(source: Source, target: str) -> None:
    fill_v1(source)
    result = migrate("--from", source.url, "--table", "cSessionInfo", "--store", target)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0] == f"cSessionInfo at {source.url} (v1 layout, the PHP session server) -> {target}"
    )
    counts = {line[:18].strip(): line[18:].split() for line in lines[1:-1]}
    assert counts["rows read"] == ["7"]
    assert counts["imported"][0] == "5"
    assert "(3 without profile: 1 empty user_info, 1 unreadable user_info, 1 user_info" in lines[2]
    assert counts["duplicate rows"][0] == "1"
    assert counts["skipped rows"] == ["1", "(1", "empty", "open_id)"]
    assert lines[-1] == "Old skeys and session_keys are not imported: each user logs in again once."
    dry = migrate("--from", source.url, "--store", target, "--dry-run")
    assert "dry run: nothing was written" in dry.stdout
    assert "  to import" in dry.stdout and "already present          5" in dry.stdout


def test_a_big_table_is_streamed_with_progress(source: Source, target: str) -> None:
    source.execute(V2_TABLE)
    count = 1500
    with source.conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO cSessionInfo (open_id, uuid, skey, session_key, user_info) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    f"oBulk{i:023d}",
                    *old_secrets(),
                    v2_user_info(user_info(f"oBulk{i:023d}", "用户")),
                )
                for i in range(count)
            ],
        )
    source.conn.commit()
    result = migrate("--from", source.url, "--store", target, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported"] == count
    tenths = [line for line in result.stderr.splitlines() if "rows read" in line]
    assert len(tenths) == 10 and tenths[-1].endswith(f"{count:,}/{count:,} rows read 100%")
    quiet = migrate("--from", source.url, "--store", target, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


# -- failures: one line on stderr, exit status 2 -------------------------------------------
def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wafer-py migrate-wafer: ")
    return lines[0]


def test_a_missing_table_is_one_line(source: Source, target: str) -> None:
    line = one_line_failure(migrate("--from", source.url, "--store", target))
    assert "cSessionInfo' doesn't exist" in line
    source.execute("CREATE TABLE other (id int PRIMARY KEY, name varchar(10))")
    line = one_line_failure(migrate("--from", source.url, "--table", "other", "--store", target))
    assert "no open_id or user_info column" in line


def test_an_unreachable_server_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = "mysql://wafer:s3cr3t-pw@127.0.0.1:1/cAuth"
    line = one_line_failure(migrate("--from", url, "--store", f"sqlite:///{tmp_path}/s.db"))
    assert "cannot connect to mysql://wafer:***@127.0.0.1:1/cAuth" in line
    assert "s3cr3t-pw" not in line
    line = one_line_failure(migrate("--from", "mysql://root@127.0.0.1:3306"))
    assert "the URL names no database" in line


@pytest.mark.parametrize("option", ["password", "passwd", "Password"])
def test_a_password_in_the_query_is_masked_too(tmp_path: Path, option: str) -> None:
    url = f"mysql://wafer@127.0.0.1:1/cAuth?{option}=s3cr3t-pw"
    line = one_line_failure(migrate("--from", url, "--store", f"sqlite:///{tmp_path}/s.db"))
    assert f"{option}=***" in line and "s3cr3t-pw" not in line
    # The store's URL too, in the sessions command's one line.
    store = f"mysql://wafer@127.0.0.1:1/cAuth?{option}=s3cr3t-pw"
    result = run_command("sessions", "stats", "--store", store, env=without_wafer_variables())
    assert result.returncode == 2, result.stderr
    assert "s3cr3t-pw" not in result.stderr + result.stdout


def test_without_pymysql_the_message_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pymysql'] = None; from wafer_py.cli import main; "
        f"sys.exit(main(['migrate-wafer', '--from', 'mysql://root@127.0.0.1/cAuth', "
        f"'--store', 'sqlite:///{tmp_path}/s.db']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "wafer-py migrate-wafer: reading a Wafer table needs PyMySQL: install the sql "
        "extra: pip install -e '.[sql]' in a checkout of wafer_py (pip install "
        "'wafer-session[sql]' once it is published)"
    )


def test_decode_user_info_tells_json_from_base64() -> None:
    info = user_info(ZHANG, "张三")
    assert decode_user_info(v1_user_info(info)) == info
    assert decode_user_info(v2_user_info(info)) == info
    assert decode_user_info(v2_user_info(info).encode()) == info
    for value, reason in [
        (None, "empty user_info"),
        ("  ", "empty user_info"),
        ("bnVsbA==", "empty user_info"),  # base64 of "null"
        ("{not json", "unreadable user_info"),
        ("!!!", "unreadable user_info"),
        (base64.b64encode(b"\xff\xfe").decode(), "unreadable user_info"),
        ('"text"', "unreadable user_info"),
    ]:
        with pytest.raises(ValueError, match=reason):
            decode_user_info(value)
