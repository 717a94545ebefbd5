"""One WebSocket's calls, bridged one-to-one onto the Coordinator's gRPC methods.

Every binary frame is one GatewayFrame (protos/fedge/v1/gateway.proto). A call's first frame
names the method, and the method's kind says how many frames each side sends:

    unary          Enroll CheckIn AdvertiseKeys ShareKeys Unmask   client 1 (end)   gateway 1 (end)
    server stream  DownloadModel                                   client 1 (end)   gateway n, then end
    client stream  UploadUpdate                                    client n, end    gateway 1 (end)

Messages pass through as the bytes they are; the gateway parses each request only to refuse a
malformed one itself. Two kinds of mistake, two remedies:

    FrameError  the socket's framing is broken: the socket closes with a code and a reason
                (a text frame, bytes that are no GatewayFrame, call id 0, a frame for a call that
                is not open, a method on a call that is open, a frame after a call's end)
    CallError   one call is wrong: that call ends with a gRPC status, the socket carries on
                (an unknown method, a request that does not parse, too many open calls, calls
                opened faster than the socket's rate)

The coordinator's own statuses (UNAUTHENTICATED, FAILED_PRECONDITION, ...) come back unchanged.
Nothing is shared between sockets: each has its own `Session`, which ends its calls when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from fedge.server.gateway.limits import Limits
from fedge.shared.proto import coordinator_pb2
from fedge.shared.proto.gateway_pb2 import GatewayFrame, GatewayStatus

log = logging.getLogger("fedge.gateway")

MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 125 bytes with its code


@dataclass(frozen=True)
class Method:
    """A Coordinator RPC as the gateway bridges it."""

    name: str
    path: str  # "/fedge.v1.Coordinator/CheckIn"
    request: Any  # the request message class
    client_streaming: bool
    server_streaming: bool


def coordinator_methods() -> dict[str, Method]:
    """Every Coordinator RPC, from the descriptor: a method added to the proto is bridged too."""
    service = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"]
    return {
        m.name: Method(
            m.name,
            f"/{service.full_name}/{m.name}",
            getattr(coordinator_pb2, m.input_type.name),
            m.client_streaming,
            m.server_streaming,
        )
        for m in service.methods
    }


METHODS = coordinator_methods()


class FrameError(Exception):
    """The socket's framing is broken; it closes with ``code`` and ``reason``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class CallError(Exception):
    """One call is refused with a gRPC status; the socket carries on."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def close_reason(text: str) -> str:
    """A close reason cut to what a close frame can carry."""
    data = text.encode()
    return text if len(data) <= MAX_REASON_BYTES else data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def parse_frame(data: bytes | str) -> GatewayFrame:
    if isinstance(data, str):
        raise FrameError(CloseCode.UNSUPPORTED_DATA, "expected binary GatewayFrames, got a text frame")
    try:
        frame = GatewayFrame.FromString(data)
    except DecodeError:
        reason = f"expected a GatewayFrame, got {len(data)} bytes that are not one"
        raise FrameError(CloseCode.INVALID_DATA, reason) from None
    if frame.call == 0:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "expected a call id >= 1, got 0")
    if frame.HasField("status"):
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"expected no status from a client, got one on call {frame.call}")
    return frame


def parse_request(method: Method, call: int, message: bytes) -> None:
    """Refuse a request that does not parse here, with its name, rather than as the server's INTERNAL."""
    try:
        method.request.FromString(message)
    except DecodeError:
        kind = method.request.DESCRIPTOR.name
        raise CallError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"expected a {kind} in call {call}'s message, got {len(message)} bytes that are not one",
        ) from None


