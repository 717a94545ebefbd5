"""Hostile and malformed requests over real gRPC on loopback.

Each is refused with its status code and a sentence that says what was expected, and leaves
no trace: the refused client can still report, and everyone else's round still commits.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
MODEL_BYTES = 4 * (16 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3)  # the small MLP, float32


@pytest.fixture
def joined(service):
    """Two clients, a and b, in round 1; returns (a, a's assignment, b, b's assignment)."""
    a, b = service.enroll(), service.enroll()
    return a, service.assignment(a), b, service.assignment(b)


def ones(assignment: pb.Assignment, value: float = 1.0) -> list[np.ndarray]:
    return [np.full(tuple(t.shape), value, np.float32) for t in assignment.tensors]


def specs_with(assignment: pb.Assignment, index: int = 0, **changes) -> list[pb.TensorSpec]:
    """The assignment's tensor specs with one of them changed."""
    specs = [pb.TensorSpec(name=t.name, dtype=t.dtype, shape=list(t.shape)) for t in assignment.tensors]
    fields = {"name": specs[index].name, "dtype": specs[index].dtype, "shape": list(specs[index].shape), **changes}
    specs[index] = pb.TensorSpec(**fields)
    return specs


# -- sizes and stream shape ------------------------------------------------------------------
def test_a_message_over_the_size_limit_is_refused_by_grpc(service, joined, refused, caplog):
    a, job, *_ = joined
    huge = [service.chunks(a, job)[0], pb.UpdateChunk(data=bytes(2 * 1024 * 1024))]
    code, details = refused(lambda: service.stub.UploadUpdate(iter(huge)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max (2097157 vs. 1048576)" in details
    assert service.upload(a, job).status == pb.UPDATE_STATUS_ACCEPTED
    assert "unexpected error" not in caplog.text  # gRPC's own refusal is not a coordinator bug


def test_upload_with_more_bytes_than_its_tensors_need_is_refused(service, joined, refused):
    a, job, *_ = joined
    chunks = [*service.chunks(a, job), pb.UpdateChunk(data=bytes(4))]
    code, details = refused(lambda: service.stub.UploadUpdate(iter(chunks)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and f"expected {MODEL_BYTES} bytes in all" in details


def test_truncated_upload_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.stub.UploadUpdate(iter(service.chunks(a, job)[:-1])))
    assert code == INVALID and f"expected {MODEL_BYTES} bytes" in details and "truncated" in details


def test_upload_without_a_header_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.stub.UploadUpdate(iter(service.chunks(a, job)[1:])))
    assert code == INVALID and "expected the first chunk of an upload to be its header" in details


def test_second_header_mid_stream_is_refused(service, joined, refused):
    a, job, *_ = joined
    chunks = service.chunks(a, job)
    code, details = refused(lambda: service.stub.UploadUpdate(iter(chunks[:2] + chunks[:1] + chunks[2:])))
    assert code == INVALID and "expected data chunks after the header, got a second header" in details


def test_empty_upload_stream_is_refused(service, refused):
    code, details = refused(lambda: service.stub.UploadUpdate(iter([])))
    assert code == INVALID and "expected the first chunk of an upload to be its header" in details


# -- the update's schema and values ------------------------------------------------------------
def test_upload_with_a_tensor_missing_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, tensors=job.tensors[:-1]))
    assert code == INVALID and "expected 6 tensors, got 5" in details


def test_upload_with_a_wrong_shape_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, tensors=specs_with(job, shape=[64, 16])))
    assert code == INVALID and "expected float32 (16, 64)" in details and "(64, 16)" in details


def test_upload_declaring_float64_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, tensors=specs_with(job, dtype="float64")))
    assert code == INVALID and "expected dtype float32" in details and "float64" in details


def test_upload_with_a_renamed_tensor_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, tensors=specs_with(job, 2, name="dense2/w")))
    assert code == INVALID and "'dense2/kernel': expected float32 (64, 64), got 'dense2/w'" in details


def test_upload_with_nan_is_refused_and_the_round_carries_on(service, joined, refused):
    a, job, b, other = joined
    start = service.weights(a, job)
    poisoned = ones(job)
    poisoned[1][5] = np.nan
    code, details = refused(lambda: service.upload(a, job, poisoned))
    assert code == INVALID and "tensor 'dense1/bias' contains NaN or Inf" in details

    assert service.upload(a, job, ones(job), num_examples=1).status == pb.UPDATE_STATUS_ACCEPTED
    assert service.upload(b, other, ones(job, 3.0), num_examples=1).status == pb.UPDATE_STATUS_ACCEPTED
    rounds = service.running.coordinator.tasks["t"]
    assert rounds.version == 1
    np.testing.assert_allclose(rounds.weights[0], start[0] + 2.0)  # (1 + 3) / 2: the NaN never counted


