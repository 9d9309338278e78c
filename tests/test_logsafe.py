"""The one URL-redaction function: every password form is masked, nothing else changes."""

from __future__ import annotations

import pytest

from wafer_py.logsafe import redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://alice:s3cret@cache:6390/2", "redis://alice:***@cache:6390/2"),
        ("rediss://alice:p%40ss@cache/0", "rediss://alice:***@cache/0"),
        ("unix:///run/redis.sock?password=s3cret&db=2", "unix:///run/redis.sock?password=***&db=2"),
        (
            "redis+sentinel://:s3cret@s1:26379,s2:26379,[::1]:26380/mymaster/0",
            "redis+sentinel://:***@s1:26379,s2:26379,[::1]:26380/mymaster/0",
        ),
        (
            "rediss+sentinel://app:s3cret@s1,s2/mymaster?sentinel_password=s3cret&db=1",
            "rediss+sentinel://app:***@s1,s2/mymaster?sentinel_password=***&db=1",
        ),
        (
            "redis+sentinel://s1:26379,s2/m?sentinel_password=s3cret",
            "redis+sentinel://s1:26379,s2/m?sentinel_password=***",
        ),
        ("postgresql://wafer:s3cret@db:5432/app", "postgresql://wafer:***@db:5432/app"),
        (
            "postgresql+psycopg://u:s3cret@[::1]:5432/app",
            "postgresql+psycopg://u:***@[::1]:5432/app",
        ),
        ("mysql://root:s3cret@127.0.0.1:3306/cAuth", "mysql://root:***@127.0.0.1:3306/cAuth"),
        ("mariadb://u:pa:ss@word@h/db", "mariadb://u:***@h/db"),
        ("mysql://u@h/db?passwd=s3cret", "mysql://u@h/db?passwd=***"),
        (
            "postgresql://u@h/db?Password=s3cret&sslmode=require",
            "postgresql://u@h/db?Password=***&sslmode=require",
        ),
        ("redis://h/0?password=", "redis://h/0?password=***"),
    ],
)
def test_every_password_form_is_masked(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "sqlite:///wafer.db",
        "sqlite:////abs/path.db",
        "redis://alice@cache:6379/0",
        "unix:///run/redis.sock?db=2",
        "mysql://root@127.0.0.1:3306/cAuth?charset=utf8mb4",
        "postgresql://u@h/db?sslmode=require&application_name=a%20b",
    ],
)
def test_a_url_without_a_password_is_unchanged(url: str) -> None:
    assert redact_url(url) == url


def test_the_stores_the_migration_and_the_cli_all_use_it() -> None:
    import wafer_py.cli.check
    import wafer_py.cli.legacytable
    import wafer_py.cli.migrate
    import wafer_py.cli.opening
    import wafer_py.stores.redis_clients
    import wafer_py.stores.sql

    for module in (
        wafer_py.cli.migrate,
        wafer_py.cli.opening,  # opens the store of every command (sessions, token, check)
        wafer_py.cli.check,
        wafer_py.cli.legacytable,  # reads the old Wafer table (cli.legacy imports its users)
        wafer_py.stores.redis_clients,
        wafer_py.stores.sql,
    ):
        assert module.redact_url is redact_url  # type: ignore[attr-defined]
