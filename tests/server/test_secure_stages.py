"""Secure-stage requests on the wire: long polls (a request that finds its stage open is answered
when the stage closes) and declines (a member that sits the round out is not waited for)."""

from __future__ import annotations

import threading
import time

import pytest

from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.errors import InvalidUpdate, StaleRound
from fedge.shared import secagg
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb

HOLD_S = 20.0  # far longer than the test: an answer before it proves the stage's close woke the request


def cohort(tmp_path, holders: int, size: int = 3) -> tuple[Coordinator, list[pb.AdvertiseKeysRequest]]:
    """``size`` selected clients of a secure task (all of them needed), each with its advertise request ready."""
    task = TaskConfig(
        name="t", model="mlp", input_shape=(4,), labels=("a", "b"), rounds=2, clients_per_round=size,
        min_clients=3, over_selection=1.0, secagg=True, select_timeout_s=60.0,
    )  # fmt: skip
    coordinator = Coordinator([task], tmp_path, hold_s=HOLD_S, holders=holders)
    tokens = coordinator.create_tokens(
        apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=size)
    )
    requests = []
    for token in tokens.tokens:
        credential = coordinator.enroll(pb.EnrollRequest(token=token)).credential
        assignment = coordinator.check_in(pb.CheckInRequest(credential=credential)).assignment
        keys = [secagg.PrivateKey.generate().public_bytes() for _ in range(2)]
        requests.append(
            pb.AdvertiseKeysRequest(
                credential=credential, task_id="t", round_id=assignment.round_id,
                encryption_key=keys[0], mask_key=keys[1],
            )
        )  # fmt: skip
    return coordinator, requests


def in_thread(call, request) -> tuple[threading.Thread, list]:
    replies: list = []
    thread = threading.Thread(target=lambda: replies.append(call(request)), daemon=True)
    thread.start()
    return thread, replies


def test_a_held_request_gets_the_roster_as_soon_as_the_last_client_advertises(tmp_path):
    coordinator, (first, second, last) = cohort(tmp_path, holders=2)
    try:
        held = [in_thread(coordinator.advertise_keys, request) for request in (first, second)]
        time.sleep(0.3)
        assert all(thread.is_alive() for thread, _ in held), "the stage is open: both requests wait"
        started = time.monotonic()
        closing = coordinator.advertise_keys(last)
        for thread, _ in held:
            thread.join(timeout=5)
        assert time.monotonic() - started < 5
        for reply in [closing] + [replies[0] for _, replies in held]:
            assert reply.retry_after_ms == 0 and len(reply.neighbours) == 2
    finally:
        coordinator.close()


def test_no_more_than_the_allowed_requests_wait_at_once(tmp_path):
    coordinator, (first, second, _) = cohort(tmp_path, holders=1)
    try:
        thread, _ = in_thread(coordinator.advertise_keys, first)
        time.sleep(0.3)
        assert thread.is_alive()
        started = time.monotonic()
        reply = coordinator.advertise_keys(second)  # no holder left: answered at once, "ask again"
        assert reply.retry_after_ms > 0 and time.monotonic() - started < 2
    finally:
        coordinator.close()


def test_a_decline_counts_the_client_out_and_the_stage_closes_without_it(tmp_path):
    coordinator, (first, second, third, last) = cohort(tmp_path, holders=2, size=4)
    try:
        declined = pb.AdvertiseKeysRequest(
            credential=last.credential, task_id="t", round_id=last.round_id, decline="floor not met"
        )
        assert coordinator.advertise_keys(declined) == pb.AdvertiseKeysResponse()
        held = [in_thread(coordinator.advertise_keys, request) for request in (first, second)]
        time.sleep(0.3)
        started = time.monotonic()
        reply = coordinator.advertise_keys(third)  # the last one awaited: the stage closes with three
        for thread, _ in held:
            thread.join(timeout=5)
        assert time.monotonic() - started < 5
        assert [len(r.neighbours) for r in [reply] + [replies[0] for _, replies in held]] == [2, 2, 2]
        assert coordinator.tasks["t"].live.phase == "share"
        with pytest.raises(InvalidUpdate, match="took part already; it cannot decline"):
            coordinator.advertise_keys(
                pb.AdvertiseKeysRequest(credential=first.credential, task_id="t", round_id=first.round_id, decline="x")
            )
        with pytest.raises(StaleRound, match="is not the open round"):
            coordinator.advertise_keys(pb.AdvertiseKeysRequest(credential=first.credential, task_id="t", decline="x"))
    finally:
        coordinator.close()
