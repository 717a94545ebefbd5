"""The edge agent: check in, train when asked, report the update, and keep going.

    check in ── retry_after ──► wait (with jitter) ──► check in
        └── assignment ──► download weights ──► train locally ──► upload the delta
        └── scoring assignment ──► download weights ──► score on held-out samples ──► upload the scores

Network loss and coordinator restarts are normal: failed calls back off exponentially with
full jitter (capped), and a refusal that only means "the round moved on" is shrugged off.
Only what cannot get better by waiting — a revoked credential, data that does not fit the
model — stops the agent, with the reason.
"""

from __future__ import annotations

import json
import logging
import platform as platform_module
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fedge.client.secagg import NO_FLOOR, PlanRefused, PrivacyFloor, SecAggSession, refuse_unprotected
from fedge.client.transport import Transport, TransportError
from fedge.shared import codec, secagg
from fedge.shared.data.folder import LocalData, LocalDataError
from fedge.shared.files import write_atomically
from fedge.shared.models import is_external
from fedge.shared.nn import Model, Weights
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.stopping import Stop
from fedge.shared.training import TrainConfig, evaluate, fit, holdout_split

log = logging.getLogger("fedge.agent")

Samples = tuple[np.ndarray, np.ndarray]  # inputs and labels
ROUND_MOVED_ON = {"FAILED_PRECONDITION", "ALREADY_EXISTS", "NOT_FOUND"}
SIT_OUT_S = 1.0  # how often a client that left a secure round asks whether the next one opened
STATE_FILE = ".fedge-agent.json"  # in the device's data folder: its credential for each server


UNKNOWN_CREDENTIAL = "unknown credential"  # how the coordinator refuses a credential it never issued


class AgentStopped(RuntimeError):
    """A reason the agent cannot carry on (revoked credential, data that does not fit)."""


class UnknownCredential(AgentStopped):
    """The coordinator does not know this credential at all (not revoked: never issued, so the
    coordinator at that address was set up afresh). A client holding a new token may enrol again."""


def default_platform() -> str:
    return f"python-{platform_module.system().lower()}-{platform_module.machine()}"


@dataclass(frozen=True)
class Outcome:
    """What one check-in cycle did: trained a round, or was told to wait (or that all is done)."""

    trained_round: int | None = None
    wait_s: float = 0.0
    finished: bool = False
    reason: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)  # what the trained round reported


@dataclass
class SecureRound:
    """A secure round under way: which stage is next, and the request to (re)send for it."""

    assignment: pb.Assignment
    session: SecAggSession
    stage: str = "advertise"
    pending: Any = None
    upload: tuple | None = None  # the masked input, once made: a retry sends these same bytes


class Trainer(Protocol):
    """Turns the round's starting weights into an update: (delta, examples, metrics).

    A trainer that can also ``score(spec_json, weights, holdout)`` (LocalTrainer) takes part in
    scoring rounds; one without it declines them.

    ``start`` may be read-only views of the downloaded bytes: copy before changing them.
    """

    def __call__(
        self,
        spec_json: str,
        start: Weights,
        plan: TrainConfig,
        rng: np.random.Generator,
        trainable: Sequence[str] = (),
    ) -> tuple[Weights, int, dict[str, float]]:
        """``trainable`` names the parameters to train and report (fine-tuning); empty: all."""
        ...


class SampleSource(Protocol):
    """Where a device's samples come from, a data folder or the device's own reader (``DataFolder``,
    ``Reader``): the samples it gave last, and a fresh look (None: unchanged; LocalDataError or OSError:
    unreadable for now)."""

    data: LocalData

    def refresh(self) -> LocalData | None: ...


