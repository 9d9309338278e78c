"""Keep secrets out of log lines, reprs and error messages.

WeChat's APIs take the AppSecret, codes and tokens in the query string, and urllib3 logs
request lines at DEBUG: :class:`RedactSecrets` masks those parameters in any record of the
loggers it is installed on. :func:`redact_url` masks the password of a store or database
URL, the one function every store, the migration and the CLI use for that.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["RedactSecrets", "install_redaction", "redact", "redact_url"]

_SECRET_PARAMS = re.compile(
    r"\b(secret|appsecret|js_code|code|access_token|refresh_token|session_key|signature)"
    r"=[^&\s\"']+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters replaced by ``***``."""
    return _SECRET_PARAMS.sub(r"\1=***", text)


#: Query options that carry a password (redis-py's, Sentinel's and the SQL drivers'
#: spellings).
_PASSWORD_OPTIONS = frozenset({"password", "passwd", "pass", "pwd", "sentinel_password"})


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: in ``user:pass@`` (also before a
    list of hosts, ``redis+sentinel://:pass@h1,h2/name``) and in query options
    (``?password=``, ``?sentinel_password=``). A URL without a password is returned
    unchanged.

    Only the password goes: scheme, user, host, port, path and the other options stay,
    so the operator can still tell which server is meant.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")  # a password may itself hold an '@'
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret_option = any(k.lower() in _PASSWORD_OPTIONS for k, _ in query)
    if netloc == parts.netloc and not secret_option:
        return url
    text = f"{parts.scheme}://{netloc}{parts.path}"  # not urlunsplit: it drops unix:///'s //
    if parts.query:
        text += "?" + (
            urlencode(
                [(k, "***" if k.lower() in _PASSWORD_OPTIONS else v) for k, v in query],
                safe="*",
            )
            if secret_option
            else parts.query
        )
    if parts.fragment:
        text += "#" + parts.fragment
    return text


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
