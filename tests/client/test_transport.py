"""The two transports carry the same bytes and get the same refusals, chunked or handed over whole."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from fedge.client.transport import GrpcTransport, InProcessTransport, TransportError
from fedge.server.config import ServerSettings, TaskConfig
from fedge.server.daemon import start
from fedge.shared import codec
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb

TASK = TaskConfig(
    name="t", model="mlp", input_shape=(8, 2), labels=("a", "b", "c"), rounds=3, clients_per_round=2,
    min_clients=1, over_selection=1.0, select_timeout_s=30.0, train_deadline_s=30.0,
)  # fmt: skip


@pytest.fixture
def transports(tmp_path):
    """A daemon (4 KiB chunks) and both transports to it: (grpc, in-process, coordinator)."""
    settings = ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path / "c", max_message_mb=1, chunk_kb=4)
    running = start(settings, [TASK])
    grpc_transport = GrpcTransport(running.address, chunk_bytes=4096)
    try:
        yield grpc_transport, InProcessTransport(running.coordinator), running.coordinator
    finally:
        grpc_transport.close()
        running.stop(grace=0.5)


def joined(transport, coordinator) -> tuple[str, pb.Assignment]:
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=1)
    token = coordinator.create_tokens(request).tokens[0]
    credential = transport.enroll(pb.EnrollRequest(token=token)).credential
    return credential, transport.check_in(pb.CheckInRequest(credential=credential)).assignment


def download(transport, credential: str, assignment: pb.Assignment) -> bytes:
    request = pb.DownloadModelRequest(credential=credential, task_id="t", round_id=assignment.round_id)
    return bytes(transport.download_model(request, assignment.model_bytes))


def header(credential: str, assignment: pb.Assignment) -> pb.UpdateHeader:
    return pb.UpdateHeader(
        credential=credential, task_id="t", round_id=assignment.round_id, num_examples=1, tensors=assignment.tensors
    )


def test_both_transports_download_the_same_bytes(transports):
    remote, local, coordinator = transports
    a, job = joined(remote, coordinator)
    assert job.model_bytes > 5 * 4096  # several chunks over gRPC
    assert download(remote, a, job) == download(local, a, job) == coordinator.tasks["t"].encoded


@pytest.mark.parametrize("which", [0, 1], ids=["grpc", "inprocess"])
def test_an_update_longer_than_its_tensors_is_refused_by_either(transports, which):
    transport, coordinator = transports[which], transports[2]
    credential, job = joined(transport, coordinator)
    data = codec.encode([np.zeros(tuple(t.shape), np.float32) for t in job.tensors]) + bytes(4)
    with pytest.raises(TransportError) as refused:
        transport.upload_update(header(credential, job), [data])
    assert refused.value.code == "RESOURCE_EXHAUSTED"
    assert f"expected {job.model_bytes} bytes in all" in refused.value.message


@pytest.mark.parametrize("which", [0, 1], ids=["grpc", "inprocess"])
def test_a_truncated_update_is_refused_by_either(transports, which):
    transport, coordinator = transports[which], transports[2]
    credential, job = joined(transport, coordinator)
    data = codec.encode([np.zeros(tuple(t.shape), np.float32) for t in job.tensors])[:-4]
    with pytest.raises(TransportError) as refused:
        transport.upload_update(header(credential, job), [data])
    assert refused.value.code == "INVALID_ARGUMENT" and "truncated" in refused.value.message


def test_a_chunked_update_counts_like_one_handed_over_whole(transports):
    remote, local, coordinator = transports
    (a, first), (b, second) = joined(remote, coordinator), joined(local, coordinator)
    start = codec.decode(codec.from_proto(first.tensors), download(remote, a, first))
    ones = codec.encode([np.ones(tuple(t.shape), np.float32) for t in first.tensors])
    threes = codec.encode([np.full(tuple(t.shape), 3.0, np.float32) for t in first.tensors])
    assert remote.upload_update(header(a, first), [ones]).status == pb.UPDATE_STATUS_ACCEPTED
    assert local.upload_update(header(b, second), [threes]).status == pb.UPDATE_STATUS_ACCEPTED
    rounds = coordinator.tasks["t"]
    assert rounds.version == 1
    np.testing.assert_allclose(rounds.weights[0], start[0] + 2.0)  # (1 + 3) / 2


def test_a_download_after_a_commit_is_the_new_version(transports):
    remote, _, coordinator = transports
    (a, first), (b, second) = joined(remote, coordinator), joined(remote, coordinator)
    before = download(remote, a, first)
    ones = codec.encode([np.ones(tuple(t.shape), np.float32) for t in first.tensors])
    for credential, job in ((a, first), (b, second)):
        remote.upload_update(header(credential, job), [ones])
    job = remote.check_in(pb.CheckInRequest(credential=a)).assignment
    assert job.model_version == 1
    after = download(remote, a, job)
    assert after != before and after == coordinator.tasks["t"].encoded


class LosesFirstReply:
    """The first enrolment reaches the daemon and commits, but its reply never arrives (as when
    the daemon is killed between its commit and its answer)."""

    def __init__(self, inner: GrpcTransport) -> None:
        self.inner, self.requests = inner, []

    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        self.requests.append(request)
        response = self.inner.enroll(request)
        if len(self.requests) == 1:
            raise TransportError("UNAVAILABLE", "connection reset")
        return response


def test_the_agent_retries_an_enrolment_whose_reply_was_lost_and_gets_in(transports):
    from fedge.cli.client import _enroll

    grpc_transport, _, coordinator = transports
    token = coordinator.create_tokens(apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=1))
    lossy = LosesFirstReply(grpc_transport)
    credential = _enroll(lossy, token.tokens[0], "retrier", threading.Event())
    first, retry = lossy.requests
    assert first.nonce and retry.nonce == first.nonce
    assert grpc_transport.check_in(pb.CheckInRequest(credential=credential)).HasField("assignment")
    assert len(coordinator.store.query("SELECT client_id FROM clients")) == 1


def test_a_credential_issued_over_tls_is_never_loaded_for_plaintext(tmp_path):
    from fedge.client.agent import load_credential, save_credential

    state = tmp_path / ".fedge-agent.json"
    save_credential(state, "a:1", "fedge-client-tls", tls=True)
    save_credential(state, "b:2", "fedge-client-plain")
    assert load_credential(state, "a:1", tls=True) == "fedge-client-tls"
    with pytest.raises(ValueError, match=r"issued over TLS: pass --tls-ca"):
        load_credential(state, "a:1")
    assert load_credential(state, "b:2") == load_credential(state, "b:2", tls=True) == "fedge-client-plain"
    assert load_credential(state, "c:3") is None
    state.write_text('{"a:1": "fedge-client-old"}')  # a file from before TLS: a bare credential
    assert load_credential(state, "a:1") == "fedge-client-old"


def test_a_credential_is_saved_whole_or_not_at_all_and_for_this_user_only(tmp_path, monkeypatch):
    from fedge.client import agent

    state = tmp_path / ".fedge-agent.json"
    previous = os.umask(0o022)  # the usual umask: a plain write would leave the file world-readable
    try:
        agent.save_credential(state, "a:1", "fedge-client-first")
    finally:
        os.umask(previous)
    assert state.stat().st_mode & 0o777 == 0o600

    def power_cut(source, target):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        agent.save_credential(state, "b:2", "fedge-client-second")
    assert agent.load_credential(state, "a:1") == "fedge-client-first"  # the file as it was
    assert agent.load_credential(state, "b:2") is None
    assert [path.name for path in tmp_path.iterdir()] == [state.name]  # no temporary file left


@pytest.mark.parametrize("content", ["", '{"a:1": {"credenti', "[]"])
def test_a_damaged_state_file_is_refused_with_what_to_do(tmp_path, content):
    from fedge.client.agent import load_credential

    state = tmp_path / ".fedge-agent.json"
    state.write_text(content)
    with pytest.raises(ValueError, match=r"is not an agent state file .*move it away and enrol with a new token"):
        load_credential(state, "a:1")
