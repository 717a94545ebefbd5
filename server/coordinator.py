"""The coordinator's request-level API: what the gRPC servicers and in-process clients call.

It authenticates, finds the task, and hands over to that task's ``TaskRounds``. Requests and
replies are the protocol's own messages, so the in-process transport of a simulation runs the
very code a daemon runs; only the bytes on a socket are skipped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fedge.server.errors import InvalidRequest, InvalidUpdate, NotFound, PermissionDenied, TooLarge
from fedge.server.rounds import RETRY_IDLE_MS, TaskRounds
from fedge.server.store import Store
from fedge.shared import codec, registry
from fedge.shared.nn import Weights
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb

log = logging.getLogger("fedge.coordinator")


def signing_key_path(data_dir: Path) -> Path:
    return Path(data_dir) / "keys" / "signing.key"


class Coordinator:
    def __init__(
        self,
        tasks: Iterable[Any],
        data_dir: Path,
        chunk_bytes: int = 512 * 1024,
        evaluators: Mapping[str, Callable[[Weights], dict[str, float]]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = Store(data_dir)
        self.chunk_bytes = chunk_bytes
        failed = self.store.fail_unfinished_rounds("coordinator restarted")
        if failed:
            log.warning("%d unfinished round(s) from before a restart will be retried", failed)
        self.admin_credential = self.store.admin_credential()
        # the key published models are signed with: created at first start, never replaced
        self.signing_key = registry.load_or_create(signing_key_path(data_dir))
        self.tasks: dict[str, TaskRounds] = {}
        for task in tasks:
            self.tasks[task.name] = TaskRounds(task, self.store, (evaluators or {}).get(task.name), clock)
        self.wake = threading.Event()

    @property
    def completed(self) -> bool:
        return all(t.completed for t in self.tasks.values())

    def tick(self) -> None:
        for task in self.tasks.values():
            task.tick()

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Drive time-based transitions until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a bug in one tick must not stop the daemon's rounds
                log.exception("round tick failed")
            self.wake.wait(interval)
            self.wake.clear()

    def close(self) -> None:
        self.store.close()

    # -- the Coordinator service ------------------------------------------------------------
    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        client_id, credential = self.store.enroll(request.token, request.platform, request.client_name)
        log.info("client %s enrolled (%s)", client_id, request.platform or "unknown platform")
        return pb.EnrollResponse(client_id=client_id, credential=credential)

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse:
        client_id = self.store.authenticate(request.credential)
        self.store.touch(client_id, request.platform)
        for task in self.tasks.values():
            response = task.check_in(client_id)
            if response.HasField("assignment"):
                return response
        if self.completed:
            return pb.CheckInResponse(
                retry=pb.RetryAfter(retry_after_ms=RETRY_IDLE_MS, reason="all tasks completed", finished=True)
            )
        return response

    def download_model(self, request: pb.DownloadModelRequest) -> Iterator[pb.ModelChunk]:
        client_id = self.store.authenticate(request.credential)
        data = self._task(request.task_id).model_bytes(client_id, request.round_id)
        for offset in range(0, len(data), self.chunk_bytes):
            yield pb.ModelChunk(offset=offset, data=data[offset : offset + self.chunk_bytes])

    def upload_update(self, chunks: Iterator[pb.UpdateChunk]) -> pb.UploadUpdateResponse:
        first = next(chunks, None)
        if first is None or not first.HasField("header"):
            raise InvalidUpdate("expected the first chunk of an upload to be its header")
        header = first.header
        client_id = self.store.authenticate(header.credential)
        task = self._task(header.task_id)
        expected, counts = task.check_header(client_id, header)
        assembler = codec.Assembler(expected)
        for chunk in chunks:
            if not chunk.HasField("data"):
                raise InvalidUpdate("expected data chunks after the header, got a second header")
            try:
                assembler.add(chunk.data)
            except codec.CodecError as error:
                raise TooLarge(str(error)) from None
        try:
            data = assembler.finish()
        except codec.CodecError as error:
            raise InvalidUpdate(str(error)) from None
        if not counts or not task.receive(client_id, header, data):
            return _discarded()
        self.wake.set()
        return pb.UploadUpdateResponse(status=pb.UPDATE_STATUS_ACCEPTED, message="accepted")

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        client_id = self.store.authenticate(request.credential)
        return self._task(request.task_id).advertise_keys(client_id, request)

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        client_id = self.store.authenticate(request.credential)
        return self._task(request.task_id).share_keys(client_id, request)

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        client_id = self.store.authenticate(request.credential)
        response = self._task(request.task_id).unmask(client_id, request)
        self.wake.set()
        return response

    def _task(self, task_id: str) -> TaskRounds:
        if task_id not in self.tasks:
            raise NotFound(f"no task {task_id!r}")
        return self.tasks[task_id]

    # -- the Admin service -----------------------------------------------------------------
    def _admin(self, credential: str) -> None:
        if not self.store.check_admin(credential):
            raise PermissionDenied("admin credential missing or wrong (see <data_dir>/admin.token)")

    def create_tokens(self, request: apb.CreateTokensRequest) -> apb.CreateTokensResponse:
        self._admin(request.admin_credential)
        if not 1 <= request.count <= 10_000:
            raise InvalidRequest(f"expected 1 <= count <= 10000, got {request.count}")
        return apb.CreateTokensResponse(tokens=self.store.create_tokens(request.count))

    def revoke_token(self, request: apb.RevokeTokenRequest) -> apb.RevokeTokenResponse:
        self._admin(request.admin_credential)
        revoked = self.store.revoke(request.token_or_client_id)
        if revoked == "client":
            for task in self.tasks.values():
                task.drop(request.token_or_client_id)
        return apb.RevokeTokenResponse(revoked=revoked)

    def get_status(self, request: apb.GetStatusRequest) -> apb.GetStatusResponse:
        from fedge.server.status import status

        self._admin(request.admin_credential)
        return apb.GetStatusResponse(status_json=json.dumps(status(self.store)))


def _discarded() -> pb.UploadUpdateResponse:
    return pb.UploadUpdateResponse(
        status=pb.UPDATE_STATUS_DISCARDED, message="the round closed before this update arrived"
    )
