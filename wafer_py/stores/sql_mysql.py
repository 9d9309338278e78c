"""MySQL/MariaDB connection options: a store URL's query, checked, becomes PyMySQL's
connection parameters, TLS included.

Every option is read here, at the store's start, so a misspelt or malformed one stops
the app with an error naming it instead of failing on the first request. The names are
PyMySQL's (``ssl_ca``, ``connect_timeout``, ...); the asyncio driver
(:mod:`.sql_async_mysql`) gets the same parameters, so both paths connect alike.

TLS: any ``ssl_*`` option but ``ssl_disabled`` makes TLS required, with one
:class:`ssl.SSLContext` built here for both drivers. Unlike PyMySQL, whose ``ssl_ca``
alone encrypts without checking anything, the server's certificate is verified (against
``ssl_ca``, or the system's CAs without it) unless ``ssl_verify_cert=false``, as
MySQL's own ``mysql`` client does with ``--ssl-ca`` (its ``VERIFY_CA`` mode).
``ssl_verify_identity=true`` also checks that the certificate names the URL's host.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote

from .sql_async_mysql import AsyncMySQL
from .sql_options import refuse_unknown

__all__ = [
    "DRIVER_OPTIONS",
    "mysql_adopt",
    "mysql_connect",
    "mysql_fileno",
    "mysql_params",
    "tls_context",
    "tls_hint",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("true or false")


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < 86400:
        raise ValueError("a number of seconds above 0")
    return value


def _file(text: str) -> str:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError("no such file")
    return str(path)


def _charset(text: str) -> str:
    # The tables are utf8mb4, and WeChat nicknames hold 4-byte characters (emoji) that a
    # utf8 (3-byte) or latin1 connection would refuse or mangle.
    if text.lower() != "utf8mb4":
        raise ValueError("the store needs utf8mb4 (its tables' character set)")
    return text.lower()


#: The URL options passed to the driver, each with how its text is read.
DRIVER_OPTIONS: dict[str, Callable[[str], Any]] = {
    "unix_socket": str,
    "charset": _charset,
    "connect_timeout": _seconds,
    "read_timeout": _seconds,
    "write_timeout": _seconds,
    "init_command": str,
    "program_name": str,
    "ssl_ca": _file,
    "ssl_cert": _file,
    "ssl_key": _file,
    "ssl_disabled": _bool,
    "ssl_verify_cert": _bool,
    "ssl_verify_identity": _bool,
}
_TLS_FILES = ("ssl_ca", "ssl_cert", "ssl_key")


def _read_options(options: dict[str, str]) -> dict[str, Any]:
    refuse_unknown(options, "MySQL", {"PyMySQL's": DRIVER_OPTIONS})
    read: dict[str, Any] = {}
    for name, text in options.items():
        try:
            read[name] = DRIVER_OPTIONS[name](text)
        except ValueError as exc:
            raise ValueError(f"{name}={text!r} in the MySQL store URL: {exc}") from None
    return read


def tls_context(options: dict[str, Any]) -> ssl.SSLContext | None:
    """The TLS context the ``ssl_*`` options ask for (read by :data:`DRIVER_OPTIONS`), or
    None when they ask for none. Certificate and key files are loaded now, so a bad one
    is refused at start."""
    asked = sorted(k for k in options if k.startswith("ssl_") and k != "ssl_disabled")
    if options.get("ssl_disabled"):
        if asked:
            raise ValueError(f"ssl_disabled=true in the MySQL store URL, but also {asked[0]}")
        return None
    if not asked:
        return None
    verify = options.get("ssl_verify_cert", True)
    identity = options.get("ssl_verify_identity", False)
    if identity and not verify:
        raise ValueError("ssl_verify_identity=true needs the certificate verified too")
    if "ssl_key" in options and "ssl_cert" not in options:
        raise ValueError("ssl_key in the MySQL store URL without ssl_cert")
    try:
        context = ssl.create_default_context(cafile=options.get("ssl_ca"))
    except ssl.SSLError as exc:
        raise ValueError(f"ssl_ca: not a PEM CA certificate file ({exc.reason})") from None
    # Python 3.13 turns on strict X.509 checks that the certificates MySQL servers make
    # for themselves fail; they were not checked before, and PyMySQL clears them too.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = identity
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    if "ssl_cert" in options:
        try:
            context.load_cert_chain(options["ssl_cert"], options.get("ssl_key"))
        except ssl.SSLError as exc:
            raise ValueError(
                f"ssl_cert/ssl_key: not a PEM certificate and its key ({exc.reason})"
            ) from None
    return context


def tls_hint(exc: BaseException | None) -> str | None:
    """What to check when a connection failed on the server's certificate (``exc`` or
    an error it was raised from), else None."""
    for _ in range(5):  # the drivers wrap it once or twice
        if exc is None:
            return None
        if isinstance(exc, ssl.SSLCertVerificationError):
            if "mismatch" in str(exc.verify_message):
                return "the server's certificate does not name the URL's host (ssl_verify_identity)"
            return "the server's certificate is not signed by the CA in ssl_ca"
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__
    return None


def mysql_params(
    parts: SplitResult, options: dict[str, str], connect_timeout: float, io_timeout: float
) -> dict[str, Any]:
    """PyMySQL's connection parameters for a URL and its query ``options``."""
    from pymysql.constants import CLIENT

    read = _read_options(options)
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else "",
        "database": unquote(parts.path.lstrip("/")) or None,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": connect_timeout,
        "read_timeout": io_timeout,
        "write_timeout": io_timeout,
        # An UPDATE counts the rows it matched, not only those it changed: the lock's
        # take relies on it (a holder renewing to the same expiry changes nothing).
        "client_flag": CLIENT.FOUND_ROWS,
        # Too long a value is an error, not silently cut; no fallback to MyISAM.
        "sql_mode": "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION",
        "ssl": tls_context(read),
    }
    params.update((k, v) for k, v in read.items() if not k.startswith("ssl_"))
    if params["ssl"] is None:
        del params["ssl"]
        if read.get("ssl_disabled"):
            params["ssl_disabled"] = True
    return params


