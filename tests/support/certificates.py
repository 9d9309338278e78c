"""Throwaway TLS certificates for servers a test starts on loopback.

``make_certificates(directory)`` writes a CA and a certificate for ``127.0.0.1`` that it
signed (valid two days), with ``openssl``; without it a test skips, or under ``CI=true``
fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.ci import skip_or_fail

__all__ = ["make_certificates"]


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 it signed: (ca, cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail("openssl is not installed (needed to make test certificates)")
    assert openssl is not None
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
         "-keyout", "ca.key", "-out", "ca.crt"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", "server.key", "-out", "server.csr"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([openssl, *step], cwd=directory, check=True, capture_output=True)
    return ca, cert, key
