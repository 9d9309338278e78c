"""The error table of docs/protocol.md says what wafer_py answers (wafer_py/answers.py).

Each row names an exception class; its reason, status, error type and ``code`` off the
login path must be the ones :func:`~wafer_py.protocol.error_response` gives, and every
class of :data:`~wafer_py.answers.ANSWERS` must have its row.
"""

from __future__ import annotations

import re

from tests.support.snippets import ROOT
from wafer_py import exceptions
from wafer_py.answers import ANSWERS, ERR_LOGIN_FAILED
from wafer_py.protocol import error_response

_ROW = re.compile(
    r"^\| (?P<situation>[^|]+) \| `(?P<cls>\w+)` \| `(?P<reason>\w+)` \| (?P<status>\d+) "
    r"\| `(?P<error>\w+)` \| (?P<code>-?\d+) \|$"
)


def _rows() -> dict[str, dict[str, str]]:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        if match := _ROW.match(line):
            assert match["cls"] not in rows, f"{match['cls']} has two rows"
            rows[match["cls"]] = match.groupdict()
    return rows


def _instance(cls: type[exceptions.WaferError]) -> exceptions.WaferError:
    if issubclass(cls, exceptions.WeChatAPIError):
        return cls(-2, "documented")  # type: ignore[call-arg]
    return cls()


def test_every_answer_has_a_row_and_every_row_is_right() -> None:
    rows = _rows()
    assert set(rows) == {cls.__name__ for cls in ANSWERS}
    for name, row in rows.items():
        cls = getattr(exceptions, name)
        answer = error_response(_instance(cls))
        assert row["reason"] == cls.reason, name
        assert int(row["status"]) == answer.status, name
        assert row["error"] == answer.body["error"], name
        assert int(row["code"]) == answer.body["code"], name
        login = error_response(_instance(cls), login=True)  # the login path: always -1
        assert (login.body["error"], login.body["code"]) == (ERR_LOGIN_FAILED, -1), name
        assert login.status == answer.status, name
