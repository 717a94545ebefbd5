"""The web gateway over a real daemon on loopback, driven by a real WebSocket client.

Each test runs its client side in ``asyncio.run``; the gateway runs in its own thread and loop,
as it does inside ``fedge server``.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fedge.server.config import ServerSettings
from fedge.server.daemon import start
from fedge.server.gateway import Gateway, GatewayThread, Limits
from fedge.shared import codec
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.proto.gateway_pb2 import GatewayFrame

from .conftest import small_task

LIMITS = Limits(max_frame_bytes=64 * 1024, max_calls=4)
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


@dataclass
class Web:
    """A started gateway in front of the ``service`` daemon, and where its web root is."""

    address: str
    root: Path

    @property
    def url(self) -> str:
        return f"ws://{self.address}/ws"

    def get(self, path: str, method: str = "GET", **headers: str) -> http.client.HTTPResponse:
        """A raw HTTP request: the path goes out exactly as written (no normalising of '..')."""
        host, port = self.address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        connection.close()
        return response


def write_web_root(root: Path) -> None:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>fedge</title>")
    (root / "assets" / "app-5QKJ3Z7A.js").write_text("console.log('fedge')")
    (root / "assets" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "style.css").write_text("body {}")
    (root / ".env").write_text("SECRET=1")
    (root.parent / "secret.txt").write_text("not for the web")


def start_gateway(address: str, root: Path, limits: Limits = LIMITS) -> GatewayThread:
    thread = GatewayThread(Gateway(address, port=0, static_dir=root, limits=limits))
    thread.start()
    return thread


@pytest.fixture
def web(service, tmp_path) -> Iterator[Web]:
    root = tmp_path / "web"
    write_web_root(root)
    thread = start_gateway(service.running.address, root)
    try:
        yield Web(thread.address, root)
    finally:
        thread.stop()


# -- a client: one socket, calls by id ---------------------------------------------------------
class Client:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.next_id = 0

    def fresh(self) -> int:
        self.next_id += 1
        return self.next_id

    async def send(self, call: int, message: Any = None, method: str = "", end: bool = False) -> None:
        data = message.SerializeToString() if message is not None else b""
        await self.socket.send(GatewayFrame(call=call, method=method, message=data, end=end).SerializeToString())

    async def replies(self, call: int) -> list[GatewayFrame]:
        """The gateway's frames for ``call`` up to its end (this client runs one call at a time)."""
        frames = []
        while not frames or not frames[-1].end:
            frame = GatewayFrame.FromString(await asyncio.wait_for(self.socket.recv(), 10))
            assert frame.call == call, frame
            frames.append(frame)
        return frames

    async def unary(self, method: str, request: Any, response_type: Any) -> Any:
        call = self.fresh()
        await self.send(call, request, method, end=True)
        (frame,) = await self.replies(call)
        assert not frame.HasField("status"), frame.status
        return response_type.FromString(frame.message)

    async def enroll(self, token: str) -> str:
        return (
            await self.unary("Enroll", pb.EnrollRequest(token=token, platform="browser-test"), pb.EnrollResponse)
        ).credential

    async def check_in(self, credential: str) -> pb.CheckInResponse:
        return await self.unary("CheckIn", pb.CheckInRequest(credential=credential), pb.CheckInResponse)

    async def download(self, credential: str, job: pb.Assignment) -> list[np.ndarray]:
        call = self.fresh()
        request = pb.DownloadModelRequest(credential=credential, task_id=job.task_id, round_id=job.round_id)
        await self.send(call, request, "DownloadModel", end=True)
        frames = await self.replies(call)
        assert not frames[-1].HasField("status"), frames[-1].status
        data = b"".join(pb.ModelChunk.FromString(f.message).data for f in frames if f.message)
        return codec.decode(codec.from_proto(job.tensors), data)

    async def upload(self, chunks: list[pb.UpdateChunk]) -> GatewayFrame:
        call = self.fresh()
        for index, chunk in enumerate(chunks):
            await self.send(call, chunk, "UploadUpdate" if index == 0 else "", end=index == len(chunks) - 1)
        (frame,) = await self.replies(call)
        return frame


