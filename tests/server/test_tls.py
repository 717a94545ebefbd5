"""A daemon serving TLS on its gRPC port and its gateway: real handshakes over loopback."""

from __future__ import annotations

import asyncio
import http.client
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from websockets.asyncio.client import connect

from fedge.client.agent import Agent
from fedge.client.transport import GrpcTransport, TransportError
from fedge.server.config import ServerSettings
from fedge.server.daemon import Running, start
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.proto import coordinator_pb2_grpc
from fedge.shared.proto.gateway_pb2 import GatewayFrame
from fedge.shared.tls import ClientTls, channel, create_certificate
from fedge.simulation.loopback import free_port

from .conftest import Service, small_task


@dataclass
class TlsDaemon:
    running: Running
    cert: Path
    http_port: int

    @property
    def trust(self) -> ClientTls:
        return ClientTls.from_files(self.cert)

    def service(self, tls: ClientTls | None) -> Service:
        chan = channel(self.running.address, tls)
        from fedge.shared.proto import admin_pb2_grpc

        return Service(
            self.running,
            coordinator_pb2_grpc.CoordinatorStub(chan),
            admin_pb2_grpc.AdminStub(chan),
            self.running.coordinator.admin_credential,
        )

    def https_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cert)


@pytest.fixture
def daemon(tmp_path) -> Iterator[TlsDaemon]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["fedge.lan", "localhost", "127.0.0.1"])
    settings = ServerSettings(
        port=0, http_port=free_port(), data_dir=tmp_path / "coordinator", tls_cert=str(cert), tls_key=str(key)
    )
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<!doctype html><title>fedge</title>")
    running = start(settings, [small_task()], gateway=True, static_dir=tmp_path / "web")
    try:
        yield TlsDaemon(running, cert, settings.http_port)
    finally:
        running.stop(grace=0.5)


def test_a_client_that_trusts_the_certificate_runs_a_round_over_tls(daemon):
    service = daemon.service(daemon.trust)
    credential = service.enroll()  # unary
    job = service.assignment(credential)
    weights = service.weights(credential, job)  # a server stream
    assert sum(w.size for w in weights) > 0
    delta = [np.full(w.shape, 0.5, np.float32) for w in weights]
    assert service.upload(credential, job, delta).status == pb.UPDATE_STATUS_ACCEPTED  # a client stream


def test_the_agents_transport_speaks_tls(daemon):
    token = daemon.service(daemon.trust).tokens()[0]
    transport = GrpcTransport(daemon.running.address, tls=daemon.trust)
    try:
        assert transport.enroll(pb.EnrollRequest(token=token, platform="test")).credential
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("tls", "why"),
    [(None, "Socket closed"), (ClientTls(), "CERTIFICATE_VERIFY_FAILED")],
    ids=["plaintext", "untrusted-certificate"],
)
def test_a_client_that_does_not_speak_tls_or_distrusts_the_certificate_gets_nothing_and_spends_nothing(
    daemon, tls, why
):
    token = daemon.service(daemon.trust).tokens()[0]
    transport = GrpcTransport(daemon.running.address, tls=tls, timeout_s=5)
    try:
        with pytest.raises(TransportError) as refused:
            transport.enroll(pb.EnrollRequest(token=token, platform="test"))
    finally:
        transport.close()
    assert refused.value.code == "UNAVAILABLE" and refused.value.retryable
    assert why in refused.value.message
    # the token was never spent: a client that trusts the certificate enrols with it
    assert daemon.service(daemon.trust).stub.Enroll(pb.EnrollRequest(token=token, platform="test")).credential