class LocalTrainer:
    """Trains on the device's samples with the engine; keeps the model between rounds.

    Given their ``source``, it takes the source's new samples before each round's work.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, source: SampleSource | None = None) -> None:
        if len(x) == 0:
            raise AgentStopped("the local data folder holds no samples")
        self.x, self.y, self.source = x, y, source
        self._model: tuple[str, Model] | None = None
        self._split: tuple[float, Samples, Samples | None] | None = None

    @classmethod
    def on(cls, source: SampleSource) -> LocalTrainer:
        return cls(source.data.x, source.data.y, source)

    def refuses(self, spec_json: str) -> str | None:
        """Why this device sits out a task: an external model lives in its clients' own code."""
        if is_external(json.loads(spec_json)):
            return "the task's model is external (a Flower client's): this device runs fedge's trainer, not --flower"
        return None

    def _take_new_samples(self) -> None:
        """The source's samples if they changed; while it cannot be read, those read before."""
        if self.source is None:
            return
        try:
            data = self.source.refresh()
        except (LocalDataError, OSError) as error:  # a file being written, a permission, a disk unmounted
            log.warning("local data unreadable for now, training on the %d samples read before: %s", len(self.y), error)
            return
        if data is not None:
            log.info("local data changed: %d samples (were %d)", len(data), len(self.y))
            self.x, self.y = data.x, data.y
            self._split = None  # a new held-out split
            self._model = None  # and the samples' shape checked against the model again

    def __call__(
        self,
        spec_json: str,
        start: Weights,
        plan: TrainConfig,
        rng: np.random.Generator,
        trainable: Sequence[str] = (),
    ) -> tuple[Weights, int, dict[str, float]]:
        self._take_new_samples()
        model = self.model(spec_json)
        model.set_weights(start)
        model.train_only(trainable)
        (x, y), held = self.split(plan.holdout)
        metrics = _scores(model, held) if held is not None else {}  # the model as received, before training
        result = fit(model, x, y, plan, rng)
        delta = [
            w - s
            for name, w, s in zip(model.parameter_names, model.get_weights(), start, strict=True)
            if not trainable or name in trainable
        ]
        return delta, result.num_examples, {"train_loss": result.loss, "train_accuracy": result.accuracy, **metrics}

    def score(self, spec_json: str, weights: Weights, holdout: float) -> tuple[int, dict[str, float]] | None:
        """(samples scored, eval_loss and eval_accuracy) of ``weights`` on the held-out samples;
        None when the device holds none out."""
        self._take_new_samples()
        _, held = self.split(holdout)
        if held is None:
            return None
        model = self.model(spec_json)
        model.set_weights(weights)
        return len(held[1]), _scores(model, held)

    def split(self, fraction: float) -> tuple[Samples, Samples | None]:
        """The samples to train on and those held out (None: none), made once per fraction."""
        if self._split is None or self._split[0] != fraction:
            train, held = holdout_split(len(self.x), fraction)
            if len(held) == 0:
                self._split = (fraction, (self.x, self.y), None)
            else:
                self._split = (fraction, (self.x[train], self.y[train]), (self.x[held], self.y[held]))
        return self._split[1], self._split[2]

    def model(self, spec_json: str) -> Model:
        if self._model is None or self._model[0] != spec_json:
            model = Model(json.loads(spec_json))
            if tuple(self.x.shape[1:]) != model.input_shape:
                raise AgentStopped(
                    f"local samples have shape {tuple(self.x.shape[1:])}, the task's model expects {model.input_shape}"
                )
            self._model = (spec_json, model)
        return self._model[1]


