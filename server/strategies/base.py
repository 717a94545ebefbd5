"""What every strategy shares: the update type, the two protocols, aggregators, a step base.

A strategy has two duties, kept apart so a failed round cannot leave a trace:

    configure(round)        what to ask the cohort this round ({} = the task's own settings)
    aggregator(template)    a fresh, throw-away object that folds in updates as they arrive
    step(global, delta)     the next global model; called only when the round commits

Aggregators:

    WeightedMean    streaming, O(P) memory, weighted by num_examples; works with SecAgg
    ScaledMean      WeightedMean times a scale set once the round is in (fedexp, fednova)
    Buffered        keeps every update (O(N·P)); base of the robust rules, SecAgg off only

Server state (momentum, moments, the step count) is exposed as ``state()`` /
``load_state()`` so the coordinator can persist it with the committed model version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar, Protocol

import numpy as np

from fedge.shared.training import TrainConfig

Weights = list[np.ndarray]
"""Model tensors in the model spec's parameter order, float32."""

Shapes = list[tuple[int, ...]]


@dataclass(frozen=True)
class Update:
    """One client's contribution: local weights minus the global weights it started from."""

    delta: Weights
    num_examples: int
    client_id: str = ""
    checked: bool = False  # dtypes and finiteness already checked (the coordinator does it on arrival)


class Aggregator(Protocol):
    """Folds one round's accepted updates into a single delta."""

    @property
    def count(self) -> int: ...

    @property
    def total_examples(self) -> int: ...

    def add(self, update: Update) -> None: ...

    def result(self) -> Weights: ...


class Strategy(Protocol):
    """What to ask clients for, and how their aggregated delta moves the global model."""

    name: ClassVar[str]
    secagg_compatible: ClassVar[bool]
    readout_average: ClassVar[bool]  # evaluate and publish the mean of the last two versions (fedexp)

    def configure(self, round: int) -> dict[str, float | int | str]: ...

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator: ...

    def step(self, global_weights: Weights, delta: Weights) -> Weights: ...

    def state(self) -> dict[str, np.ndarray]: ...

    def load_state(self, state: dict[str, np.ndarray]) -> None: ...


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def shapes_of(tensors: Sequence[np.ndarray]) -> Shapes:
    return [tuple(np.shape(t)) for t in tensors]


def check_shapes(expected: Shapes, tensors: Sequence[np.ndarray], what: str = "") -> None:
    """Raise unless ``tensors`` has exactly the expected number and shapes of tensors."""
    got = shapes_of(tensors)
    if got != expected:
        prefix = f"{what}: " if what else ""
        raise ValueError(
            f"{prefix}expected {len(expected)} tensors of shapes {expected}, got {len(got)} tensors of shapes {got}"
        )


def _source(update: Update) -> str:
    return f"update from client {update.client_id!r}" if update.client_id else "update"


def _check_update(expected: Shapes, update: Update) -> None:
    """Reject what would silently corrupt an aggregate: bad counts, shapes, dtypes, NaN/Inf."""
    n = update.num_examples
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise ValueError(f"{_source(update)}: num_examples must be a positive int, got {n!r}")
    check_shapes(expected, update.delta, _source(update))
    if update.checked:
        return
    for i, tensor in enumerate(update.delta):
        dtype = np.asarray(tensor).dtype
        if dtype.kind not in "fiu":
            raise ValueError(f"{_source(update)}: expected real numbers in tensor {i}, got {dtype}")
        if not np.isfinite(tensor).all():
            raise ValueError(f"{_source(update)}: tensor {i} has non-finite values (NaN or Inf)")


class _Collector:
    """Bookkeeping every aggregator needs: validation, counts, no client counted twice."""

    def __init__(self, template: Weights) -> None:
        require(len(template) > 0, "template has no tensors: expected the global weights")
        self._shapes = shapes_of(template)
        self._count = 0
        self._total_examples = 0
        self._clients: set[str] = set()

    @property
    def count(self) -> int:
        return self._count

    @property
    def total_examples(self) -> int:
        return self._total_examples

    def add(self, update: Update) -> None:
        """Validate fully before touching anything, so a rejected update leaves no trace."""
        _check_update(self._shapes, update)
        if update.client_id and update.client_id in self._clients:
            raise ValueError(f"{_source(update)} was already added this round")
        self._fold(update)
        self._count += 1
        self._total_examples += int(update.num_examples)
        if update.client_id:
            self._clients.add(update.client_id)

    def result(self) -> Weights:
        if self._count == 0:
            raise ValueError("no update was added: cannot aggregate an empty round")
        return [np.asarray(t, dtype=np.float32) for t in self._finish()]

    def _fold(self, update: Update) -> None:
        raise NotImplementedError

    def _finish(self) -> Weights:
        raise NotImplementedError