def test_upload_with_inf_is_refused(service, joined, refused):
    a, job, *_ = joined
    poisoned = ones(job)
    poisoned[4][0, 0] = -np.inf
    code, details = refused(lambda: service.upload(a, job, poisoned))
    assert code == INVALID and "tensor 'logits/kernel' contains NaN or Inf" in details


def test_upload_with_no_examples_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, num_examples=0))
    assert code == INVALID and "expected 1 <= num_examples" in details and "got 0" in details


def test_upload_claiming_an_absurd_number_of_examples_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, num_examples=2**64 - 1))
    assert code == INVALID and "expected 1 <= num_examples" in details and f"got {2**64 - 1}" in details
    assert service.upload(a, job).status == pb.UPDATE_STATUS_ACCEPTED


# -- the round: transitions ------------------------------------------------------------------
def test_upload_for_a_past_round_is_refused(service, joined, refused):
    a, job, b, other = joined
    service.upload(a, job), service.upload(b, other)
    c = service.enroll()
    later = service.assignment(c)
    assert later.round == 2
    code, details = refused(lambda: service.upload(c, later, round_id=job.round_id))
    assert code == PRECONDITION and f"round {job.round_id} is not the open round" in details
    assert f"(open: {later.round_id})" in details


def test_upload_for_a_future_round_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, round_id=job.round_id + 1))
    assert code == PRECONDITION and f"round {job.round_id + 1} is not the open round" in details


def test_download_for_a_round_the_client_was_not_selected_for_is_refused(service, joined, refused):
    _, job, *_ = joined
    c = service.enroll()
    assert service.stub.CheckIn(pb.CheckInRequest(credential=c)).retry.reason == "round full"
    code, details = refused(lambda: service.weights(c, job))
    assert code == PRECONDITION and f"was not selected for round {job.round_id}" in details


def test_upload_for_a_round_the_client_was_not_selected_for_is_refused(service, joined, refused):
    _, job, *_ = joined
    c = service.enroll()
    code, details = refused(lambda: service.upload(c, job))
    assert code == PRECONDITION and f"was not selected for round {job.round_id}" in details


def test_download_for_an_unknown_task_is_not_found(service, joined, refused):
    a, job, *_ = joined
    request = pb.DownloadModelRequest(credential=a, task_id="nope", round_id=job.round_id)
    code, details = refused(lambda: list(service.stub.DownloadModel(request)))
    assert code == grpc.StatusCode.NOT_FOUND and "no task 'nope'" in details


