"""A task's rounds as a state machine; one ``TaskRounds`` per task, one live round at a time.

    select     assign checking-in clients until the cohort is full (clients_per_round ×
               over_selection), or clients_per_round joined and no one else came for a moment,
               or the select timeout passed with at least min_clients
    train      the cohort downloads, trains and reports; updates are folded into the
               aggregator as they arrive (memory O(P)); ends at clients_per_round reports, when
               every member reported, or at the deadline
    aggregate  the strategy turns the mean update into the next global weights
    commit     version files first, then one transaction: round committed, task version + 1
    evaluate   the new version on the held-out split, when the task names a dataset for it
    scored     a scoring round (TaskConfig.scoring_round): after the last version, the cohort
               only scores it on its held-out samples and uploads eval_* with no tensors;
               nothing is aggregated or committed, and the task completes
    failed     too few reports by the deadline, or a restart: retried as a new attempt, with
               nothing of the failed attempt counted (a secure round past advertise is instead
               resumed from the store: server/securestate.py)

Every transition is persisted through ``Store.set_phase``; ``tick`` drives the time-based
ones, ``receive`` the report-driven ones. All state is guarded by one lock per task.

Pace steering: a client with nothing to do (it reported, or the cohort is full) is told to
come back when the next round is expected to open, estimated from the pace of the reports,
bounded by the round's deadlines, and jittered early; never every few hundred milliseconds,
which with a thousand clients was most of the coordinator's work.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedge.server.config import TaskConfig
from fedge.server.errors import DuplicateUpdate, InvalidUpdate, StaleRound
from fedge.server.finetuning import trained_indices
from fedge.server.secagg import SecAggRound, automatic_neighbours, automatic_threshold
from fedge.server.securestate import PHASES, SecureState
from fedge.server.store import Store
from fedge.server.strategies import make_strategy
from fedge.server.strategies.base import Aggregator, ScaledMean, Update, readout
from fedge.shared import codec, data, training
from fedge.shared.models import external_spec, read_parameters
from fedge.shared.nn import Model, Weights
from fedge.shared.privacy import clip_update, gaussian_noise, plan_noise
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.secagg import FORMAT, Quantizer
from fedge.shared.training import MAX_METRIC_NAME, MAX_METRICS, TrainConfig

log = logging.getLogger("fedge.rounds")

SELECT_GRACE_S = 1.0  # with clients_per_round joined, wait this long for over-selected extras
PACE_WINDOW = 16  # pace steering: the time between this many recent reports gives a round's pace
# Pace steering: a client with nothing to do comes back after this share of the time until the
# next round is expected to open, drawn at random: early, because a late client holds up the next
# round while an early one only checks in again; spread, so that a cohort does not come at once.
RETRY_SHARE = (0.5, 0.8)
RETRY_MIN_MS = 50  # and never sooner than this ...
RETRY_MAX_MS = 30_000  # ... nor later
RETRY_SELECTING_MS = 1000  # ... nor, while the cohort still forms, later than this (then times the share)
RETRY_IDLE_MS = 2000  # nothing to do
STAGE_POLL_MS = 100  # a secure-aggregation stage is still open
STAGE_WAIT_MAX_MS = 1000  # ... and, paced by the round's inputs, at most this long
MAX_EXAMPLES = 2**31 - 1  # a client's claimed num_examples; also keeps sums within the store's integers


@dataclass
class LiveRound:
    """The round being run: its cohort and the aggregator its updates stream into."""

    round_id: int
    number: int
    attempt: int
    phase: str
    opened_at: float
    train: TrainConfig
    aggregator: Aggregator
    cohort: dict[str, str] = field(default_factory=dict)  # client_id -> assigned | reported | dropped
    last_join: float = 0.0
    stage_started: float = 0.0  # when the current phase began: deadlines count from it
    first_report: float = 0.0
    last_report: float = 0.0
    # when the last PACE_WINDOW + 1 reports came since selection closed (before, they came as members joined)
    pace: deque[float] = field(default_factory=lambda: deque(maxlen=PACE_WINDOW + 1))
    metric_sums: dict[str, float] = field(default_factory=dict)
    examples: int = 0
    secagg: SecAggRound | None = None
    saved: SecureState | None = None  # with secagg: its state as the store keeps it
    reports: int = 0  # members that reported (counted as the cohort changes: it may hold thousands)
    dropped: int = 0
    check_in_reply: tuple[float, pb.CheckInResponse] | None = None  # the assignment, for this stage
    scoring: bool = False  # devices only score the last version (no update, nothing committed)

    def mark(self, client_id: str, status: str) -> None:
        before = self.cohort.get(client_id)
        self.reports += (status == "reported") - (before == "reported")
        self.dropped += (status == "dropped") - (before == "dropped")
        self.cohort[client_id] = status

    @property
    def awaited(self) -> int:
        """Members still expected to report or already reported (not dropped)."""
        return len(self.cohort) - self.dropped


class TaskRounds:
    """Runs one task's rounds; the plain API the service (and simulations) call."""

    def __init__(
        self,
        task: TaskConfig,
        store: Store,
        evaluate: Callable[[Weights], dict[str, float]] | None = None,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[int, Weights, dict[str, Any]], None] | None = None,
        initial: Callable[[Model], Weights] | None = None,
        on_scored: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> None:
        """``on_commit(version, weights, metrics)`` runs after each commit (publishing), and
        ``on_scored(version, metrics)`` after a scoring round; ``initial`` makes version 0 from the
        task's freshly seeded model, only when the task is new (fine-tuning starts from a published
        model)."""
        self.task, self.store, self.clock, self.on_commit = task, store, clock, on_commit
        self.on_scored = on_scored
        self.task_id = task.name
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified at every phase change
        self.transitions = 0  # phase changes so far: a waiter compares it with what it saw
        self.evaluate = evaluate
        self.last_metrics: dict[str, Any] = {}
        self.noise_rng = np.random.default_rng()  # fresh OS entropy: DP noise must not be predictable
        self.accountant = None
        if task.dp_noise:
            from fedge.shared.privacy import PrivacyAccountant

            # the population is unknown, so no amplification by sampling is claimed (rate 1)
            self.accountant = PrivacyAccountant(task.dp_noise, 1.0, task.dp_delta)
        if task.external:  # the clients' own model: its parameters as the operator saved them
            self.names, first = read_parameters(task.initial_weights)
            self.spec = external_spec(self.names, first)  # read once, not again through task.model_spec()
            fresh: Callable[[], Weights] = lambda: first  # noqa: E731
        else:
            self.spec = task.model_spec()
            model = Model(self.spec, seed=task.seed)
            self.names = model.parameter_names
            fresh = (lambda: initial(model)) if initial is not None else model.get_weights
        self.trained = trained_indices(self.names, task.train_layers)  # what clients train and report
        self.strategy = make_strategy(task.strategy, **task.strategy_options)
        self.version = store.task_version(self.task_id)
        changed: list[str] = []
        if self.version is None:
            self.version = store.ensure_task(self.task_id, _config_json(task), self.spec, fresh())
        else:
            changed = self._take_changed_settings()
        self.weights = store.load_weights(self.task_id, self.version)
        saved_state = store.load_state(self.task_id, self.version)
        if saved_state is not None and "strategy" in changed:  # another optimiser's moments mean nothing to it
            log.info("task %s: strategy %s starts its server state afresh from version %d",
                     self.task_id, task.strategy, self.version)  # fmt: skip
            saved_state = None
        self.strategy.load_state(saved_state or self.strategy.state())
        self.specs = codec.specs_for(self.weights, self.names)
        size = sum(self.weights[i].size for i in self.trained)
        # securely aggregated updates travel as one masked uint32 vector, 4 bytes per parameter
        trained_specs = [self.specs[i] for i in self.trained]
        self.upload_specs = [codec.Spec("masked", "uint32", (size,))] if task.secagg else trained_specs
        self.encoded = codec.encode(self.weights)
        self.spec_json, self.tensor_protos = json.dumps(self.spec), codec.to_proto(self.specs)
        self.upload_protos = codec.to_proto(self.upload_specs)
        self.upload_bytes = sum(spec.nbytes for spec in self.upload_specs)
        if task.dp_noise:
            _warn_of_dp_noise(task, size)
        # closed round ids -> their cohort, and the clients a commit counted: to answer stragglers
        self.recent: dict[int, tuple[set[str], set[str]]] = {}
        # pace steering: recent rounds' seconds between two reports, and seconds to commit
        self.report_gap_s: float | None = None
        self.commit_s = 0.0
        self.jitter = random.Random()
        self.scored = store.task_completed(self.task_id)  # the scoring round, if the task has one, is done
        self.scoring_ids: set[int] = set()  # this process's scoring rounds: their late uploads hold no tensors
        self._steps = {
            "select": self._select_step,
            "advertise": self._advertise_step,
            "share": self._share_step,
            "train": self._train_step,
            "unmask": self._unmask_step,
        }  # what moves a live round on from each phase (``_advance``)
        self.live: LiveRound | None = None
        if not self.completed and not self._resume():
            self._open()

    def _take_changed_settings(self) -> list[str]:
        """A restart with the task's table edited: more rounds, another cohort or deadline apply
        from the next round, and the store's copy, which `fedge status` reads, follows. A changed
        model cannot: the committed versions are of the old one. Returns the changed keys."""
        stored, spec, status = self.store.task_settings(self.task_id)
        if spec != json.loads(json.dumps(self.spec)):
            raise ValueError(
                f"task {self.task_id!r}: its model (model, input_shape, labels or initial_weights) is not the one "
                f"its {self.version} committed version(s) were trained as: give the changed task a new name, or "
                "start from another data dir"
            )
        now = _config_json(self.task)
        changed = sorted(key for key in now.keys() | stored.keys() if now.get(key) != stored.get(key))
        if not changed:
            return changed
        log.info(
            "task %s: settings changed since the last start: %s", self.task_id,
            ", ".join(f"{key} {json.dumps(stored.get(key))} → {json.dumps(now.get(key))}" for key in changed),
        )  # fmt: skip
        done = self.version >= self.task.rounds and (status == "completed" or not self.task.scoring_round)
        self.store.update_task_settings(self.task_id, now, "completed" if done else "running")
        return changed

    @property
    def completed(self) -> bool:
        return self.version >= self.task.rounds and (self.scored or not self.task.scoring_round)

    # -- phases ------------------------------------------------------------------------------
    def _open(self) -> None:
        number = self.version + 1
        round_id, attempt = self.store.open_round(self.task_id, number)
        self.live = self._live_round(round_id, number, attempt, "select")
        if self.live.scoring:
            self.scoring_ids.add(round_id)
        elif self.task.secagg:
            self.live.secagg = SecAggRound(round_id, self.upload_specs[0].shape[0], self._secagg_plan())
            self.live.saved = SecureState(self.store, self.live.secagg, self.store.secure_sums(self.task_id))
        log.info("task %s: round %d opened (attempt %d, id %d)", self.task_id, number, attempt, round_id)

    def _live_round(self, round_id: int, number: int, attempt: int, phase: str) -> LiveRound:
        """Round ``number``'s live state, its stage starting now: the clients' plan, an empty aggregate."""
        scoring = number > self.task.rounds
        lr = self.task.lr_at(min(1.0, (number - 1) / self.task.rounds))
        train = self.task.training.override({"lr": lr, **self.strategy.configure(number)})
        now = self.clock()
        aggregator = self.strategy.aggregator(self._trained(self.weights), train)
        live = LiveRound(round_id, number, attempt, phase, now, train, aggregator, scoring=scoring)
        live.stage_started = now
        return live

    def _resume(self) -> bool:
        """Carry on a secure round that a previous process left open past advertise (False: none).

        Its stage's deadline starts again now; a client whose masked input came after the last
        checkpoint is asked for it again when it asks to unmask (server/securestate.py).
        """
        row = self.store.open_secure_round(self.task_id)
        if row is None:
            return False
        if not self.task.secagg or row["number"] != self.version + 1:
            self.store.set_phase(row["round_id"], "failed", "coordinator restarted")
            return False
        try:
            saved = SecureState.resume(self.store, row["round_id"], self.store.secure_sums(self.task_id))
            if saved.round.size != self.upload_specs[0].shape[0]:
                raise ValueError(f"its sum has {saved.round.size} values, the task's update {self.upload_bytes // 4}")
        except (ValueError, KeyError, OSError) as error:
            self.store.set_phase(row["round_id"], "failed", f"coordinator restarted; secure state unusable: {error}")
            return False
        s, number = saved.round, row["number"]
        live = self._live_round(row["round_id"], number, row["attempt"], PHASES[s.stage])
        live.secagg, live.saved = s, saved
        for client, i in s.index.items():
            live.mark(client, "reported" if i in s.inputs else "assigned")
        live.examples, live.metric_sums = saved.counts.get("examples", 0), saved.counts.get("metric_sums", {})
        self.live = live
        self._to(live.phase)
        log.info(
            "task %s: round %d resumed at stage %s with %d of %d masked inputs (id %d)",
            self.task_id, number, s.stage, len(s.inputs), len(s.sharers), live.round_id,
        )  # fmt: skip
        return True

    def _to(self, phase: str, reason: str | None = None) -> None:
        assert self.live is not None
        self.live.phase = phase
        self.store.set_phase(self.live.round_id, phase, reason)
        with self.changed:  # the round's lock (re-entrant): held already, except while resuming
            self.transitions += 1
            self.changed.notify_all()

    def wait_for_change(self, seen: int, timeout_s: float) -> None:
        """Block until a phase change after the ``seen``-th, or for ``timeout_s``."""
        with self.changed:
            self.changed.wait_for(lambda: self.transitions != seen, timeout=timeout_s)

    def tick(self) -> None:
        """Advance what time decides: the end of selection, stage deadlines."""
        with self.lock:
            self._advance()

    def _advance(self) -> None:
        """Take every transition that is due, one phase at a time (each step says if it moved)."""
        while self.live is not None and self._steps[self.live.phase](self.live, self.clock()):
            pass

    def _enter(self, live: LiveRound, phase: str, now: float) -> None:
        live.stage_started = now
        self._to(phase)

    def _expired(self, live: LiveRound, now: float, limit: float) -> bool:
        return now - live.stage_started >= limit

    def _select_step(self, live: LiveRound, now: float) -> bool:
        if not self._selection_over(live, now):
            return False
        live.pace.clear()  # reports so far came only as fast as members joined
        self._enter(live, "advertise" if live.secagg else "train", now)
        return True

    def _advertise_step(self, live: LiveRound, now: float) -> bool:
        s = live.secagg
        assert s is not None
        if len(s.keys) < live.awaited and not self._expired(live, now, self.task.secagg_timeout_s):
            return False
        if len(s.keys) < self.task.min_clients:
            self._fail(
                f"{len(s.keys)} of {len(live.cohort)} selected clients advertised keys, {self.task.min_clients} needed"
            )
        elif len(s.keys) - 1 < s.plan.threshold:  # each secret is split among at most n - 1 neighbours
            self._fail(
                f"{len(s.keys)} clients advertised keys: each has at most {len(s.keys) - 1} neighbours, "
                f"fewer than the {s.plan.threshold} shares needed to unmask"
            )
        else:
            s.close_advertise()
            self._saved(live).roster_closed()
            self._enter(live, "share", now)
        return True

    def _share_step(self, live: LiveRound, now: float) -> bool:
        s = live.secagg
        assert s is not None
        if len(s.sharers) < len(s.keys) and not self._expired(live, now, self.task.secagg_timeout_s):
            return False
        if len(s.sharers) < self.task.min_clients:
            self._fail(f"{len(s.sharers)} of {len(s.keys)} clients shared their keys, {self.task.min_clients} needed")
        else:
            s.close_share()
            self._saved(live).shares_closed()
            self._enter(live, "train", now)
        return True

    def _train_step(self, live: LiveRound, now: float) -> bool:
        if not self._training_over(live, now):
            return False
        if live.secagg is None or live.reports < self.task.min_clients:
            self._finish(live)
        else:
            live.secagg.close_collect()
            self._saved(live).checkpoint()  # the sum as unmasking will use it
            self._enter(live, "unmask", now)
        return True

    def _unmask_step(self, live: LiveRound, now: float) -> bool:
        s = live.secagg
        assert s is not None
        expired = self._expired(live, now, self.task.secagg_timeout_s)
        if s.can_finish():
            self._finish(live)
        elif expired or s.no_more_reveals():  # the restarted have no shares to reveal: no use waiting
            why = "" if expired else ": the other survivors restarted"
            self._fail(f"too few shares were revealed to unmask (threshold {s.plan.threshold}){why}")
        else:
            return False
        return True

    def _selection_over(self, live: LiveRound, now: float) -> bool:
        joined = len(live.cohort)
        if joined >= self.task.cohort_size:
            return True
        if joined >= self.task.clients_per_round and now - live.last_join >= SELECT_GRACE_S:
            return True
        return joined >= self.task.min_clients and now - live.opened_at >= self.task.select_timeout_s

    def _training_over(self, live: LiveRound, now: float) -> bool:
        expected = live.secagg.awaited_inputs() if live.secagg else live.awaited  # no deadline for the restarted
        if live.reports >= self.task.clients_per_round or live.reports == expected:
            return True
        return self._expired(live, now, self.task.train_deadline_s)

    def _finish(self, live: LiveRound) -> None:
        if live.reports < self.task.min_clients:
            reason = f"{live.reports} of {len(live.cohort)} selected clients reported, {self.task.min_clients} needed"
            self._fail(reason)
            return
        if live.scoring:
            self._close_scoring(live)
            return
        started = self.clock()
        self._to("aggregate")
        weights = self._merged(self.strategy.step(self._trained(self.weights), self._mean_update(live)))
        self._to("commit")
        model = readout(self.strategy, self.weights, weights)  # what is evaluated and published
        metrics = self._metrics(live, model)
        self.store.commit_version(
            self.task_id,
            live.round_id,
            live.number,
            weights,
            self.strategy.state(),
            metrics,
            live.number >= self.task.rounds and not self.task.scoring_round,
        )
        self.version, self.weights, self.last_metrics = live.number, weights, metrics
        self.encoded = codec.encode(weights)
        self._close(live, committed=True)
        log.info(
            "task %s: round %d committed version %d %s", self.task_id, live.number, self.version, json.dumps(metrics)
        )
        if self.on_commit is not None:
            self.on_commit(self.version, model, metrics)
        self._learn_pace(live, started)
        if not self.completed:
            self._open()

    def _close_scoring(self, live: LiveRound) -> None:
        """The devices' scores of the last version: recorded with the round, which ends the task."""
        metrics = self._figures(live, self.version)
        self.store.close_scoring(self.task_id, live.round_id, metrics)
        self.scored = True
        self._close(live, committed=True)
        log.info("task %s: round %d scored version %d %s", self.task_id, live.number, self.version, json.dumps(metrics))
        if self.on_scored is not None:
            self.on_scored(self.version, metrics)

    def _figures(self, live: LiveRound, version: int) -> dict[str, Any]:
        """What every closed round reports: the clients' own figures (a scoring round's: their
        eval_* on the samples they scored) weighted by examples, then the round's, which none of
        theirs can overwrite."""
        metrics: dict[str, Any] = {k: v / live.examples for k, v in live.metric_sums.items()}
        metrics.update(
            round=live.number,
            version=version,
            clients=live.reports,
            examples=live.examples,
            duration_s=self.clock() - live.opened_at,
        )
        return metrics

    def _learn_pace(self, live: LiveRound, finishing_since: float) -> None:
        """Remember how fast this round's reports came and how long its commit took (pace steering)."""
        if len(live.pace) >= 2:  # the pace once selection had closed
            gap = (live.pace[-1] - live.pace[0]) / (len(live.pace) - 1)
            self.report_gap_s = _average(self.report_gap_s, gap)
        elif live.reports >= 2:  # every report came while the cohort formed
            gap = (live.last_report - live.first_report) / (live.reports - 1)
            self.report_gap_s = _average(self.report_gap_s, gap)
        self.commit_s = _average(self.commit_s, self.clock() - finishing_since)

    def _mean_update(self, live: LiveRound) -> Weights:
        """The round's mean update: streamed in the clear, or unmasked from the secure sum (unweighted)."""
        if live.secagg is None:
            mean = live.aggregator.result()
            if self.task.dp_noise:  # central DP: the trusted server adds N(0, (z·C)²) to the sum
                noise = gaussian_noise([w.shape for w in mean], self.task.dp_noise * self.task.dp_clip, self.noise_rng)
                mean = [(m + n / live.aggregator.count).astype(np.float32) for m, n in zip(mean, noise, strict=True)]
            return mean
        s = live.secagg
        count = len(s.inputs)
        quantizer = Quantizer(s.plan.clip, s.plan.max_clients)
        flat = quantizer.dequantize_sum(s.unmasked_sum(), count) / count
        return _unflatten(flat, self._trained(self.weights))

    def _trained(self, weights: Weights) -> Weights:
        """The parameters clients train (all of them unless the task fine-tunes some layers)."""
        return [weights[i] for i in self.trained]

    def _merged(self, trained: Weights) -> Weights:
        """The next global weights: the trained parameters' new values, the frozen ones as they were."""
        weights = list(self.weights)
        for i, w in zip(self.trained, trained, strict=True):
            weights[i] = w
        return weights

    def _fail(self, reason: str) -> None:
        live = self.live
        assert live is not None
        self._to("failed", reason)
        log.warning("task %s: round %d attempt %d failed: %s", self.task_id, live.number, live.attempt, reason)
        self._close(live)
        self._open()

    def _close(self, live: LiveRound, committed: bool = False) -> None:
        counted = {c for c, status in live.cohort.items() if status == "reported"} if committed else set()
        self.recent[live.round_id] = (set(live.cohort), counted)
        for stale in sorted(self.recent)[:-4]:
            del self.recent[stale]
        self.live = None

    def _metrics(self, live: LiveRound, weights: Weights) -> dict[str, Any]:
        metrics = self._figures(live, live.number)
        if isinstance(live.aggregator, ScaledMean):  # a strategy whose server step adapts (fedexp, fednova)
            metrics["server_step"] = live.aggregator.step_size
        if self.accountant is not None:
            self.accountant.rounds = live.number
            metrics.update(epsilon=self.accountant.epsilon(), epsilon_round=self.accountant.epsilon_per_round())
            metrics["delta"] = self.task.dp_delta
        if self.evaluate is not None:
            metrics.update(self.evaluate(weights))
        return metrics

    # -- what clients call ------------------------------------------------------------------
    def check_in(self, client_id: str) -> pb.CheckInResponse:
        with self.lock:
            live = self.live
            if live is None:
                return _retry(RETRY_IDLE_MS, "task completed")
            if live.cohort.get(client_id) == "reported":
                if live.secagg is not None:  # a secure session asks Unmask, never CheckIn: this one lost it
                    live.secagg.forget(client_id)
                return _retry(self._until_next_round(live), "already reported in this round")
            if client_id not in live.cohort:
                if live.phase != "select" or len(live.cohort) >= self.task.cohort_size:
                    return _retry(self._until_next_round(live), "round full")
                live.mark(client_id, "assigned")
                live.last_join = self.clock()
                self.store.record_participant(live.round_id, client_id, "assigned")
            if live.check_in_reply is None or live.check_in_reply[0] != live.stage_started:
                live.check_in_reply = (live.stage_started, pb.CheckInResponse(assignment=self._assignment(live)))
            return live.check_in_reply[1]  # the same for the whole cohort: built once per stage

    def _until_next_round(self, live: LiveRound) -> int:
        """Pace steering: milliseconds until a client with nothing to do should check in again.

        The round ends at its target number of reports, then commits. The time between recent
        reports says when the rest will come: this round's, once two have arrived since
        selection closed, else the last rounds'. (Not the last rounds' length: that includes
        waiting for late clients, and would make them later still.) While the cohort still
        forms, reports come only as fast as members join, and speed up once all have: the
        wait is then at most RETRY_SELECTING_MS, and, when every member so far has reported,
        at least the pause since the last one joined. The round's deadlines bound it all.
        """
        now = self.clock()
        selecting = live.phase == "select"
        each = self.report_gap_s
        if len(live.pace) >= 2 and (each is None or not selecting):  # this round's recent pace
            each = (now - live.pace[0]) / (len(live.pace) - 1)  # (slower and slower while no one reports)
        if each is None:  # the first round's first report: the longer it has run, the longer it may run
            wait_s = max(0.2, 0.25 * (now - live.opened_at))
        else:
            target = self.task.clients_per_round if selecting else min(self.task.clients_per_round, live.awaited)
            wait_s = max(0, target - live.reports) * each + self.commit_s
        if selecting:
            if live.reports >= live.awaited:  # no one can report before someone joins
                wait_s = max(wait_s, now - live.last_join)
            wait_s = min(wait_s, RETRY_SELECTING_MS / 1000)
        wait_s = min(wait_s, self._latest_end(live) - now, RETRY_MAX_MS / 1000)
        return max(RETRY_MIN_MS, int(wait_s * 1000 * self.jitter.uniform(*RETRY_SHARE)))

    def _latest_end(self, live: LiveRound) -> float:
        """When the round ends at the latest: the deadlines of the stages it has left."""
        t = self.task
        stages = ("select", "advertise", "share", "train", "unmask") if live.secagg else ("select", "train")
        limits = {"select": t.select_timeout_s, "train": t.train_deadline_s}  # the secure stages: secagg_timeout_s
        left = stages[stages.index(live.phase) :] if live.phase in stages else ()
        return live.stage_started + sum(limits.get(s, t.secagg_timeout_s) for s in left) + self.commit_s

    def _assignment(self, live: LiveRound) -> pb.Assignment:
        t = live.train
        deadline = live.stage_started + self.task.select_timeout_s + self.task.train_deadline_s
        return pb.Assignment(
            task_id=self.task_id,
            round_id=live.round_id,
            round=live.number,
            model_version=self.version,
            model_spec_json=self.spec_json,
            tensors=self.tensor_protos,
            model_bytes=len(self.encoded),
            plan=pb.TrainingPlan(
                epochs=t.epochs,
                batch_size=t.batch_size,
                lr=t.lr,
                optimizer=t.optimizer,
                momentum=t.momentum,
                proximal_mu=t.proximal_mu,
                logit_adjustment=t.logit_adjustment,
                steps=t.steps,
                holdout=t.holdout,
                score_only=live.scoring,
            ),
            deadline_unix_ms=int(deadline * 1000),
            secagg=live.secagg.plan if live.secagg else None,
            trainable=[self.names[i] for i in self.trained] if self.task.train_layers else [],
        )

    def _secagg_plan(self) -> pb.SecAggPlan:
        n = self.task.cohort_size
        k = self.task.secagg_neighbours or automatic_neighbours(n)
        t = self.task.secagg_threshold or automatic_threshold(k, n)
        plan = pb.SecAggPlan(neighbours=k, threshold=t, clip=self.task.secagg_clip, max_clients=n, format=FORMAT)
        plan.dp_clip = self.task.dp_clip
        if self.task.dp_noise:  # distributed DP: min_clients devices' noise is z × the sensitivity (docs/privacy.md)
            noise = plan_noise(
                secagg_clip=self.task.secagg_clip,
                max_clients=n,
                dp_clip=self.task.dp_clip,
                noise_multiplier=self.task.dp_noise,
                min_clients=self.task.min_clients,
                dim=self.upload_specs[0].shape[0],
            )  # the quantiser's clip widened so that the noisy sum cannot wrap; devices check it all
            plan.clip, plan.dp_clip, plan.dp_noise_stddev = noise.clip, noise.dp_clip, noise.client_stddev
            plan.dp_min_clients, plan.dp_noise_multiplier = noise.min_clients, noise.noise_multiplier
        return plan

    def model_bytes(self, client_id: str, round_id: int) -> bytes:
        with self.lock:
            self._member(client_id, round_id)
            return self.encoded

    def _member(self, client_id: str, round_id: int) -> LiveRound:
        live = self.live
        if live is None or round_id != live.round_id:
            current = "none" if live is None else str(live.round_id)
            raise StaleRound(f"round {round_id} is not the open round of task {self.task_id!r} (open: {current})")
        if client_id not in live.cohort:
            raise StaleRound(f"client {client_id} was not selected for round {round_id}")
        return live

    def _late(self, client_id: str, round_id: int) -> bool:
        """A straggler from a round that has closed since it joined: valid, but too late to count."""
        return round_id in self.recent and client_id in self.recent[round_id][0]

    def _counted(self, client_id: str, round_id: int) -> bool:
        """Whether a closed round committed with this client's update in it."""
        return round_id in self.recent and client_id in self.recent[round_id][1]

    def check_header(self, client_id: str, header: pb.UpdateHeader) -> tuple[int, bool]:
        """Refuse an update before its bytes arrive: the schema first, then the round.

        Returns the bytes to expect and whether the update will count (False: its round has
        closed; it is read, within the same limit, and discarded).
        """
        scoring = header.round_id in self.scoring_ids
        self._check_schema(header, scoring)
        expected = 0 if scoring else self.upload_bytes
        with self.lock:
            if self._late(client_id, header.round_id):
                return expected, False
            live = self._member(client_id, header.round_id)
            if live.cohort[client_id] == "reported":
                raise DuplicateUpdate(f"client {client_id} already reported in round {header.round_id}")
            return expected, True

    def _check_schema(self, header: pb.UpdateHeader, scoring: bool) -> None:
        if not 1 <= header.num_examples <= MAX_EXAMPLES:
            raise InvalidUpdate(f"expected 1 <= num_examples <= {MAX_EXAMPLES}, got {header.num_examples}")
        if len(header.metrics) > MAX_METRICS or any(len(k) > MAX_METRIC_NAME for k in header.metrics):
            raise InvalidUpdate(
                f"expected at most {MAX_METRICS} metrics with names of {MAX_METRIC_NAME} characters or fewer"
            )
        if scoring:
            if header.tensors:
                raise InvalidUpdate("a scoring round takes the devices' scores only: expected no tensors")
            return
        if list(header.tensors) == self.upload_protos:  # the usual case, compared without building specs
            return
        try:
            codec.check_specs(self.upload_specs, codec.from_proto(header.tensors))
        except codec.CodecError as error:
            raise InvalidUpdate(str(error)) from None

    def decline(self, client_id: str, round_id: int, reason: str) -> None:
        """A member refused its assignment: it is out of the round now, so no stage waits for it."""
        with self.lock:
            live = self._member(client_id, round_id)
            if live.cohort[client_id] == "reported" or (live.secagg is not None and client_id in live.secagg.keys):
                raise InvalidUpdate(f"round {round_id}: this client took part already; it cannot decline")
            if live.cohort[client_id] != "dropped":
                log.info("task %s round %d: a client declined: %.200s", self.task_id, live.number, reason)
                live.mark(client_id, "dropped")
                self.store.record_participant(live.round_id, client_id, "declined")
            self._advance()

    def drop(self, client_id: str) -> None:
        """A revoked client will not report: stop waiting for it."""
        with self.lock:
            live = self.live
            if live is not None and live.cohort.get(client_id) == "assigned":
                live.mark(client_id, "dropped")
                self.store.record_participant(live.round_id, client_id, "dropped")

    def receive(self, client_id: str, header: pb.UpdateHeader, data: codec.Buffer | Sequence[codec.Buffer]) -> bool:
        """Fold a complete, checked update into the round's aggregate; False if its round closed while it streamed."""
        scoring = header.round_id in self.scoring_ids
        tensors = codec.decode([] if scoring else self.upload_specs, data)
        if not (self.task.secagg or scoring):
            try:
                codec.check_finite(tensors, [s.name for s in self.upload_specs])
            except codec.CodecError as error:
                raise InvalidUpdate(str(error)) from None
        with self.lock:
            if self._late(client_id, header.round_id):
                return False
            live = self._member(client_id, header.round_id)
            if live.cohort[client_id] == "reported":
                raise DuplicateUpdate(f"client {client_id} already reported in round {header.round_id}")
            if live.scoring:
                self._count_report(live, client_id, header)
            elif live.secagg is not None:
                live.secagg.check_input(client_id)
                self._count_report(live, client_id, header)
                counts = {"examples": live.examples, "metric_sums": live.metric_sums}
                self._saved(live).add_input(client_id, tensors[0], counts)
            else:
                self._add_clear(live, client_id, tensors, int(header.num_examples))
                self._count_report(live, client_id, header)
            self._advance()
            return True

    def _add_clear(self, live: LiveRound, client_id: str, delta: Weights, examples: int) -> None:
        """An update in the clear; with differential privacy it is clipped and counts once, so that
        one client moves the sum by at most dp_clip."""
        if self.task.dp_clip:
            delta, _ = clip_update(delta, self.task.dp_clip)
            examples = 1
        try:  # the tensors' dtypes and finiteness were checked in ``receive``, naming the tensor
            live.aggregator.add(Update(delta, examples, client_id, checked=True))
        except ValueError as error:
            raise InvalidUpdate(str(error)) from None

    def _count_report(self, live: LiveRound, client_id: str, header: pb.UpdateHeader) -> None:
        live.last_report = self.clock()
        if live.reports == 0:
            live.first_report = live.last_report
        live.pace.append(live.last_report)
        live.mark(client_id, "reported")
        live.examples += header.num_examples
        for key, value in header.metrics.items():
            contribution = value * header.num_examples
            if math.isfinite(contribution):
                live.metric_sums[key] = live.metric_sums.get(key, 0.0) + contribution
        self.store.record_participant(live.round_id, client_id, "reported", int(header.num_examples))

    # -- secure aggregation stages (server/secagg.py) ------------------------------------------
    @staticmethod
    def _saved(live: LiveRound) -> SecureState:
        assert live.saved is not None
        return live.saved

    def _secure(self, client_id: str, round_id: int) -> SecAggRound:
        live = self._member(client_id, round_id)
        if live.secagg is None:
            raise StaleRound(f"round {round_id} of task {self.task_id!r} does not use secure aggregation")
        return live.secagg

    def _stage(self, client_id: str, request: Any, act: str, waiting: Any) -> Any:
        """One stage request: advance the round, let the stage take it, advance again; while the
        stage is open the reply is ``waiting`` (ask again shortly)."""
        with self.lock:
            self._advance()
            secure = self._secure(client_id, request.round_id)
            stage = secure.stage
            reply = getattr(secure, act)(client_id, request)
            self._advance()
            if reply is None and secure.stage != stage:  # this request closed the stage: answer it now
                reply = getattr(secure, act)(client_id, request)
            return reply or waiting

    def advertise_keys(self, client_id: str, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        if request.decline:
            self.decline(client_id, request.round_id, request.decline)
            return pb.AdvertiseKeysResponse()
        return self._stage(client_id, request, "advertise", pb.AdvertiseKeysResponse(retry_after_ms=STAGE_POLL_MS))

    def share_keys(self, client_id: str, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        return self._stage(client_id, request, "share", pb.ShareKeysResponse(retry_after_ms=STAGE_POLL_MS))

    def unmask(self, client_id: str, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        with self.lock:
            if (request.shares and self._late(client_id, request.round_id)) or self._counted(
                client_id, request.round_id
            ):
                return pb.UnmaskResponse(done=True)  # the round finished without (these) shares
            self._advance()
            live = self._member(client_id, request.round_id)
            reply = self._secure(client_id, request.round_id).unmask(client_id, request)
            if request.shares:  # taken: kept before the round may finish (and forget them)
                self._saved(live).revealed(client_id, list(request.shares))
            self._advance()
            return reply or pb.UnmaskResponse(retry_after_ms=self._until_unmask(live))

    def _until_unmask(self, live: LiveRound) -> int:
        """Milliseconds until a client that asks to unmask should ask again: while masked inputs
        still come, about when the last is due at this round's pace (a little before, so no one
        is late), at most STAGE_WAIT_MAX_MS; else, or with no pace yet, STAGE_POLL_MS."""
        s = live.secagg
        missing = s.awaited_inputs() - len(s.inputs) if s is not None and s.stage == "collect" else 0
        if not missing or len(live.pace) < 2:
            return STAGE_POLL_MS
        each = (self.clock() - live.pace[0]) / (len(live.pace) - 1)
        wait_ms = missing * each * 1000 * self.jitter.uniform(*RETRY_SHARE)
        return int(min(max(wait_ms, STAGE_POLL_MS), STAGE_WAIT_MAX_MS))


def _unflatten(flat: np.ndarray, like: Weights) -> Weights:
    out, offset = [], 0
    for w in like:
        out.append(flat[offset : offset + w.size].reshape(w.shape).astype(np.float32))
        offset += w.size
    return out


def _average(previous: float | None, value: float, weight: float = 0.3) -> float:
    """An exponential moving average: recent rounds count most."""
    return value if previous is None else (1 - weight) * previous + weight * value


def _retry(ms: int, reason: str) -> pb.CheckInResponse:
    return pb.CheckInResponse(retry=pb.RetryAfter(retry_after_ms=ms, reason=reason))


def _config_json(task: TaskConfig) -> dict:
    from dataclasses import asdict

    config = asdict(task)
    return json.loads(json.dumps(config, default=str))


def held_out_evaluator(heldout: data.Dataset, spec: dict) -> Callable[[Weights], dict[str, float]]:
    """Evaluates versions on a held-out split no client trains on (simulations and demos)."""
    model = Model(spec)

    def run(weights: Weights) -> dict[str, float]:
        model.set_weights(weights)
        result = training.evaluate(model, heldout.x, heldout.y)
        return {"loss": result.loss, "accuracy": result.accuracy}

    return run


def _warn_of_dp_noise(task: TaskConfig, dim: int) -> None:
    """A cohort too small for its noise trains a model that only drifts: say so at the start."""
    from fedge.shared.privacy import mean_noise_ratio

    ratio = mean_noise_ratio(task.dp_noise, dim, task.clients_per_round)
    if ratio > 1:
        log.warning(
            "task %s: the DP noise on each round's mean update (norm about z·C·√d / n = %g × %g × √%d / %d) is "
            "%.3g× the largest update it averages (dp_clip): expect little learning; the noise on the mean falls "
            "as 1/n, so DP needs many more clients per round",
            task.name, task.dp_noise, task.dp_clip, dim, task.clients_per_round, ratio,
        )  # fmt: skip