class WeightedMean(_Collector):
    """Σ nᵢ·Δᵢ / Σ nᵢ, accumulated as updates arrive; individual updates are never kept.

    The running sum is float64: adding thousands of example-weighted float32 deltas in
    float32 would lose low bits, and the result would then depend on arrival order. But a
    float64 add is memory-bound at three times the traffic of a float32 one, so float32
    updates are first summed in float32, BLOCK at a time, in place, and each block's sum is
    folded into the float64 total: rounding is bounded by BLOCK additions, not by N.
    """

    BLOCK = 8

    def __init__(self, template: Weights) -> None:
        super().__init__(template)
        self._sum = [np.zeros(shape, dtype=np.float64) for shape in self._shapes]
        self._block: Weights = []  # float32 Σ nᵢ·Δᵢ of the updates since the last fold
        self._scratch: Weights = []
        self._in_block = 0
        self._weight_sum = 0.0  # Σ _weight(update): Σ nᵢ unless a subclass weighs updates otherwise

    def _weight(self, update: Update) -> float:
        """How much an update counts in the mean: its examples (FedNova divides by its local work)."""
        return update.num_examples

    def _fold(self, update: Update) -> None:
        weight = self._weight(update)
        if any(np.asarray(t).dtype != np.float32 for t in update.delta):
            self._weight_sum += weight
            for acc, tensor in zip(self._sum, update.delta, strict=True):  # wider or integer input: no float32 step
                acc += weight * np.asarray(tensor, dtype=np.float64)
            return
        if not self._block:
            self._block = [np.empty(shape, np.float32) for shape in self._shapes]
        weight = np.float32(weight)
        self._weight_sum += float(weight)  # the weight the block is summed with
        for i, (part, tensor) in enumerate(zip(self._block, update.delta, strict=True)):
            if self._in_block == 0:
                np.multiply(tensor, weight, out=part)
            elif weight == 1:
                np.add(part, tensor, out=part)
            else:
                if len(self._scratch) <= i:
                    self._scratch.append(np.empty(part.shape, np.float32))
                np.add(part, np.multiply(tensor, weight, out=self._scratch[i]), out=part)
        self._in_block += 1
        if self._in_block == self.BLOCK:
            self._fold_block()

    def _fold_block(self) -> None:
        if self._in_block:
            for acc, part in zip(self._sum, self._block, strict=True):
                np.add(acc, part, out=acc)
            self._in_block = 0

    def _finish(self) -> Weights:
        self._fold_block()
        return [np.divide(acc, self._weight_sum, out=np.empty(acc.shape, np.float32)) for acc in self._sum]


class ScaledMean(WeightedMean):
    """The weighted mean times a scale decided once every update is in (FedExP, FedNova); each
    committed round records the scale as ``server_step``."""

    def __init__(self, template: Weights) -> None:
        super().__init__(template)
        self.step_size = 1.0  # the scale of the last result()

    def _scale(self, mean: Weights) -> float:
        raise NotImplementedError

    def _finish(self) -> Weights:
        mean = super()._finish()
        self.step_size = self._scale(mean)
        return [np.multiply(t, np.float32(self.step_size), dtype=np.float32) for t in mean]


class Buffered(_Collector):
    """Keeps every update as one flat float32 row; robust rules need them all at once.

    Memory is O(N·P) and the server sees each update in the clear, so the rules built on
    this are for tasks with secure aggregation off. ``num_examples`` is not a weight here:
    a Byzantine client could claim any number.
    """

    def __init__(self, template: Weights) -> None:
        super().__init__(template)
        self._rows: list[np.ndarray] = []

    def _fold(self, update: Update) -> None:
        flat = [np.asarray(t, dtype=np.float32).ravel() for t in update.delta]
        self._rows.append(np.concatenate(flat))

    def _finish(self) -> Weights:
        combined = self.combine(np.stack(self._rows))
        sizes = [int(np.prod(shape)) for shape in self._shapes]
        parts = np.split(combined, np.cumsum(sizes)[:-1])
        return [part.reshape(shape) for part, shape in zip(parts, self._shapes, strict=True)]

    def combine(self, rows: np.ndarray) -> np.ndarray:
        """Reduce an (updates × parameters) matrix to one parameter vector."""
        raise NotImplementedError


