"""TLS for every channel: the daemon's gRPC port, the gateway's HTTPS/WSS, and the clients of both.

Bearer credentials (a device's, the admin's) and model weights cross the network, so anything
beyond loopback wants TLS. The coordinator serves one certificate and key on both ports; a client
trusts either a CA file (a self-signed certificate is its own CA) or the system's roots.
``create_certificate`` makes a self-signed one for a LAN or a pilot (``fedge tls create``).
Files are checked when loaded, so a wrong path or a key that does not match its certificate is
one clear error at start, not a failed handshake later.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SELF_SIGNED_DAYS = 825  # the longest lifetime Apple's platforms accept for a TLS server certificate
RENEW_DAYS = 30  # a certificate that expires sooner is warned about (daemon start, fedge status)


class TlsError(ValueError):
    """A certificate or key that cannot serve: missing, unreadable, or not a pair."""


@dataclass(frozen=True)
class ServerTls:
    """The certificate chain and private key a daemon or gateway serves, as PEM bytes."""

    cert: bytes
    key: bytes
    names: tuple[str, ...]  # the DNS names and addresses the certificate is valid for
    self_signed: bool
    paths: tuple[Path, Path]  # where they were read: the ssl module loads only files
    expires: datetime.datetime

    @classmethod
    def load(cls, cert_path: Path | str, key_path: Path | str) -> ServerTls:
        cert_pem, key_pem = _read(cert_path, "certificate"), _read(key_path, "private key")
        try:
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise TlsError(f"{cert_path}: expected a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise TlsError(f"{key_path}: expected an unencrypted PEM private key ({error})") from None
        if key.public_key().public_bytes(*_SPKI) != certificate.public_key().public_bytes(*_SPKI):
            raise TlsError(f"{key_path} is not the private key of the certificate in {cert_path}")
        expires = certificate.not_valid_after_utc
        if expires <= datetime.datetime.now(datetime.UTC):
            raise TlsError(f"the certificate in {cert_path} expired on {expires:%Y-%m-%d}: renew it")
        self_signed = certificate.issuer == certificate.subject
        paths = (Path(cert_path), Path(key_path))
        return cls(cert_pem, key_pem, _names(certificate), self_signed, paths, expires)

    def days_left(self) -> float:
        return (self.expires - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)])

    def ssl_context(self) -> ssl.SSLContext:
        """For the gateway's HTTPS and WSS."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*self.paths)
        return context

    def loopback_client(self) -> ClientTls:
        """How a part of the daemon (its gateway) reaches the daemon's own TLS port on localhost:
        trusting this certificate when it is its own CA, else the system's roots, and expecting one
        of its names, whatever address it dials."""
        name = next((n for n in self.names if n in ("localhost", "127.0.0.1")), self.names[0] if self.names else None)
        return ClientTls(ca=self.cert if self.self_signed else None, server_name=name)


@dataclass(frozen=True)
class ClientTls:
    """What a client trusts: a CA (PEM bytes; None: the system's roots), and optionally the name to
    expect in the server's certificate instead of the dialled host."""

    ca: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_ca_file(cls, path: Path | str | None) -> ClientTls:
        return cls(ca=_read(path, "CA certificate") if path else None)

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca)

    def grpc_options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def channel(address: str, tls: ClientTls | None, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """A gRPC channel to ``address``: TLS when ``tls`` is given, plaintext otherwise."""
    return _open(grpc, address, tls, options)


def aio_channel(address: str, tls: ClientTls | None, options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel:
    """The asyncio twin of :func:`channel`, for the gateway."""
    return _open(grpc.aio, address, tls, options)


def _open(api: Any, address: str, tls: ClientTls | None, options: Sequence[tuple[str, object]]) -> Any:
    """``api`` is grpc or grpc.aio: both open channels with the same signatures."""
    if tls is None:
        return api.insecure_channel(address, options=list(options))
    return api.secure_channel(address, tls.grpc_credentials(), options=[*options, *tls.grpc_options()])


def create_certificate(cert_path: Path, key_path: Path, hosts: Sequence[str], days: int = SELF_SIGNED_DAYS) -> str:
    """Write a self-signed ECDSA P-256 certificate for ``hosts`` (DNS names or IP addresses) and its
    key (mode 0600); return the certificate's SHA-256 fingerprint, which users can compare."""
    if not hosts:
        raise TlsError("expected at least one host name or address for the certificate")
    alternatives = [_alternative_name(host) for host in hosts]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]), _ORGANISATION])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks on small devices drift
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_pem)
    os.chmod(key_path, 0o600)  # an existing file keeps its mode through O_CREAT
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return fingerprint(certificate)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, as browsers show it (colon-separated hex)."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
_ORGANISATION = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedge (self-signed)")


def _alternative_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if not host or len(host) > 253 or not all(label and len(label) <= 63 for label in labels):
        raise TlsError(f"expected a host name or an IP address, got {host!r}")
    if not all(label.replace("-", "").isalnum() and label.isascii() for label in labels if label != "*"):
        raise TlsError(f"expected a host name or an IP address, got {host!r}")
    return x509.DNSName(host)


def _names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        alternatives = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = alternatives.get_values_for_type(x509.DNSName)
    addresses = [str(address) for address in alternatives.get_values_for_type(x509.IPAddress)]
    return (*dns, *addresses)


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise TlsError(f"cannot read the TLS {what} {path}: {error.strerror or error}") from None
