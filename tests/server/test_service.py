"""The Coordinator service over real gRPC on loopback: a client's happy path."""

from __future__ import annotations

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fedge.shared.proto import coordinator_pb2 as pb


def test_health_service_reports_serving(service):
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(service.running.address))
    response = stub.Check(health_pb2.HealthCheckRequest(service="fedge.v1.Coordinator"))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_a_round_commits_the_mean_of_two_updates(service):
    a, b = service.enroll(), service.enroll()
    first, second = service.assignment(a), service.assignment(b)
    start = service.weights(a, first)
    ones = [np.ones_like(w) for w in start]
    assert service.upload(a, first, ones, num_examples=1).status == pb.UPDATE_STATUS_ACCEPTED
    assert service.upload(b, second, [3 * o for o in ones], num_examples=3).status == pb.UPDATE_STATUS_ACCEPTED

    tasks = service.running.coordinator.tasks["t"]
    assert tasks.version == 1
    # weighted by examples: (1·1 + 3·3) / 4 = 2.5 added to every parameter
    np.testing.assert_allclose(tasks.weights[0], start[0] + 2.5)


def test_check_in_during_a_full_round_says_when_to_come_back(service):
    a, b, c = service.enroll(), service.enroll(), service.enroll()
    service.assignment(a), service.assignment(b)
    response = service.stub.CheckIn(pb.CheckInRequest(credential=c))
    assert response.WhichOneof("outcome") == "retry"
    assert response.retry.retry_after_ms > 0 and response.retry.reason == "round full"
