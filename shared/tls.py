"""TLS for every channel: the daemon's gRPC port, the gateway's HTTPS/WSS, and the clients of both.

Bearer credentials (a device's, the admin's) and model weights cross the network, so anything
beyond loopback wants TLS. The coordinator serves one certificate and key on both ports; a client
trusts either a CA file (a self-signed certificate is its own CA) or the system's roots.
``create_certificate`` makes a self-signed one for a LAN or a pilot (``fedge tls create``).
Files are checked when loaded, so a wrong path or a key that does not match its certificate is
one clear error at start, not a failed handshake later.

Mutual TLS: with a client CA, the gRPC port accepts only clients that present a certificate the
CA issued (``create_client_ca``, ``issue_client_identity``: a PEM file with the certificate and
its key), on top of their credentials. The daemon's own gateway dials that port with an identity
from a CA made in memory at each start, which nothing outside the process can use.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedge.shared.files import write_atomically

SELF_SIGNED_DAYS = 825  # the longest lifetime Apple's platforms accept for a TLS server certificate
CLIENT_CA_DAYS = 3650  # a device's certificate outlives no CA; a CA is replaced deliberately
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
    client_roots: bytes | None = None  # mutual TLS: the CAs a gRPC client's certificate must come from
    internal: tuple[bytes, bytes] | None = None  # the daemon's own client identity (chain, key), for its gateway

    @classmethod
    def load(cls, cert_path: Path | str, key_path: Path | str, client_ca: Path | str | None = None) -> ServerTls:
        cert_pem, key_pem = _read(cert_path, "certificate"), _read(key_path, "private key")
        certificate = _pair(cert_pem, key_pem, f"{cert_path}", f"{key_path}")
        expires = certificate.not_valid_after_utc
        if expires <= datetime.datetime.now(datetime.UTC):
            raise TlsError(f"the certificate in {cert_path} expired on {expires:%Y-%m-%d}: renew it")
        self_signed = certificate.issuer == certificate.subject
        paths = (Path(cert_path), Path(key_path))
        tls = cls(cert_pem, key_pem, _names(certificate), self_signed, paths, expires)
        if not client_ca:
            return tls
        roots = _read(client_ca, "client CA certificate")
        try:
            x509.load_pem_x509_certificates(roots)
        except ValueError:
            raise TlsError(f"{client_ca}: expected PEM CA certificates (-----BEGIN CERTIFICATE-----)") from None
        internal_ca, internal = _internal_identity()
        return dataclasses.replace(tls, client_roots=roots + internal_ca, internal=internal)

    @property
    def mutual(self) -> bool:
        return self.client_roots is not None

    def days_left(self) -> float:
        return (self.expires - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400

    def grpc_credentials(self) -> grpc.ServerCredentials:
        pairs = [(self.key, self.cert)]
        return grpc.ssl_server_credentials(pairs, root_certificates=self.client_roots, require_client_auth=self.mutual)

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
        return ClientTls(ca=self.cert if self.self_signed else None, server_name=name, identity=self.internal)


@dataclass(frozen=True)
class ClientTls:
    """What a client trusts: a CA (PEM bytes; None: the system's roots), and optionally the name to
    expect in the server's certificate instead of the dialled host."""

    ca: bytes | None = None
    server_name: str | None = None
    identity: tuple[bytes, bytes] | None = None  # mutual TLS: this client's certificate chain and key (PEM)

    @classmethod
    def from_files(cls, ca: Path | str | None, identity: Path | str | None = None) -> ClientTls:
        """Trusting ``ca`` (None: the system's roots), presenting the certificate and key that the
        PEM file ``identity`` holds together (``fedge tls client-cert``)."""
        return cls(ca=_read(ca, "CA certificate") if ca else None, identity=_identity(identity) if identity else None)

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        chain, key = self.identity or (None, None)
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=key, certificate_chain=chain)

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
    certificate = _sign(
        _builder(subject, subject, key.public_key(), days)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False),
        key,
    )
    return _write_pair(cert_path, key_path, certificate, key)


