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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from fedge.server.config import TaskConfig
from fedge.server.errors import InvalidRequest, InvalidUpdate, NotFound, PermissionDenied, TooLarge
from fedge.server.finetuning import initial_weights
from fedge.server.publishing import Publisher
from fedge.server.rounds import RETRY_IDLE_MS, TaskRounds, held_out_evaluator
from fedge.server.serving import Catalog
from fedge.server.store import Store
from fedge.server.strategies.base import readout
from fedge.shared import codec, data, registry
from fedge.shared.data.folder import load_local_data
from fedge.shared.nn import Model, Weights
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb

log = logging.getLogger("fedge.coordinator")
_Staged = TypeVar("_Staged", pb.AdvertiseKeysResponse, pb.ShareKeysResponse, pb.UnmaskResponse)


class Coordinator:
    # each task's download chunks, built once per version: (the encoded version, its ModelChunk messages)
    _chunks: dict[str, tuple[bytes, list[pb.ModelChunk]]] | None = None

    def __init__(
        self,
        tasks: Iterable[TaskConfig],
        data_dir: Path,
        chunk_bytes: int = 512 * 1024,
        splits: Mapping[str, data.Splits] | None = None,
        clock: Callable[[], float] = time.time,
        hold_s: float = 0.0,
        holders: int = 1,
    ) -> None:
        """``splits`` gives a task held-out data (evaluation, int8 calibration) and its inputs'
        normalisation (manifests); by default a task's ``evaluate_on`` dataset is loaded.

        ``hold_s``: a secure-stage request that finds its stage still open waits up to this long
        for the stage to close, and is answered then (a long poll: the round moves on as soon as the
        last client arrives, not a poll interval later); at most ``holders`` requests wait at once,
        so a daemon's worker threads are never all parked, and of them at most half are requests to
        unmask, which wait while masked inputs still come: the uploads need workers too. 0
        (in-process) never waits."""
        self.store = Store(data_dir)
        self.hold_s = hold_s
        self.holders = threading.BoundedSemaphore(max(1, holders))
        self.input_holders = threading.BoundedSemaphore(max(1, holders // 2))
        self.chunk_bytes = chunk_bytes
        self.admin_credential = self.store.admin_credential()
        # the key published models are signed with: created at first start, never replaced
        self.signing_key = registry.load_or_create(registry.key_path(data_dir))
        self.registry_root = Path(data_dir) / "registry"
        self.catalog = Catalog(self.registry_root)
        self.about: dict[str, Any] = {}  # the daemon's address, TLS, gateway (server/daemon.py)
        self.publishing = ThreadPoolExecutor(1, thread_name_prefix="fedge-publish")
        self.tasks: dict[str, TaskRounds] = {}
        for task in tasks:
            self.tasks[task.name] = self._start_task(task, (splits or {}).get(task.name), clock)
        resumed = [t.live.round_id for t in self.tasks.values() if t.live is not None]
        failed = self.store.fail_unfinished_rounds("coordinator restarted", keep=resumed)
        if failed:
            log.warning("%d unfinished round(s) from before a restart will be retried", failed)
        self.wake = threading.Event()

    def _start_task(self, task: TaskConfig, splits: data.Splits | None, clock: Callable[[], float]) -> TaskRounds:
        if splits is None and task.evaluate_on:
            splits = held_out_splits(task)
        if task.publish == "best" and splits is None and not task.published_by_devices:
            raise ValueError(
                f"task {task.name!r}: publish = 'best' compares held-out metrics: it needs evaluate_on, or"
                " publish_metric = 'eval_accuracy' with [task.training] holdout (the devices' scores)"
            )
        spec = task.model_spec()
        evaluate = held_out_evaluator(splits.heldout, spec) if splits is not None else None
        committed = partial(self.committed, task.name)
        publisher = Publisher(task, spec, self.registry_root, self.signing_key, splits, committed)

        def publish(version: int, weights: Weights, metrics: dict[str, Any]) -> None:
            if task.publish != "never":
                self.publishing.submit(publisher.on_commit, version, weights, metrics)

        def scored(version: int, metrics: dict[str, Any]) -> None:
            self.publishing.submit(publisher.on_scores, version, metrics)

        def initial(model: Model) -> Weights:
            return initial_weights(task, model, self.signing_key)

        rounds = TaskRounds(task, self.store, evaluate, clock, on_commit=publish, initial=initial, on_scored=scored)
        for version in publisher.candidates(rounds.version):  # what a crash left unpublished, if due
            weights, metrics = committed(version)
            earlier = self.store.load_weights(task.name, version - 1) if rounds.strategy.readout_average else weights
            publish(version, readout(rounds.strategy, earlier, weights), metrics)
        if rounds.scored and task.scoring_round:  # and what the scoring round's scores made due
            scored(rounds.version, self.store.scores(task.name))
        return rounds

    def committed(self, task_id: str, version: int) -> tuple[Weights, dict[str, Any]]:
        """A committed version's weights and metrics, read back from the store."""
        rows = self.store.query(
            "SELECT metrics_json FROM versions WHERE task_id = ? AND version = ?", (task_id, version)
        )
        metrics = json.loads(rows[0]["metrics_json"]) if rows else {}
        return self.store.load_weights(task_id, version), metrics

    @property
    def completed(self) -> bool:
        return all(t.completed for t in self.tasks.values())

    def tick(self) -> None:
        for task in self.tasks.values():
            task.tick()
        self.store.flush_due()

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
        self.publishing.shutdown(wait=True)  # a version being published is finished, not torn
        self.store.close()

    # -- the Coordinator service ------------------------------------------------------------
    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        client_id, credential = self.store.enroll(request.token, request.platform, request.client_name, request.nonce)
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

    def model_data(self, request: pb.DownloadModelRequest) -> bytes:
        """The round's weights, encoded once per version (the in-process transport takes them whole)."""
        client_id = self.store.authenticate(request.credential)
        return self._task(request.task_id).model_bytes(client_id, request.round_id)

    def download_model(self, request: pb.DownloadModelRequest) -> Iterator[pb.ModelChunk]:
        data = self.model_data(request)
        if self._chunks is None:
            self._chunks = {}
        cached = self._chunks.get(request.task_id)
        if cached is None or cached[0] is not data:  # a new version: its messages are built once, for everyone
            chunks = [
                pb.ModelChunk(offset=offset, data=data[offset : offset + self.chunk_bytes])
                for offset in range(0, len(data), self.chunk_bytes)
            ]
            cached = self._chunks[request.task_id] = (data, chunks)
        yield from cached[1]

    def upload_update(self, chunks: Iterator[pb.UpdateChunk]) -> pb.UploadUpdateResponse:
        first = next(chunks, None)
        if first is None or not first.HasField("header"):
            raise InvalidUpdate("expected the first chunk of an upload to be its header")
        header = first.header
        if header.decline:
            if any(chunk.HasField("header") or chunk.data for chunk in chunks):
                raise InvalidUpdate("an upload that declines carries no data")
            return self._decline(header)
        client_id, task, expected, counts = self._check_header(header)
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
        return self._receive(client_id, task, header, counts, data)

    def upload(self, header: pb.UpdateHeader, data: codec.Buffer | Sequence[codec.Buffer]) -> pb.UploadUpdateResponse:
        """An update handed over whole, or as its tensors' parts (the in-process transport): the
        same checks as a streamed one, without chunks or copies."""
        if header.decline:
            if codec.nbytes(data):
                raise InvalidUpdate("an upload that declines carries no data")
            return self._decline(header)
        client_id, task, expected, counts = self._check_header(header)
        size = codec.nbytes(data)
        if size > expected:
            raise TooLarge(f"expected {expected} bytes in all, got more ({size})")
        if size < expected:
            raise InvalidUpdate(f"expected {expected} bytes, got {size}: the upload was truncated")
        return self._receive(client_id, task, header, counts, data)

    def _decline(self, header: pb.UpdateHeader) -> pb.UploadUpdateResponse:
        client_id = self.store.authenticate(header.credential)
        self._task(header.task_id).decline(client_id, header.round_id, header.decline)
        self.wake.set()
        return pb.UploadUpdateResponse(
            status=pb.UPDATE_STATUS_DISCARDED, message="declined: the round goes on without it"
        )

    def _check_header(self, header: pb.UpdateHeader) -> tuple[str, TaskRounds, int, bool]:
        client_id = self.store.authenticate(header.credential)
        task = self._task(header.task_id)
        expected, counts = task.check_header(client_id, header)
        return client_id, task, expected, counts

    def _receive(
        self,
        client_id: str,
        task: TaskRounds,
        header: pb.UpdateHeader,
        counts: bool,
        data: codec.Buffer | Sequence[codec.Buffer],
    ) -> pb.UploadUpdateResponse:
        if not counts or not task.receive(client_id, header, data):
            return _discarded()
        self.wake.set()
        return pb.UploadUpdateResponse(status=pb.UPDATE_STATUS_ACCEPTED, message="accepted")

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        client_id = self.store.authenticate(request.credential)
        task = self._task(request.task_id)
        return self._held(task, lambda: task.advertise_keys(client_id, request))

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        client_id = self.store.authenticate(request.credential)
        task = self._task(request.task_id)
        return self._held(task, lambda: task.share_keys(client_id, request))

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        client_id = self.store.authenticate(request.credential)
        task = self._task(request.task_id)
        response = self._held(task, lambda: task.unmask(client_id, request), self.input_holders)
        self.wake.set()
        return response

    def _held(self, task: TaskRounds, call: Callable[[], _Staged], *gates: threading.BoundedSemaphore) -> _Staged:
        """``call()``; while it says "ask again", once more each time the round moves, for up to
        hold_s (a long poll, when a holder is free, and a place at every one of ``gates``)."""
        seen = task.transitions
        reply = call()
        if not (reply.retry_after_ms and self.hold_s):
            return reply
        taken = []
        for gate in (self.holders, *gates):
            if not gate.acquire(blocking=False):
                break
            taken.append(gate)
        try:
            deadline = time.monotonic() + self.hold_s
            while len(taken) == 1 + len(gates) and reply.retry_after_ms and (left := deadline - time.monotonic()) > 0:
                task.wait_for_change(seen, left)
                seen = task.transitions
                reply = call()
        finally:
            for gate in taken:
                gate.release()
        return reply

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
        return apb.GetStatusResponse(status_json=json.dumps({**status(self.store), "server": self.about}))


def _discarded() -> pb.UploadUpdateResponse:
    return pb.UploadUpdateResponse(
        status=pb.UPDATE_STATUS_DISCARDED, message="the round closed before this update arrived"
    )


def held_out_splits(task: TaskConfig) -> data.Splits:
    """What the coordinator evaluates a task's versions on: a dataset's held-out split, or every
    sample of a data folder (the heldout/ of `fedge data split`, or the operator's own)."""
    if task.evaluate_on in data.DATASETS:
        return data.load(task.evaluate_on)
    folder = load_local_data(Path(task.evaluate_on))
    where = f"task {task.name!r}: evaluate_on {task.evaluate_on}"
    if folder.labels != tuple(task.labels):
        raise ValueError(f"{where}: expected the task's labels {list(task.labels)}, got {list(folder.labels)}")
    if folder.sample_shape != tuple(task.input_shape):
        raise ValueError(
            f"{where}: expected samples of the task's input_shape {list(task.input_shape)}, "
            f"got {list(folder.sample_shape)}"
        )
    heldout = data.Dataset(folder.dataset, folder.x, folder.y, folder.labels)
    nothing = data.Dataset(folder.dataset, folder.x[:0], folder.y[:0], folder.labels)  # the coordinator never trains
    return data.Splits(nothing, heldout, folder.normalisation)