class Agent:
    def __init__(
        self,
        transport: Transport,
        credential: str,
        trainer: Trainer,
        platform: str | None = None,
        seed: int | list[int] | None = None,
        floor: PrivacyFloor = NO_FLOOR,
    ) -> None:
        """``floor``: the least on-device DP noise this device accepts (docs/privacy.md)."""
        self.transport, self.credential, self.trainer, self.floor = transport, credential, trainer, floor
        self.platform = platform or default_platform()
        self.rng = np.random.default_rng(seed)
        self._specs: tuple[str, list[codec.Spec]] | None = None  # the model's tensor specs, by its spec
        self.secure: SecureRound | None = None
        self.left: int | None = None  # a secure round this agent left: it cannot rejoin with new keys
        self.backoff = Backoff()

    @staticmethod
    def enroll(transport: Transport, token: str, name: str = "", platform: str | None = None, nonce: str = "") -> str:
        """Trade a one-time token for a credential. Every retry of one enrolment passes the same
        random ``nonce``, so a retry after a lost reply gets the client back instead of a refusal."""
        request = pb.EnrollRequest(token=token, platform=platform or default_platform(), client_name=name, nonce=nonce)
        return transport.enroll(request).credential

    def step(self) -> Outcome:
        """One request: a check-in, or the next stage of a secure round under way."""
        if self.secure is not None:
            return self._secure_step(self.secure)
        response = self.transport.check_in(pb.CheckInRequest(credential=self.credential, platform=self.platform))
        if response.HasField("retry"):
            retry = response.retry
            return Outcome(wait_s=retry.retry_after_ms / 1000, finished=retry.finished, reason=retry.reason)
        assignment = response.assignment
        if assignment.round_id == self.left:
            return Outcome(wait_s=SIT_OUT_S, reason="waiting for the next round: this one went on without us")
        refusal = getattr(self.trainer, "refuses", None)  # a trainer that cannot build every model says so
        reason = refusal(assignment.model_spec_json) if refusal is not None else None
        if reason:
            self.left = assignment.round_id
            self._decline(assignment, reason)
            return Outcome(wait_s=SIT_OUT_S, reason=reason)
        if assignment.plan.score_only:  # no update leaves the device: no privacy floor to check
            return self._score(assignment)
        try:
            if assignment.HasField("secagg"):
                self.secure = SecureRound(assignment, SecAggSession(assignment, self.credential, self.floor))
                return self._secure_step(self.secure)
            refuse_unprotected(assignment, self.floor)
        except PlanRefused as refused:
            self.left = assignment.round_id  # this device sits the round out
            self._decline(assignment, refused.message)
            raise
        delta, examples, metrics = self._train(assignment)
        trained = [t for t in assignment.tensors if not assignment.trainable or t.name in assignment.trainable]
        self._upload(assignment, codec.encode_parts(delta), trained, examples, metrics)
        return Outcome(trained_round=assignment.round, metrics=metrics)

    def _score(self, assignment: pb.Assignment) -> Outcome:
        """A scoring round: the received model's figures on the held-out samples, and no update."""
        score = getattr(self.trainer, "score", None)  # a trainer without it has nothing held out
        plan = assignment.plan
        scored = score(assignment.model_spec_json, self._download(assignment), plan.holdout) if score else None
        if scored is None:
            self.left = assignment.round_id
            self._decline(assignment, "this device holds no samples out to score the model on")
            return Outcome(wait_s=SIT_OUT_S, reason="sitting out a scoring round: no held-out samples")
        examples, metrics = scored
        self._upload(assignment, [], [], examples, metrics)
        return Outcome(trained_round=assignment.round, metrics=metrics)

    def _decline(self, assignment: pb.Assignment, reason: str) -> None:
        """Tell the coordinator this device sits the round out, so that the round does not wait for
        it: as its keys in a secure round, as its update otherwise. Best effort (unheard, the stage's
        deadline does the same)."""
        ids = {"credential": self.credential, "task_id": assignment.task_id, "round_id": assignment.round_id}
        try:
            if assignment.HasField("secagg"):
                self.transport.advertise_keys(pb.AdvertiseKeysRequest(**ids, decline=reason[:200]))
            else:
                self.transport.upload_update(pb.UpdateHeader(**ids, decline=reason[:200]), [])
        except TransportError as error:
            log.debug("round %d: the coordinator did not take the decline: %s", assignment.round, error)

    def _train(self, assignment: pb.Assignment) -> tuple[Weights, int, dict[str, float]]:
        start = self._download(assignment)
        trainable = list(assignment.trainable)
        return self.trainer(assignment.model_spec_json, start, _plan(assignment.plan), self.rng, trainable)

    def _secure_step(self, run: SecureRound) -> Outcome:
        """Advance a secure round by one request; a stage still open means: ask again shortly."""
        session, t = run.session, self.transport
        if run.stage == "advertise":
            roster = t.advertise_keys(session.advertise_request())
            if roster.retry_after_ms:
                return Outcome(wait_s=roster.retry_after_ms / 1000)
            session.take_roster(roster)
            run.stage, run.pending = "share", session.share_request()
        elif run.stage == "share":
            shares = t.share_keys(run.pending)
            if shares.retry_after_ms:
                return Outcome(wait_s=shares.retry_after_ms / 1000)
            session.take_shares(shares)
            run.stage, run.pending = "train", None
        elif run.stage == "train":
            if run.upload is None:  # a retry sends the same bytes: two masked inputs under one
                delta, examples, metrics = self._train(run.assignment)  # mask would show their difference
                masked = session.masked_input(delta, self.rng)  # clipped and noised first when the plan asks
                spec = pb.TensorSpec(name="masked", dtype="uint32", shape=[masked.size])
                run.upload = (codec.encode_parts([masked]), [spec], examples, metrics)
            self._upload(run.assignment, *run.upload)
            run.stage, run.pending = "unmask", pb.UnmaskRequest(**session._ids())
        elif run.stage == "unmask":
            reply = t.unmask(run.pending)
            if reply.retry_after_ms:
                return Outcome(wait_s=reply.retry_after_ms / 1000)
            if reply.done or run.pending.shares:
                return self._counted(run)
            run.pending = session.unmask_request(reply)
            if not run.pending.shares:
                return self._counted(run)
        return Outcome()

    def _counted(self, run: SecureRound) -> Outcome:
        """The secure round no longer needs this client: its input is in the sum."""
        self.secure = None
        return Outcome(trained_round=run.assignment.round, metrics=run.upload[3] if run.upload else {})

    def _download(self, assignment: pb.Assignment) -> Weights:
        request = pb.DownloadModelRequest(
            credential=self.credential, task_id=assignment.task_id, round_id=assignment.round_id
        )
        data = self.transport.download_model(request, assignment.model_bytes)
        if self._specs is None or self._specs[0] != assignment.model_spec_json:
            self._specs = (assignment.model_spec_json, codec.from_proto(assignment.tensors))
        return codec.decode(self._specs[1], data)

    def _upload(
        self, assignment: pb.Assignment, parts: list[memoryview], tensors: Any, examples: int, metrics: dict[str, float]
    ) -> None:
        header = pb.UpdateHeader(
            credential=self.credential,
            task_id=assignment.task_id,
            round_id=assignment.round_id,
            num_examples=examples,
            tensors=tensors,
            metrics=metrics,
        )
        response = self.transport.upload_update(header, parts)
        if response.status == pb.UPDATE_STATUS_DISCARDED:
            log.info("round %d: update discarded (%s)", assignment.round, response.message)

    def attempt(self) -> Outcome:
        """One step, with refusals and failures turned into outcomes: what ``run`` loops over."""
        try:
            outcome = self.step()
        except TransportError as error:
            return self._handle(error)
        except (secagg.ShareDecryptionError, secagg.KeyAgreementError) as error:
            # e.g. the agent restarted mid-round: its neighbours' bundles were sealed for old keys
            log.warning("secure round left: %s", error)
            self._leave()
            return Outcome(wait_s=SIT_OUT_S, reason=str(error))
        self.backoff.reset()
        return outcome

    def run(
        self, stop: Stop, exit_when_done: bool = False, on_outcome: Callable[[Outcome], None] | None = None
    ) -> None:
        """Loop until ``stop`` is set (or, with ``exit_when_done``, every task has completed)."""
        while not stop.is_set():
            outcome = self.attempt()
            if on_outcome:
                on_outcome(outcome)
            if outcome.finished and exit_when_done:
                return
            stop.wait(outcome.wait_s)

    def _handle(self, error: TransportError) -> Outcome:
        if error.code == "UNAUTHENTICATED":
            refusal = UnknownCredential if UNKNOWN_CREDENTIAL in error.message else AgentStopped
            raise refusal(f"the coordinator refused this client: {error.message}") from None
        secure = self.secure
        if error.code == "ALREADY_EXISTS" and secure is not None and secure.stage == "train":
            # the masked input arrived, its answer did not (a restart, a lost link): go on to unmask
            secure.stage, secure.pending = "unmask", pb.UnmaskRequest(**secure.session._ids())
            return Outcome()
        if error.code == "NOT_FOUND" and secure is not None and secure.stage == "unmask" and secure.upload:
            secure.stage = "train"  # the coordinator restarted without our masked input: send it again
            return Outcome()
        if error.code in ROUND_MOVED_ON:
            self._leave()  # a secure round that moved on cannot be resumed
            log.info("round moved on: %s", error.message)
            return Outcome(wait_s=0.1, reason=error.message)
        delay = self.backoff.next()
        log.warning("coordinator unreachable or failing (%s); retrying in %.1f s", error, delay)
        if error.code == "UNAVAILABLE" and self.backoff.failures == 1:  # once per outage: what to check
            log.warning(
                "is the coordinator running at that address, does it serve TLS (--tls-ca) or plaintext, "
                "and does it ask for a client certificate (--tls-identity)?"
            )
        return Outcome(wait_s=delay, reason=error.message)

    def _leave(self) -> None:
        if self.secure is not None:
            self.left = self.secure.assignment.round_id
        self.secure = None


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), capped."""

    def __init__(self, base_s: float = 0.25, cap_s: float = 30.0) -> None:
        self.base_s, self.cap_s, self.failures = base_s, cap_s, 0

    def next(self) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** min(self.failures, 32)))

    def reset(self) -> None:
        self.failures = 0


def _scores(model: Model, held: Samples) -> dict[str, float]:
    scored = evaluate(model, *held)
    return {"eval_loss": scored.loss, "eval_accuracy": scored.accuracy}


def _plan(plan: pb.TrainingPlan) -> TrainConfig:
    return TrainConfig(
        epochs=plan.epochs,
        batch_size=plan.batch_size,
        lr=float(plan.lr),
        optimizer=plan.optimizer,
        momentum=float(plan.momentum),
        proximal_mu=float(plan.proximal_mu),
        logit_adjustment=plan.logit_adjustment,
        steps=plan.steps,
        holdout=float(plan.holdout),
    )


def load_credential(path: Path, server: str, tls: bool = False) -> str | None:
    """A credential saved for ``server`` by an earlier run (tokens are one-time).

    One issued over TLS is never sent in plaintext: without ``tls`` it raises ValueError, so a
    restart that forgot ``--tls-ca`` cannot be tricked into handing it to whoever answers.
    """
    if not path.exists():
        return None
    saved = _read_state(path).get(server)
    if isinstance(saved, str):  # written before TLS existed: plaintext
        return saved
    if saved is None:
        return None
    if saved.get("tls") and not tls:
        raise ValueError(
            f"the credential for {server} in {path} was issued over TLS: pass --tls-ca (or --tls) again; "
            "it is never sent in plaintext"
        )
    return saved["credential"]


def save_credential(path: Path, server: str, credential: str, tls: bool = False) -> None:
    """Kept for the next start, atomically: a crash or a power cut while saving leaves the file
    as it was, and the credential is readable by this user only from the first byte."""
    saved = _read_state(path) if path.exists() else {}
    saved[server] = {"credential": credential, "tls": tls}
    # durable: an enrolment spends its token, so its credential must outlive a power cut
    write_atomically(path, json.dumps(saved).encode(), private=True, durable=True)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not an agent state file ({error}): move it away and enrol with a new token"
        ) from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not an agent state file (a JSON object): move it away and enrol with a new token")
    return saved
