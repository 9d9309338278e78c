"""Throwaway certificate authorities and certificates for TLS tests (``cryptography``).

A test that switches TLS on for a private server makes a CA, a server certificate for
``127.0.0.1`` and ``localhost`` signed by it, and, to check a refusal, a second CA that
signed nothing the server holds::

    ca = CertificateAuthority("wafer test CA")
    files = ca.issue_server(tmp_path / "server")     # .cert, .key, .ca: PEM paths
    client = ca.issue_client(tmp_path / "client", "wafer-client")
    stranger = CertificateAuthority("another CA").write(tmp_path / "other-ca.pem")

RSA 2048 keys, valid from a minute ago for a day: every TLS library and server accepts
them, and no test outlives them.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "Issued"]


@dataclass(frozen=True)
class Issued:
    """PEM files of one issued certificate: its certificate, its key, and its CA's."""

    cert: Path
    key: Path
    ca: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o644)  # the server may run as another OS user
    return path


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, common_name: str) -> None:
        self._key = _key()
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def write(self, path: Path) -> Path:
        """The CA's certificate as a PEM file at ``path``."""
        return _write(path, self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue_server(
        self, directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    ) -> Issued:
        """A server certificate for ``hosts`` (IP addresses and DNS names)."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(directory, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, names)

    def issue_client(self, directory: Path, common_name: str) -> Issued:
        """A client certificate (for a server account that requires one)."""
        return self._issue(directory, common_name, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def _issue(
        self,
        directory: Path,
        common_name: str,
        usage: x509.ObjectIdentifier,
        names: list[x509.GeneralName],
    ) -> Issued:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return Issued(
            cert=_write(directory / "cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
            key=_write(directory / "key.pem", key_pem),
            ca=self.write(directory / "ca.pem"),
        )