def create_client_ca(cert_path: Path, key_path: Path, name: str, days: int = CLIENT_CA_DAYS) -> str:
    """Write a CA that issues the devices' client certificates (the daemon's ``tls_client_ca``),
    and its key (mode 0600); return its fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name), _ORGANISATION])
    certificate = _ca(subject, key, days)
    return _write_pair(cert_path, key_path, certificate, key)


def issue_client_identity(
    ca_cert_path: Path, ca_key_path: Path, out: Path, name: str, days: int = SELF_SIGNED_DAYS
) -> str:
    """Write a client certificate for ``name``, issued by the CA, with its key, into one PEM file
    (mode 0600) for ``--tls-identity``; return the certificate's fingerprint."""
    ca_pem, ca_key_pem = _read(ca_cert_path, "CA certificate"), _read(ca_key_path, "CA private key")
    authority = _pair(ca_pem, ca_key_pem, f"{ca_cert_path}", f"{ca_key_path}")
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TlsError(f"{ca_key_path}: expected an EC or RSA key to sign with")
    certificate, key = _client_certificate(authority.subject, ca_key, name, days)
    _write_secret(out, certificate.public_bytes(serialization.Encoding.PEM) + _key_pem(key))
    return fingerprint(certificate)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, as browsers show it (colon-separated hex)."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
_ORGANISATION = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedge (self-signed)")


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks on small devices drift
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _sign(builder: x509.CertificateBuilder, key: Any) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def _ca(subject: x509.Name, key: ec.EllipticCurvePrivateKey, days: int) -> x509.Certificate:
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # cert and CRL signing
    return _sign(
        _builder(subject, subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True),
        key,
    )


def _client_certificate(issuer: x509.Name, ca_key: Any, name: str, days: int) -> tuple[x509.Certificate, Any]:
    if not name or len(name) > 64:
        raise TlsError(f"expected a client name of 1 to 64 characters, got {name!r}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = _sign(
        _builder(subject, issuer, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False),
        ca_key,
    )
    return certificate, key


def _internal_identity() -> tuple[bytes, tuple[bytes, bytes]]:
    """A CA made in memory, and a client identity it issued: how the daemon's own gateway passes
    mutual TLS. The CA's key is dropped here, so no other identity can ever come from it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedge daemon (internal)")])
    ca = _ca(subject, ca_key, SELF_SIGNED_DAYS)
    certificate, key = _client_certificate(subject, ca_key, "fedge gateway (internal)", SELF_SIGNED_DAYS)
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), (certificate.public_bytes(pem), _key_pem(key))


def _identity(path: Path | str) -> tuple[bytes, bytes]:
    """The certificate chain and key that one PEM file holds, checked to be a pair."""
    data = _read(path, "client identity")
    try:
        chain = x509.load_pem_x509_certificates(data)
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise TlsError(f"{path}: expected a PEM client certificate and its unencrypted key ({error})") from None
    if key.public_key().public_bytes(*_SPKI) != chain[0].public_key().public_bytes(*_SPKI):
        raise TlsError(f"{path}: the private key is not the first certificate's")
    if chain[0].not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        raise TlsError(f"the client certificate in {path} expired on {chain[0].not_valid_after_utc:%Y-%m-%d}")
    pem = serialization.Encoding.PEM
    return b"".join(certificate.public_bytes(pem) for certificate in chain), _key_pem(key)


def _pair(cert_pem: bytes, key_pem: bytes, cert_source: str, key_source: str) -> x509.Certificate:
    """The certificate, once checked to be PEM with ``key_pem`` its unencrypted private key."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise TlsError(f"{cert_source}: expected a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise TlsError(f"{key_source}: expected an unencrypted PEM private key ({error})") from None
    if key.public_key().public_bytes(*_SPKI) != certificate.public_key().public_bytes(*_SPKI):
        raise TlsError(f"{key_source} is not the private key of the certificate in {cert_source}")
    return certificate


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_pair(cert_path: Path, key_path: Path, certificate: x509.Certificate, key: Any) -> str:
    """The key (mode 0600) and its certificate; the certificate's fingerprint, to print."""
    _write_secret(key_path, _key_pem(key))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return fingerprint(certificate)


def _write_secret(path: Path, data: bytes) -> None:
    """``data`` into ``path``, readable by this user only from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, private=True)


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
