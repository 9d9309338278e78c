"""The private MariaDB of the outage tests starts wherever the test's directory is."""

from __future__ import annotations

from pathlib import Path

from tests.support.mariadb_instance import MariaDBInstance, require_mariadb_instance


def test_a_deep_directory_still_gets_a_socket(tmp_path: Path) -> None:
    """A Unix socket's path holds 107 bytes at most: under a deep directory (pytest-xdist
    adds ``popen-gw1/`` to every test's, a long test name a long one) the server once
    refused to start ("The socket file path is too long")."""
    require_mariadb_instance()
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with MariaDBInstance(deep) as db:
        assert db.admin("SELECT 1") == [(1,)]
        assert db.root.parent == deep  # the data stays where the test put it
        socket_dir = db.socket.parent
    assert not socket_dir.exists()  # and nothing is left behind