def test_upload_for_an_unknown_task_is_not_found(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.upload(a, job, task_id="nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "no task 'nope'" in details


def test_second_upload_for_the_same_round_is_refused(service, joined, refused):
    a, job, *_ = joined
    assert service.upload(a, job).status == pb.UPDATE_STATUS_ACCEPTED
    code, details = refused(lambda: service.upload(a, job))
    assert code == grpc.StatusCode.ALREADY_EXISTS and f"already reported in round {job.round_id}" in details


def test_update_whose_round_closes_while_it_streams_is_discarded(service, joined, monkeypatch):
    a, job, b, other = joined
    rounds = service.running.coordinator.tasks["t"]
    checked, resume, check_header = threading.Event(), threading.Event(), rounds.check_header

    def check_then_tell(*args):
        expected = check_header(*args)
        checked.set()
        return expected

    def slow():
        chunks = service.chunks(a, job)
        yield chunks[0]
        resume.wait(10)
        yield from chunks[1:]

    monkeypatch.setattr(rounds, "check_header", check_then_tell)
    reply = []
    uploader = threading.Thread(target=lambda: reply.append(service.stub.UploadUpdate(slow())))
    uploader.start()
    assert checked.wait(10)  # a's header passed while the round was open
    service.upload(b, other)
    monkeypatch.setattr(rounds, "clock", lambda: time.time() + 60)  # past the deadline: b alone commits it
    while rounds.version < 1:
        time.sleep(0.01)
    resume.set()
    uploader.join(10)
    assert reply[0].status == pb.UPDATE_STATUS_DISCARDED


# -- who is asking ------------------------------------------------------------------------------
def test_unknown_credential_is_refused(service, joined, refused):
    _, job, *_ = joined
    for call in (
        lambda: service.stub.CheckIn(pb.CheckInRequest(credential="forged")),
        lambda: service.weights("forged", job),
        lambda: service.upload("forged", job),
    ):
        code, details = refused(call)
        assert code == UNAUTHENTICATED and "unknown credential; enrol with a token first" in details


def test_revoked_client_is_refused(service, refused):
    client_id, credential = service.enroll_as()
    job = service.assignment(credential)
    assert service.revoke(client_id) == "client"
    for call in (lambda: service.assignment(credential), lambda: service.upload(credential, job)):
        code, details = refused(call)
        assert code == UNAUTHENTICATED and "this client was revoked" in details


def test_revoked_unused_token_is_refused(service, refused):
    token = service.tokens()[0]
    assert service.revoke(token) == "token"
    code, details = refused(lambda: service.stub.Enroll(pb.EnrollRequest(token=token)))
    assert code == UNAUTHENTICATED and "this enrolment token was revoked" in details


def test_replayed_enrolment_token_is_refused(service, refused):
    token = service.tokens()[0]
    service.stub.Enroll(pb.EnrollRequest(token=token))
    code, details = refused(lambda: service.stub.Enroll(pb.EnrollRequest(token=token)))
    assert code == UNAUTHENTICATED and "already used; ask for a new one" in details


def test_an_enrolment_retried_with_its_nonce_gets_the_same_client_a_fresh_credential(service, refused):
    """The reply to the first try was lost: the retry must not be refused, nor make a second client."""
    token = service.tokens()[0]
    first = service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n-1"))
    retry = service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n-1"))
    assert retry.client_id == first.client_id and retry.credential != first.credential
    assert service.stub.CheckIn(pb.CheckInRequest(credential=retry.credential)).HasField("assignment")
    code, details = refused(lambda: service.stub.CheckIn(pb.CheckInRequest(credential=first.credential)))
    assert code == UNAUTHENTICATED and "unknown credential" in details


@pytest.mark.parametrize("nonce", ["", "n-2"])
def test_a_used_token_with_another_or_no_nonce_is_refused(service, refused, nonce):
    token = service.tokens()[0]
    service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n-1"))
    code, details = refused(lambda: service.stub.Enroll(pb.EnrollRequest(token=token, nonce=nonce)))
    assert code == UNAUTHENTICATED and "already used; ask for a new one" in details


def test_a_revoked_client_cannot_come_back_through_its_enrolment_retry(service, refused):
    token = service.tokens()[0]
    client_id = service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n-1")).client_id
    assert service.revoke(client_id) == "client"
    code, details = refused(lambda: service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n-1")))
    assert code == UNAUTHENTICATED and "this client was revoked" in details


def test_an_oversized_enrolment_nonce_is_refused_and_spends_nothing(service, refused):
    token = service.tokens()[0]
    code, details = refused(lambda: service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n" * 129)))
    assert code == INVALID and "enrolment nonce longer than 128 characters" in details
    assert service.stub.Enroll(pb.EnrollRequest(token=token, nonce="n-1")).credential


def test_unknown_enrolment_token_is_refused(service, refused):
    code, details = refused(lambda: service.stub.Enroll(pb.EnrollRequest(token="guessed")))
    assert code == UNAUTHENTICATED and "unknown enrolment token" in details


# -- the Admin service ------------------------------------------------------------------------
def test_admin_calls_with_a_wrong_credential_are_refused(service, refused):
    for call in (
        lambda: service.admin.CreateTokens(apb.CreateTokensRequest(admin_credential="wrong", count=1)),
        lambda: service.admin.RevokeToken(apb.RevokeTokenRequest(admin_credential="wrong", token_or_client_id="x")),
        lambda: service.admin.GetStatus(apb.GetStatusRequest()),
    ):
        code, details = refused(call)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "admin credential missing or wrong" in details


@pytest.mark.parametrize("count", [0, 100_000])
def test_token_count_outside_1_to_10000_is_refused(service, count, refused):
    code, details = refused(lambda: service.tokens(count))
    assert code == INVALID and f"expected 1 <= count <= 10000, got {count}" in details


def test_revoking_an_unknown_token_or_client_is_not_found(service, refused):
    code, details = refused(lambda: service.revoke("c-000000000000"))
    assert code == grpc.StatusCode.NOT_FOUND and "no token or client 'c-000000000000'" in details


# -- nothing sticks --------------------------------------------------------------------------
def test_a_client_refused_for_every_kind_of_malformed_upload_still_reports(service, joined, refused):
    a, job, b, other = joined
    start = service.weights(a, job)
    chunks = service.chunks(a, job, ones(job, 50.0))
    nan = ones(job)
    nan[0][0, 0] = np.nan
    for bad in (
        [chunks[0], pb.UpdateChunk(data=bytes(2 * 1024 * 1024))],
        [*chunks, pb.UpdateChunk(data=bytes(1))],
        chunks[:-1],
        chunks[1:],
        chunks[:2] + chunks[:1] + chunks[2:],
        service.chunks(a, job, nan),
        service.chunks(a, job, num_examples=0),
        service.chunks(a, job, tensors=specs_with(job, shape=[64, 16])),
    ):
        refused(lambda bad=bad: service.stub.UploadUpdate(iter(bad)))

    assert service.upload(a, job, ones(job), num_examples=1).status == pb.UPDATE_STATUS_ACCEPTED
    assert service.upload(b, other, ones(job, 3.0), num_examples=3).status == pb.UPDATE_STATUS_ACCEPTED
    rounds = service.running.coordinator.tasks["t"]
    assert rounds.version == 1 and rounds.last_metrics["clients"] == 2 and rounds.last_metrics["examples"] == 4
    np.testing.assert_allclose(rounds.weights[0], start[0] + 2.5)  # (1·1 + 3·3) / 4


def test_an_upload_the_client_abandons_leaves_no_trace(service, joined, caplog, refused):
    a, job, *_ = joined

    def abandoned():
        yield from service.chunks(a, job)[:3]
        raise ConnectionError("the device lost its link")

    refused(lambda: service.stub.UploadUpdate(abandoned()))
    assert service.upload(a, job).status == pb.UPDATE_STATUS_ACCEPTED
    assert "unexpected error" not in caplog.text


def test_client_metrics_cannot_overwrite_the_rounds_own_figures(service, joined):
    a, job, b, other = joined
    service.upload(a, job, metrics={"clients": 99.0, "examples": 0.0, "train_loss": 1.0})
    service.upload(b, other, metrics={"train_loss": 3.0})
    metrics = service.running.coordinator.tasks["t"].last_metrics
    assert metrics["clients"] == 2 and metrics["examples"] == 20 and metrics["train_loss"] == 2.0


def test_upload_with_too_many_metrics_is_refused(service, joined, refused):
    a, job, _, _ = joined
    code, details = refused(lambda: service.upload(a, job, metrics={f"m{i}": 1.0 for i in range(17)}))
    assert code == INVALID and "expected at most 16 metrics" in details


def test_a_late_update_is_still_held_to_the_size_limit(service, joined, refused):
    a, job, b, other = joined
    rounds = service.running.coordinator.tasks["t"]
    service.upload(b, other)
    rounds.clock = lambda: time.time() + 60  # past the deadline: b alone commits round 1
    rounds.tick()
    assert rounds.version == 1
    chunks = service.chunks(a, job)
    code, details = refused(lambda: service.stub.UploadUpdate(iter([*chunks, *chunks[1:]])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "expected" in details


def test_revoking_a_selected_client_lets_its_round_commit_without_waiting(service, joined):
    a, _, b, other = joined
    client_a = service.running.coordinator.store.authenticate(a)
    service.upload(b, other)
    rounds = service.running.coordinator.tasks["t"]
    rounds.tick()  # selection is over (both joined): the round waits for a's report
    assert rounds.version == 0
    service.revoke(client_a)
    service.running.coordinator.tick()
    assert rounds.version == 1 and rounds.last_metrics["clients"] == 1


# -- declines ----------------------------------------------------------------------------------
def decline(credential: str, job: pb.Assignment) -> pb.UpdateChunk:
    header = pb.UpdateHeader(credential=credential, task_id=job.task_id, round_id=job.round_id, decline="not for me")
    return pb.UpdateChunk(header=header)


def test_a_decline_that_carries_data_is_refused(service, joined, refused):
    a, job, *_ = joined
    code, details = refused(lambda: service.stub.UploadUpdate(iter([decline(a, job), pb.UpdateChunk(data=b"x")])))
    assert code == INVALID and "an upload that declines carries no data" in details
    assert service.upload(a, job).status == pb.UPDATE_STATUS_ACCEPTED  # it can still report


def test_a_client_that_reported_cannot_decline_and_one_that_declined_is_not_awaited(service, joined, refused):
    a, job_a, b, job_b = joined
    assert service.upload(a, job_a).status == pb.UPDATE_STATUS_ACCEPTED
    code, details = refused(lambda: service.stub.UploadUpdate(iter([decline(a, job_a)])))
    assert code == INVALID and "took part already; it cannot decline" in details
    reply = service.stub.UploadUpdate(iter([decline(b, job_b), pb.UpdateChunk(data=b"")]))
    assert reply.status == pb.UPDATE_STATUS_DISCARDED and "declined" in reply.message
    assert service.running.coordinator.tasks["t"].version == 1  # committed with a's update, at once