_NUMBER = (int, float, np.integer, np.floating)


@dataclass(eq=False)
class StrategyBase:
    """Defaults every strategy starts from: ask nothing, weighted mean, x ← x + η·Δ.

    Subclasses with optimiser state name its per-tensor ``slots`` and override ``_move``;
    ``step`` computes everything first and commits state last, so an error leaves the
    strategy exactly as it was. State is kept in float64 (it is O(P) on the server).
    """

    server_lr: float = 1.0
    name: ClassVar[str] = ""
    secagg_compatible: ClassVar[bool] = True
    readout_average: ClassVar[bool] = False
    slots: ClassVar[tuple[str, ...]] = ()
    _steps: int = field(default=0, init=False, repr=False)
    _tensors: dict[str, Weights] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for param in fields(self):
            value = getattr(self, param.name)
            if param.init and (isinstance(value, bool) or not isinstance(value, _NUMBER)):
                raise TypeError(f"{self.name} {param.name} must be a number, got {value!r}")
        require(self.server_lr > 0, f"server_lr must be > 0, got {self.server_lr}")

    def configure(self, round: int) -> dict[str, float | int | str]:
        return {}

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator:
        """A fresh aggregator for one round whose clients were sent ``plan``."""
        return WeightedMean(template)

    def step(self, global_weights: Weights, delta: Weights) -> Weights:
        expected = shapes_of(global_weights)
        check_shapes(expected, delta, "delta")
        old = self._tensors or {s: self._initial(s, expected) for s in self.slots}
        for slot, tensors in old.items():
            check_shapes(expected, tensors, f"{self.name} state {slot!r}")
        new_weights: Weights = []
        new_slots: dict[str, Weights] = {s: [] for s in self.slots}
        for i, (weights, change) in enumerate(zip(global_weights, delta, strict=True)):
            move, moved = self._move(np.asarray(change, np.float64), {s: old[s][i] for s in old})
            # x + move in float64, rounded to float32 as it is written: no float64 copy of x, no second pass
            new = np.empty(np.shape(weights), np.float32)
            new_weights.append(np.add(weights, move, out=new, dtype=np.float64, casting="same_kind"))
            for slot, tensor in moved.items():
                new_slots[slot].append(tensor)
        self._tensors, self._steps = new_slots, self._steps + 1
        return new_weights

    def _initial(self, slot: str, shapes: Shapes) -> Weights:
        return [np.zeros(shape, dtype=np.float64) for shape in shapes]

    def _move(self, delta: np.ndarray, slots: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """How far to move one tensor, and its new slot values (fresh arrays)."""
        return (delta if self.server_lr == 1 else self.server_lr * delta), {}

    def state(self) -> dict[str, np.ndarray]:
        state = {"steps": np.array(self._steps, dtype=np.int64)}
        for slot, tensors in self._tensors.items():
            state.update({f"{slot}.{i}": t.copy() for i, t in enumerate(tensors)})
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state()`` returned; a fresh strategy's state has no tensors yet."""
        count = sum(1 for key in state if key.startswith(f"{self.slots[0]}.")) if self.slots else 0
        expected = {"steps"} | {f"{s}.{i}" for s in self.slots for i in range(count)}
        require(
            set(state) == expected,
            f"{self.name} state: expected keys {sorted(expected)}, got {sorted(state)}",
        )
        steps = np.asarray(state["steps"])
        require(
            steps.shape == () and steps.dtype.kind in "iu" and steps >= 0,
            f"{self.name} state: steps must be a non-negative integer scalar, got {steps!r}",
        )
        tensors = {s: [np.array(state[f"{s}.{i}"], dtype=np.float64) for i in range(count)] for s in self.slots}
        if count:
            reference = shapes_of(tensors[self.slots[0]])
            for slot, values in tensors.items():
                check_shapes(reference, values, f"{self.name} {slot!r}")
        self._tensors = tensors if count else {}
        self._steps = int(steps)


def readout(strategy: Strategy, previous: Weights, current: Weights) -> Weights:
    """The model a version stands for, to evaluate and publish: the version itself, or with
    ``readout_average`` the mean of it and the version before (clients train on from the version)."""
    if not strategy.readout_average:
        return current
    return [((np.asarray(a, np.float64) + b) / 2).astype(np.float32) for a, b in zip(previous, current, strict=True)]