class Session:
    """The calls open on one socket, and the frames that belong to them."""

    def __init__(self, websocket: ServerConnection, channel: grpc.aio.Channel, limits: Limits) -> None:
        self.websocket, self.channel, self.limits = websocket, channel, limits
        self.calls: dict[int, Call] = {}
        # Calls the gateway ended while the client was still sending: their late frames are dropped.
        self.abandoned: OrderedDict[int, None] = OrderedDict()
        self.loop = asyncio.get_running_loop()
        self.quiet_since = self.loop.time()
        self.allowance, self.counted_at = float(limits.call_burst), self.quiet_since  # the call rate's bucket

    async def run(self) -> None:
        try:
            async for data in self.frames():
                await self.dispatch(parse_frame(data))
        except FrameError as error:
            log.info("closing a socket (%s): %s", error.code.name, error.reason)
            await self.websocket.close(error.code, close_reason(error.reason))
        except ConnectionClosed:
            pass
        finally:
            await self.end_calls()

    async def frames(self) -> AsyncIterator[bytes | str]:
        """Incoming frames; a socket with no open call and no frame for a while is closed (clients reconnect)."""
        idle = self.limits.idle_timeout_s
        while True:
            try:
                async with asyncio.timeout_at(self.quiet_since + idle):
                    data = await self.websocket.recv()  # cancelling recv() loses no frame
            except TimeoutError:
                if self.calls:
                    self.touch()
                elif self.loop.time() >= self.quiet_since + idle:
                    raise FrameError(CloseCode.NORMAL_CLOSURE, f"idle for {idle:g} s with no open call") from None
                continue
            self.touch()
            yield data

    def touch(self) -> None:
        """Restart the idle clock: a frame came, a call is open, or one just ended."""
        self.quiet_since = self.loop.time()

    async def dispatch(self, frame: GatewayFrame) -> None:
        call = self.calls.get(frame.call)
        if call is not None:
            if frame.method:
                reason = f"expected a fresh call id for {frame.method}, got call {frame.call}, which is open"
                raise FrameError(CloseCode.PROTOCOL_ERROR, reason)
            await call.feed(frame)
        elif frame.method:
            self.abandoned.pop(frame.call, None)
            await self.open(frame)
        elif frame.call in self.abandoned:
            if frame.end:
                del self.abandoned[frame.call]
        else:
            reason = f"call {frame.call} is not open: expected a method on its first frame"
            raise FrameError(CloseCode.PROTOCOL_ERROR, reason)

    async def open(self, frame: GatewayFrame) -> None:
        try:
            call = Call(self, frame.call, self.method(frame), frame)
        except CallError as error:
            await self.send(status_frame(frame.call, error.code, error.message))
            if not frame.end:
                self.abandon(frame.call)
            return
        self.calls[frame.call] = call
        call.start()

    def method(self, frame: GatewayFrame) -> Method:
        method = METHODS.get(frame.method)
        if method is None:
            known = ", ".join(METHODS)
            raise CallError(grpc.StatusCode.UNIMPLEMENTED, f"expected a method among {known}, got {frame.method!r}")
        if len(self.calls) >= self.limits.max_calls:
            message = (
                f"expected at most {self.limits.max_calls} open calls on one socket, got one more (call {frame.call})"
            )
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.count_call(frame.call)
        return method

    def count_call(self, call: int) -> None:
        """Take one call from the socket's bucket, which refills at calls_per_s up to call_burst."""
        now, limits = self.loop.time(), self.limits
        self.allowance = min(limits.call_burst, self.allowance + (now - self.counted_at) * limits.calls_per_s)
        self.counted_at = now
        if self.allowance < 1:
            message = (
                f"expected at most {limits.calls_per_s:g} calls per second on one socket "
                f"(bursts of {limits.call_burst}), got more (call {call}); slow down"
            )
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.allowance -= 1

    def abandon(self, call: int) -> None:
        self.abandoned[call] = None
        while len(self.abandoned) > 4 * self.limits.max_calls:
            self.abandoned.popitem(last=False)

    def closed(self, call: Call) -> None:
        if self.calls.get(call.id) is call:
            del self.calls[call.id]
            self.touch()
        if not call.client_ended:
            self.abandon(call.id)

    async def send(self, frame: GatewayFrame) -> None:
        await self.websocket.send(frame.SerializeToString())

    async def end_calls(self) -> None:
        tasks = [call.task for call in self.calls.values() if call.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def status_frame(call: int, code: grpc.StatusCode, message: str) -> GatewayFrame:
    return GatewayFrame(call=call, end=True, status=GatewayStatus(code=code.value[0], message=message))


class Call:
    """One open call: its request frames in, its gRPC call's replies out, one final frame."""

    def __init__(self, session: Session, call_id: int, method: Method, first: GatewayFrame) -> None:
        if not method.client_streaming and not first.end:
            message = f"expected end on {method.name}'s one request frame (call {call_id}), got a frame without it"
            raise CallError(grpc.StatusCode.INVALID_ARGUMENT, message)
        parse_request(method, call_id, first.message)
        self.session, self.id, self.method = session, call_id, method
        self.first = first.message
        self.client_ended = first.end
        self.ended = False  # the gateway's last frame for this call is sent
        self.task: asyncio.Task | None = None
        self.requests: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=session.limits.upload_queue)
        if method.client_streaming:
            self.requests.put_nowait(first.message)
            if first.end:
                self.requests.put_nowait(None)

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"gateway call {self.id} {self.method.name}")

    async def feed(self, frame: GatewayFrame) -> None:
        """A later frame of a client-streaming call; waits while the upload is behind (backpressure)."""
        if self.client_ended:
            reason = f"call {self.id} ({self.method.name}) already sent its end: expected no more frames"
            raise FrameError(CloseCode.PROTOCOL_ERROR, reason)
        self.client_ended = frame.end
        if frame.message:
            try:
                parse_request(self.method, self.id, frame.message)
            except CallError as error:
                await self.fail(error)
                return
            await self.requests.put(frame.message)
        if frame.end:
            await self.requests.put(None)

    async def fail(self, error: CallError) -> None:
        """End the call from the gateway's side: cancel the RPC, tell the client why."""
        if self.task is not None:
            self.task.cancel()
        await self.finish(status_frame(self.id, error.code, error.message))

    async def finish(self, frame: GatewayFrame) -> None:
        """Send the call's last frame, once; the call is closed before it leaves, so the client may reuse its id."""
        if not self.ended:
            self.ended = True
            self.release()
            await self.session.send(frame)

    async def run(self) -> None:
        try:
            await self.bridge()
        except grpc.aio.AioRpcError as error:
            await self.finish(status_frame(self.id, error.code(), error.details() or ""))
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("gateway call %s failed", self.method.name)
            await self.finish(status_frame(self.id, grpc.StatusCode.INTERNAL, "internal error; the gateway logged it"))
        finally:
            self.release()

    async def bridge(self) -> None:
        channel, path = self.session.channel, self.method.path
        if self.method.server_streaming:
            async for message in channel.unary_stream(path)(self.first):
                await self.session.send(GatewayFrame(call=self.id, message=message))
            await self.finish(GatewayFrame(call=self.id, end=True))
        elif self.method.client_streaming:
            response = await channel.stream_unary(path)(self.uploaded())
            await self.finish(GatewayFrame(call=self.id, message=response, end=True))
        else:
            response = await channel.unary_unary(path)(self.first)
            await self.finish(GatewayFrame(call=self.id, message=response, end=True))

    async def uploaded(self) -> AsyncIterator[bytes]:
        while (message := await self.requests.get()) is not None:
            yield message

    def release(self) -> None:
        """Forget the call; free a `feed` that waits on a full queue nobody will read again."""
        self.session.closed(self)
        while not self.requests.empty():
            self.requests.get_nowait()
