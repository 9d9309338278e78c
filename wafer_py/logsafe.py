"""Keep secrets out of log lines that other libraries write.

WeChat's APIs take the AppSecret, codes and tokens in the query string, and urllib3 logs
request lines at DEBUG. :class:`RedactSecrets` masks those parameters in any record of the
loggers it is installed on.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactSecrets", "install_redaction", "redact"]

_SECRET_PARAMS = re.compile(
    r"\b(secret|appsecret|js_code|code|access_token|refresh_token|session_key|signature)"
    r"=[^&\s\"']+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters replaced by ``***``."""
    return _SECRET_PARAMS.sub(r"\1=***", text)


class RedactSecrets(logging.Filter):
    """A logging filter that masks secret query parameters in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_INSTALLED: set[str] = set()


def install_redaction(*loggers: str) -> None:
    """Install :class:`RedactSecrets` once on each named logger."""
    for name in loggers:
        if name not in _INSTALLED:
            logging.getLogger(name).addFilter(RedactSecrets())
            _INSTALLED.add(name)