def mysql_connect(driver: Any, params: dict[str, Any]) -> Any:
    """A PyMySQL connection."""
    # PyMySQL's connect_timeout covers the TCP connect only; the handshake reads with the
    # read timeout. Connect with both at connect_timeout, so a server that accepts and
    # says nothing fails as fast as one that refuses; queries then get io_timeout.
    quick = params["connect_timeout"]
    try:
        conn = driver.connect(**{**params, "read_timeout": quick, "write_timeout": quick})
    except driver.OperationalError as exc:
        hint = tls_hint(exc)
        if hint is None:
            raise
        raise driver.OperationalError(exc.args[0], f"{exc.args[-1]}; {hint}") from None
    conn._read_timeout, conn._write_timeout = params["read_timeout"], params["write_timeout"]
    return conn


def mysql_fileno(conn: Any) -> int | None:
    """A PyMySQL connection's socket, which the threaded pool watches while the connection
    is idle; None for an asyncio one (it notices a closed connection itself)."""
    if isinstance(conn, AsyncMySQL):
        return None
    return int(conn._sock.fileno())


def mysql_adopt(driver: Any, conn: Any) -> None:
    """Ready a connection made by the operator's ``connect=`` for the store."""
    from pymysql.constants import CLIENT

    if not isinstance(conn, driver.connections.Connection):
        raise TypeError(
            f"connect= returned a {type(conn).__name__}, not a PyMySQL Connection "
            "(a MySQL store URL)"
        )
    if not conn.client_flag & CLIENT.FOUND_ROWS:
        raise ValueError(
            "connect= returned a PyMySQL connection made without "
            "client_flag=pymysql.constants.CLIENT.FOUND_ROWS: the store's lock needs an "
            "UPDATE to count the rows it matched"
        )
    conn.autocommit(True)
