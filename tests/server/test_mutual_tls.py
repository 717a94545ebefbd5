"""Mutual TLS: the gRPC port takes only clients with a certificate from the configured CA."""

from __future__ import annotations

import datetime
import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509

from fedge.client.transport import GrpcTransport, TransportError
from fedge.server.config import ServerSettings
from fedge.server.daemon import Running, start
from fedge.shared.proto import admin_pb2_grpc, coordinator_pb2_grpc
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.tls import ClientTls, TlsError, channel, create_certificate, create_client_ca, issue_client_identity
from fedge.simulation.loopback import free_port

from .conftest import Service, small_task


@dataclass
class Mutual:
    running: Running
    cert: Path  # the daemon's, self-signed: clients trust it
    identity: Path  # a device's certificate and key, from the daemon's client CA
    stranger: Path  # one from another CA
    http_port: int

    def service(self, identity: Path | None) -> Service:
        chan = channel(self.running.address, ClientTls.from_files(self.cert, identity))
        admin = admin_pb2_grpc.AdminStub(chan)
        coordinator = coordinator_pb2_grpc.CoordinatorStub(chan)
        return Service(self.running, coordinator, admin, self.running.coordinator.admin_credential)


def ca_with_identity(folder: Path, name: str) -> tuple[Path, Path]:
    ca, ca_key, identity = folder / f"{name}-ca.crt", folder / f"{name}-ca.key", folder / f"{name}.pem"
    create_client_ca(ca, ca_key, f"{name} CA")
    issue_client_identity(ca, ca_key, identity, f"{name}-device")
    return ca, identity


@pytest.fixture
def mutual(tmp_path) -> Iterator[Mutual]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["localhost", "127.0.0.1"])
    ca, identity = ca_with_identity(tmp_path, "ours")
    _, stranger = ca_with_identity(tmp_path, "theirs")
    settings = ServerSettings(
        port=0,
        http_port=free_port(),
        data_dir=tmp_path / "d",
        tls_cert=str(cert),
        tls_key=str(key),
        tls_client_ca=str(ca),
    )
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<!doctype html><title>fedge</title>")
    running = start(settings, [small_task()], gateway=True, static_dir=tmp_path / "web")
    try:
        yield Mutual(running, cert, identity, stranger, settings.http_port)
    finally:
        running.stop(grace=0.5)


def test_a_client_with_a_certificate_from_the_ca_runs_a_round(mutual):
    service = mutual.service(mutual.identity)
    credential = service.enroll()
    job = service.assignment(credential)
    weights = service.weights(credential, job)
    delta = [np.full(w.shape, 0.5, np.float32) for w in weights]
    assert service.upload(credential, job, delta).status == pb.UPDATE_STATUS_ACCEPTED


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
def test_a_client_without_a_certificate_from_the_ca_gets_nothing_and_spends_nothing(mutual, who):
    token = mutual.service(mutual.identity).tokens()[0]
    identity = None if who == "no certificate" else mutual.stranger
    transport = GrpcTransport(mutual.running.address, tls=ClientTls.from_files(mutual.cert, identity), timeout_s=5)
    try:
        with pytest.raises(TransportError) as refused:
            transport.enroll(pb.EnrollRequest(token=token, platform="test"))
    finally:
        transport.close()
    assert refused.value.code == "UNAVAILABLE"
    # the token was never spent: the device with the right certificate enrols with it
    assert mutual.service(mutual.identity).stub.Enroll(pb.EnrollRequest(token=token, platform="test")).credential


def test_the_daemons_own_gateway_still_reaches_its_grpc_port(mutual):
    context = ssl.create_default_context(cafile=mutual.cert)
    connection = http.client.HTTPSConnection("localhost", mutual.http_port, timeout=5, context=context)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200 and response.read().endswith(b": SERVING\n")  # through the gRPC port
    finally:
        connection.close()
    assert mutual.running.coordinator.about["client_certificates"] is True


def test_the_issued_certificate_is_for_clients_and_its_file_for_this_user_only(mutual):
    chain = x509.load_pem_x509_certificates(mutual.identity.read_bytes())
    usage = chain[0].extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert chain[0].issuer.rfc4514_string() == "O=fedge (self-signed),CN=ours CA"
    assert chain[0].not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=800)
    assert mutual.identity.stat().st_mode & 0o777 == 0o600


def test_an_identity_file_that_cannot_serve_is_refused_naming_it(tmp_path):
    ca, identity = ca_with_identity(tmp_path, "ours")
    certificate_only = tmp_path / "cert-only.pem"
    certificate_only.write_bytes(ca.read_bytes())
    with pytest.raises(TlsError, match=r"cert-only\.pem: expected a PEM client certificate and its unencrypted key"):
        ClientTls.from_files(None, certificate_only)
    _, other = ca_with_identity(tmp_path, "theirs")
    mixed = tmp_path / "mixed.pem"
    mixed.write_bytes(identity.read_bytes().split(b"-----END CERTIFICATE-----\n")[0] + b"-----END CERTIFICATE-----\n")
    mixed.write_bytes(mixed.read_bytes() + other.read_bytes().split(b"-----END CERTIFICATE-----\n")[1])
    with pytest.raises(TlsError, match=r"mixed\.pem: the private key is not the first certificate's"):
        ClientTls.from_files(None, mixed)


def test_a_client_ca_without_tls_or_unreadable_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="expected tls_client_ca only with tls_cert and tls_key"):
        ServerSettings(port=0, http_port=0, data_dir=tmp_path / "d", tls_client_ca="ca.pem")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["localhost"])
    settings = ServerSettings(
        port=0, http_port=0, data_dir=tmp_path / "d", tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(key)
    )
    with pytest.raises(TlsError, match=r"key\.pem: expected PEM CA certificates"):
        start(settings, [small_task()])
