"""Throw-away PKI for TLS tests: a CA, a server certificate and client certificates, as PEM files.

All keys are ECDSA P-256 (fast to generate). Certificates carry the extensions strict verifiers
(OpenSSL's X509_STRICT, as urllib3 may enable) insist on: key usage, subject/authority key ids,
critical basic constraints.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the generated PEM files (all in one directory, with fixed names)."""

    ca_cert: Path  # ca.crt
    server_cert: Path  # server.crt: localhost, 127.0.0.1 and ::1, signed by the CA
    server_key: Path  # server.key
    client_cert: Path  # client.crt: signed by the CA
    client_key: Path  # client.key
    wrong_client_cert: Path  # wrong-client.crt: self-signed, not trusted by the CA
    wrong_client_key: Path  # wrong-client.key

    @property
    def client_pair(self) -> tuple[str, str]:
        """``(cert, key)`` as ``requests`` takes it in ``cert=``."""
        return str(self.client_cert), str(self.client_key)

    @property
    def wrong_client_pair(self) -> tuple[str, str]:
        return str(self.wrong_client_cert), str(self.wrong_client_key)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    is_ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A certificate for ``key``, signed by ``issuer`` (name, key) or self-signed when None."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_tls_files(directory: Path) -> TlsFiles:
    """Generate the CA, server, client and wrong-client files into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        wrong_client_cert=directory / "wrong-client.crt",
        wrong_client_key=directory / "wrong-client.key",
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("test CA", ca_key, None, is_ca=True)
    _write_cert(files.ca_cert, ca_cert)
    ca = (ca_cert.subject, ca_key)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    _write_cert(
        files.server_cert, _issue("localhost", server_key, ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=server_sans)
    )
    _write_key(files.server_key, server_key)

    client_key = ec.generate_private_key(ec.SECP256R1())
    client_sans: list[x509.GeneralName] = [x509.DNSName("client.test")]
    _write_cert(
        files.client_cert,
        _issue("client.test", client_key, ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH, sans=client_sans),
    )
    _write_key(files.client_key, client_key)

    wrong_key = ec.generate_private_key(ec.SECP256R1())
    wrong_sans: list[x509.GeneralName] = [x509.DNSName("wrong.test")]
    _write_cert(
        files.wrong_client_cert,
        _issue("wrong.test", wrong_key, None, usage=ExtendedKeyUsageOID.CLIENT_AUTH, sans=wrong_sans),
    )
    _write_key(files.wrong_client_key, wrong_key)
    return files