def over_gateway(web: Web, scenario: Callable[[Client], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with connect(web.url, compression=None) as socket:
            return await scenario(Client(socket))

    return asyncio.run(run())


async def closed_with(socket: ClientConnection) -> tuple[int, str]:
    """The close code and reason the gateway ended ``socket`` with."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    return closed.value.rcvd.code, closed.value.rcvd.reason


# -- calls ----------------------------------------------------------------------------------
def test_a_browser_enrols_and_checks_in_over_the_gateway(service, web):
    (token,) = service.tokens()

    async def scenario(client: Client) -> pb.CheckInResponse:
        return await client.check_in(await client.enroll(token))

    response = over_gateway(web, scenario)
    assert response.assignment.task_id == "t" and response.assignment.round == 1


def test_a_round_downloads_and_uploads_over_the_gateway(service, web):
    tokens = service.tokens(2)

    async def scenario(client: Client) -> tuple[list[np.ndarray], list[int]]:
        a, b = [await client.enroll(token) for token in tokens]
        jobs = [(await client.check_in(c)).assignment for c in (a, b)]
        start = await client.download(a, jobs[0])
        statuses = []
        for credential, job, value in ((a, jobs[0], 1.0), (b, jobs[1], 3.0)):
            delta = [np.full(w.shape, value, np.float32) for w in start]
            frame = await client.upload(service.chunks(credential, job, delta, num_examples=1))
            statuses.append(pb.UploadUpdateResponse.FromString(frame.message).status)
        return start, statuses

    start, statuses = over_gateway(web, scenario)
    assert statuses == [pb.UPDATE_STATUS_ACCEPTED] * 2
    task = service.running.coordinator.tasks["t"]
    assert task.version == 1
    np.testing.assert_allclose(task.weights[0], start[0] + 2.0)  # (1 + 3) / 2 with one example each


def test_bad_credential_comes_back_unauthenticated_and_the_socket_stays_usable(service, web):
    (token,) = service.tokens()

    async def scenario(client: Client) -> tuple[GatewayFrame, pb.CheckInResponse]:
        call = client.fresh()
        await client.send(call, pb.CheckInRequest(credential="forged"), "CheckIn", end=True)
        (refusal,) = await client.replies(call)
        return refusal, await client.check_in(await client.enroll(token))

    refusal, response = over_gateway(web, scenario)
    assert refusal.end and refusal.status.code == UNAUTHENTICATED and refusal.status.message
    assert response.HasField("assignment")


def test_unknown_method_fails_that_call_only(service, web):
    (token,) = service.tokens()

    async def scenario(client: Client) -> tuple[GatewayFrame, str]:
        await client.send(1, pb.CheckInRequest(), "Train", end=True)
        (refusal,) = await client.replies(1)
        client.next_id = 1
        return refusal, await client.enroll(token)

    refusal, credential = over_gateway(web, scenario)
    assert refusal.status.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert (
        "expected a method among Enroll, CheckIn" in refusal.status.message and "got 'Train'" in refusal.status.message
    )
    assert credential


def test_request_that_does_not_parse_fails_that_call(web):
    async def scenario(client: Client) -> GatewayFrame:
        await client.socket.send(
            GatewayFrame(call=1, method="CheckIn", message=b"\xff\xff", end=True).SerializeToString()
        )
        return (await client.replies(1))[0]

    refusal = over_gateway(web, scenario)
    assert refusal.status.code == INVALID_ARGUMENT
    assert refusal.status.message == "expected a CheckInRequest in call 1's message, got 2 bytes that are not one"


def test_unary_request_without_end_fails_that_call(web):
    async def scenario(client: Client) -> GatewayFrame:
        await client.send(1, pb.CheckInRequest(credential="c"), "CheckIn")
        return (await client.replies(1))[0]

    refusal = over_gateway(web, scenario)
    assert refusal.status.code == INVALID_ARGUMENT
    assert refusal.status.message == "expected end on CheckIn's one request frame (call 1), got a frame without it"


def test_late_frames_of_a_refused_upload_are_dropped_and_the_socket_stays_usable(service, web):
    (token,) = service.tokens()

    async def scenario(client: Client) -> tuple[GatewayFrame, pb.CheckInResponse]:
        credential = await client.enroll(token)
        job = (await client.check_in(credential)).assignment
        chunks = service.chunks("forged", job)
        call = client.fresh()
        await client.send(call, chunks[0], "UploadUpdate")
        (refusal,) = await client.replies(call)  # refused on its header, while the client is still sending
        for chunk in chunks[1:]:
            await client.send(call, chunk, end=chunk is chunks[-1])
        return refusal, await client.check_in(credential)

    refusal, response = over_gateway(web, scenario)
    assert refusal.status.code == UNAUTHENTICATED
    assert response.HasField("assignment")


def test_more_open_calls_than_allowed_fails_the_extra_call(service, web):
    (token,) = service.tokens()

    async def scenario(client: Client) -> tuple[GatewayFrame, GatewayFrame]:
        credential = await client.enroll(token)
        job = (await client.check_in(credential)).assignment
        header = service.chunks(credential, job)[0]
        calls = [client.fresh() for _ in range(LIMITS.max_calls)]
        for call in calls:  # uploads left open: each waits for its data
            await client.send(call, header, "UploadUpdate")
        extra = client.fresh()
        await client.send(extra, pb.CheckInRequest(credential=credential), "CheckIn", end=True)
        (refusal,) = await client.replies(extra)
        await client.send(calls[0], end=True)  # ends one upload, truncated
        (truncated,) = await client.replies(calls[0])
        return refusal, truncated

    refusal, truncated = over_gateway(web, scenario)
    assert refusal.status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert refusal.status.message == "expected at most 4 open calls on one socket, got one more (call 7)"
    assert truncated.status.code == INVALID_ARGUMENT and "truncated" in truncated.status.message


def test_calls_opened_faster_than_the_rate_are_refused_at_the_gateway_and_the_socket_goes_on(service, tmp_path):
    (token,) = service.tokens()
    root = tmp_path / "web"
    write_web_root(root)
    gateway = start_gateway(service.running.address, root, replace(LIMITS, calls_per_s=0.5, call_burst=5))

    async def check_in(client: Client, credential: str) -> GatewayFrame:
        call = client.fresh()
        await client.send(call, pb.CheckInRequest(credential=credential), "CheckIn", end=True)
        (frame,) = await client.replies(call)
        return frame

    async def scenario(client: Client) -> tuple[list[GatewayFrame], GatewayFrame]:
        credential = await client.enroll(token)  # one call of the burst of 5
        replies = [await check_in(client, credential) for _ in range(8)]  # 4 more, then too fast
        await asyncio.sleep(2.1)  # the bucket refills at one call per 2 s (slow: a loaded machine stays exact)
        return replies, await check_in(client, credential)

    try:
        replies, later = over_gateway(Web(gateway.address, root), scenario)
    finally:
        gateway.stop()
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert [r.status.code for r in replies] == [0] * 4 + [exhausted] * 4
    assert replies[4].status.message == (
        "expected at most 0.5 calls per second on one socket (bursts of 5), got more (call 6); slow down"
    )
    assert not later.HasField("status") and pb.CheckInResponse.FromString(later.message).HasField("assignment")


# -- framing mistakes close the socket --------------------------------------------------------
def closing_reason(web: Web, data: bytes | str) -> tuple[int, str]:
    async def scenario(client: Client) -> tuple[int, str]:
        await client.socket.send(data)
        return await closed_with(client.socket)

    return over_gateway(web, scenario)


def test_bytes_that_are_no_gateway_frame_close_the_socket_with_the_reason(web):
    assert closing_reason(web, b"not a protobuf frame") == (
        1007,
        "expected a GatewayFrame, got 20 bytes that are not one",
    )


def test_text_frame_closes_the_socket(web):
    assert closing_reason(web, "CheckIn") == (1003, "expected binary GatewayFrames, got a text frame")


def test_frame_for_a_call_that_is_not_open_closes_the_socket(web):
    frame = GatewayFrame(call=7, message=b"", end=True).SerializeToString()
    assert closing_reason(web, frame) == (1002, "call 7 is not open: expected a method on its first frame")


def test_call_id_zero_closes_the_socket(web):
    frame = GatewayFrame(call=0, method="CheckIn", end=True).SerializeToString()
    assert closing_reason(web, frame) == (1002, "expected a call id >= 1, got 0")


def test_oversized_frame_closes_the_socket_with_1009(web):
    frame = GatewayFrame(call=1, method="UploadUpdate", message=bytes(100_000)).SerializeToString()
    code, reason = closing_reason(web, frame)
    assert code == 1009 and f"exceeds limit of {LIMITS.max_frame_bytes} bytes" in reason


def test_a_misbehaving_socket_does_not_disturb_another(service, web):
    tokens = service.tokens(2)

    async def run() -> tuple[list[int], tuple[int, str]]:
        async with connect(web.url) as good, connect(web.url) as bad:
            client = Client(good)
            a, b = [await client.enroll(token) for token in tokens]
            jobs = [(await client.check_in(c)).assignment for c in (a, b)]
            chunks = service.chunks(a, jobs[0])
            call = client.fresh()
            for chunk in chunks[:3]:  # an upload half sent when the vandal strikes
                await client.send(call, chunk, "UploadUpdate" if chunk is chunks[0] else "")
            await bad.send(b"\xff" * 1000)
            closed = await closed_with(bad)
            for chunk in chunks[3:]:
                await client.send(call, chunk, end=chunk is chunks[-1])
            (first,) = await client.replies(call)
            second = await client.upload(service.chunks(b, jobs[1]))
            return [pb.UploadUpdateResponse.FromString(f.message).status for f in (first, second)], closed

    statuses, closed = asyncio.run(run())
    assert closed[0] == 1007
    assert statuses == [pb.UPDATE_STATUS_ACCEPTED] * 2


def test_idle_socket_is_closed_normally(service, tmp_path):
    thread = start_gateway(service.running.address, tmp_path, Limits(idle_timeout_s=0.2))

    async def run() -> tuple[int, str]:
        async with connect(f"ws://{thread.address}/ws") as socket:
            return await closed_with(socket)

    try:
        assert asyncio.run(run()) == (1000, "idle for 0.2 s with no open call")
    finally:
        thread.stop()


def test_an_open_call_keeps_an_idle_socket_open(service, tmp_path):
    thread = start_gateway(service.running.address, tmp_path, Limits(idle_timeout_s=0.2))
    (token,) = service.tokens()

    async def run() -> tuple[GatewayFrame, tuple[int, str]]:
        async with connect(f"ws://{thread.address}/ws") as socket:
            client = Client(socket)
            credential = await client.enroll(token)
            job = (await client.check_in(credential)).assignment
            call = client.fresh()
            await client.send(call, service.chunks(credential, job)[0], "UploadUpdate")
            await asyncio.sleep(0.5)  # the upload is open: no idle close
            await client.send(call, end=True)
            (truncated,) = await client.replies(call)
            return truncated, await closed_with(socket)

    try:
        truncated, closed = asyncio.run(run())
    finally:
        thread.stop()
    assert truncated.status.code == INVALID_ARGUMENT
    assert closed == (1000, "idle for 0.2 s with no open call")


def test_sockets_beyond_the_limit_are_refused_with_503(service, tmp_path):
    thread = start_gateway(service.running.address, tmp_path, Limits(max_connections=1))

    async def run() -> int:
        async with connect(f"ws://{thread.address}/ws"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://{thread.address}/ws"):
                    pass
            return refused.value.response.status_code

    try:
        assert asyncio.run(run()) == 503
    finally:
        thread.stop()


# -- plain HTTP ------------------------------------------------------------------------------
def test_index_is_served_at_the_root_and_revalidated(web):
    response = web.get("/")
    assert response.status == 200 and response.body.startswith(b"<!doctype html>")
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert response.getheader("Cache-Control") == "no-cache"
    again = web.get("/index.html", **{"If-None-Match": response.getheader("ETag")})
    assert again.status == 304 and again.body == b""


def test_wasm_is_served_as_application_wasm(web):
    response = web.get("/assets/ort-wasm-simd-threaded.wasm")
    assert response.status == 200 and response.body == b"\0asm\1\0\0\0"
    assert response.getheader("Content-Type") == "application/wasm"
    assert response.getheader("Cache-Control") == "no-cache"  # "threaded" is a word, not a content hash


def test_hashed_bundle_is_cached_for_a_year(web):
    response = web.get("/assets/app-5QKJ3Z7A.js")
    assert response.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert response.getheader("Cache-Control") == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt", "/.env"])
def test_paths_outside_the_web_root_are_not_found(web, path):
    response = web.get(path)
    assert response.status == 404 and b"not for the web" not in response.body and b"SECRET" not in response.body


def test_head_gives_the_length_without_the_body(web):
    response = web.get("/style.css", method="HEAD")
    assert response.status == 200 and response.getheader("Content-Length") == "7" and response.body == b""


def test_other_methods_are_refused(web):
    response = web.get("/index.html", method="DELETE")
    assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"


def test_healthz_follows_the_coordinator(web):
    response = web.get("/healthz")
    assert response.status == 200 and response.body.endswith(b": SERVING\n")


def test_healthz_says_when_the_coordinator_is_away(tmp_path):
    thread = start_gateway("127.0.0.1:1", tmp_path)
    try:
        response = Web(thread.address, tmp_path).get("/healthz")
    finally:
        thread.stop()
    assert response.status == 503 and response.body == b"coordinator at 127.0.0.1:1: UNAVAILABLE\n"


def test_a_mounted_route_is_served_and_its_errors_become_statuses(service, tmp_path):
    from fedge.server.errors import NotFound
    from fedge.server.gateway import HttpResponse

    def reports(request):
        if request.path == "/reports/":
            return HttpResponse(200, b"[]", "application/json")
        raise NotFound(f"no such report: {request.path}")

    gateway = Gateway(service.running.address, port=0, static_dir=tmp_path)
    gateway.mount("/reports/", reports)
    thread = GatewayThread(gateway)
    web = Web(thread.start(), tmp_path)
    try:
        listing, missing = web.get("/reports/"), web.get("/reports/9.json")
    finally:
        thread.stop()
    assert (listing.status, listing.body, listing.getheader("Content-Type")) == (200, b"[]", "application/json")
    assert (missing.status, missing.body) == (404, b"no such report: /reports/9.json\n")


def test_a_taken_port_is_reported_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as refused:
            GatewayThread(Gateway("127.0.0.1:1", port=port, static_dir=tmp_path)).start()
    assert str(refused.value) == f"cannot listen on 127.0.0.1:{port} for the web gateway: address already in use"


# -- inside the daemon -----------------------------------------------------------------------
def test_the_daemon_serves_the_gateway_on_its_http_port(tmp_path):
    from fedge.simulation.loopback import free_port

    settings = ServerSettings(port=0, http_port=free_port(), data_dir=tmp_path / "coordinator")
    running = start(settings, [small_task()], gateway=True, static_dir=tmp_path)
    try:
        response = Web(f"127.0.0.1:{settings.http_port}", tmp_path).get("/healthz")
    finally:
        running.stop(grace=0.5)
    assert response.status == 200
