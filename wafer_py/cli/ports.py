"""Listening sockets for ``wafer-py demo`` and ``sandbox``: bound before anything is
printed, so the banner shows the port actually bound (``--port 0``) and a port in use is
one line naming the flag, never a traceback nor a recipe aimed at someone else's server."""

from __future__ import annotations

import errno
import socket

from .opening import CommandFailed

__all__ = ["listen", "port_failed"]


def listen(host: str, port: int, flag: str) -> socket.socket:
    """A socket listening on ``host:port``; :class:`CommandFailed` naming ``flag`` when
    the port is taken or the address is not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise port_failed(exc, host, port, flag) from None
    return sock


def port_failed(exc: OSError, host: str, port: int, flag: str) -> CommandFailed:
    """The one line for a socket that could not listen on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return CommandFailed(
            f"port {port} on {host} is in use ({flag}): stop what holds it, or choose "
            f"another port ({flag} 0 takes any free one)"
        )
    if exc.errno == errno.EACCES:
        return CommandFailed(
            f"port {port} on {host} needs privileges ({flag}): choose one above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return CommandFailed(f"cannot listen on {host}: not an address of this machine (--host)")
    return CommandFailed(f"cannot listen on {host}:{port} ({flag}): {exc.strerror or exc}")