def test_a_plaintext_agent_is_told_once_what_to_check(daemon, caplog):
    credential = daemon.service(daemon.trust).enroll()
    transport = GrpcTransport(daemon.running.address, tls=None, timeout_s=5)
    agent = Agent(transport, credential, trainer=lambda *args, **kwargs: None)
    try:
        with caplog.at_level(logging.WARNING, logger="fedge.agent"):
            outcomes = [agent.attempt(), agent.attempt()]
    finally:
        transport.close()
    assert all(o.wait_s > 0 for o in outcomes)  # it backs off and keeps trying
    hints = [r.getMessage() for r in caplog.records if "serve TLS (--tls-ca) or plaintext" in r.getMessage()]
    assert len(hints) == 1


def test_the_gateway_serves_https_and_reaches_the_daemon_over_tls(daemon):
    connection = http.client.HTTPSConnection("localhost", daemon.http_port, timeout=5, context=daemon.https_context())
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200  # 200 only once the gateway's own TLS channel reached the daemon
    assert response.read().endswith(b": SERVING\n")
    connection.close()
    plain = http.client.HTTPConnection("localhost", daemon.http_port, timeout=5)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine)):
        plain.request("GET", "/healthz")
        plain.getresponse()


def test_a_browser_socket_over_wss_enrols(daemon):
    token = daemon.service(daemon.trust).tokens()[0]

    async def enrol() -> pb.EnrollResponse:
        url = f"wss://localhost:{daemon.http_port}/ws"
        async with connect(url, ssl=daemon.https_context(), compression=None) as socket:
            request = pb.EnrollRequest(token=token, platform="browser-test").SerializeToString()
            await socket.send(GatewayFrame(call=1, method="Enroll", message=request, end=True).SerializeToString())
            frame = GatewayFrame.FromString(await asyncio.wait_for(socket.recv(), 10))
            assert not frame.HasField("status"), frame.status
            return pb.EnrollResponse.FromString(frame.message)

    assert asyncio.run(enrol()).credential


def test_a_certificate_that_does_not_load_stops_the_start_with_its_path(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["127.0.0.1"])
    create_certificate(tmp_path / "other.pem", tmp_path / "other.key", ["localhost"])
    settings = ServerSettings(port=0, http_port=0, data_dir=tmp_path / "d", tls_cert=str(cert), tls_key=str(key))
    with pytest.raises(ValueError, match=r"other\.key is not the private key"):
        start(ServerSettings(**{**settings.__dict__, "tls_key": str(tmp_path / "other.key")}), [small_task()])
    running = start(settings, [small_task()])  # the refused start left the data dir usable
    try:
        response = grpc.channel_ready_future(channel(running.address, ClientTls.from_files(cert)))
        response.result(timeout=5)
    finally:
        running.stop(grace=0.5)


def test_a_certificate_close_to_expiry_is_warned_about_at_start(tmp_path, caplog):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["127.0.0.1"], days=10)
    settings = ServerSettings(port=0, http_port=0, data_dir=tmp_path / "d", tls_cert=str(cert), tls_key=str(key))
    with caplog.at_level("WARNING", logger="fedge.server"):
        start(settings, [small_task()]).stop(grace=0.5)
    assert f"the TLS certificate {cert} expires in 10 days: renew it" in caplog.text


def test_the_certificate_s_expiry_is_in_the_status_and_the_metrics(daemon):
    from cryptography import x509

    expires = x509.load_pem_x509_certificate(daemon.cert.read_bytes()).not_valid_after_utc.timestamp()
    about = daemon.running.coordinator.about
    assert (about["tls"], about["certificate_expires"]) == (True, expires)
    assert about["gateway"] == f"https://127.0.0.1:{daemon.http_port}/"
    connection = http.client.HTTPSConnection("localhost", daemon.http_port, timeout=5, context=daemon.https_context())
    credential = daemon.running.coordinator.admin_credential
    connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {credential}"})
    response = connection.getresponse()
    assert response.status == 200
    lines = dict(line.split(" ", 1) for line in response.read().decode().splitlines() if not line.startswith("#"))
    assert float(lines["fedge_server_certificate_expiry_time_seconds"]) == pytest.approx(expires)
    connection.close()
