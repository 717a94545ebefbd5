"""What one simulation run is: data, model, partition, rounds, and the clients' training."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from fedge.shared.training import TrainConfig

# Sensor datasets default to the sensor CNN and to one client per subject; images to the
# digits CNN and an IID split (they have no subjects), with a budget that fits a few minutes
# on 2 cores (60,000 images cost ~25 s per epoch there).
SENSORS = {"model": "har-cnn1d", "partition": "natural", "rounds": 30, "local_epochs": 2}
IMAGES = {"model": "digits-cnn", "partition": "iid", "rounds": 10, "local_epochs": 1}
BACKENDS = ("inprocess", "grpc", "ray")
RAY_MISSING = "the ray backend needs Ray, which is not installed: pip install 'fedge[ray]'"
DEFAULTS: dict[str, dict[str, str | int]] = {"watch": SENSORS, "synthetic-imu": SENSORS, "fashion-mnist": IMAGES}


def local_defaults(dataset: str) -> dict[str, str | int]:
    """A folder of your own samples (shared/data/local.py) gets the defaults of its kind, and
    one client per folder when it is a split's output (iid otherwise: one folder has no subjects)."""
    from fedge.shared.data import DATASETS
    from fedge.shared.data.local import local_layout

    try:
        layout, natural = local_layout(dataset)
    except ValueError as error:  # no such folder, or one that cannot be read: the reason says which
        raise ValueError(
            f"expected --dataset among {', '.join(DATASETS)}, or a data folder (docs/client-data.md) or the "
            f"output of `fedge data split`, got {dataset!r} ({error})"
        ) from None
    kind = IMAGES if layout == "NHWC" else SENSORS
    return kind if natural else {**kind, "partition": "iid"}


@dataclass(frozen=True)
class SimulationConfig:
    dataset: str = "watch"
    model: str | None = None
    partition: str | None = None
    clients: int | None = None
    clients_per_round: int | None = None
    rounds: int | None = None
    local_epochs: int | None = None
    local_steps: int = 0  # > 0: each client takes this many steps per round instead of local_epochs
    holdout: float = 0.0  # each client keeps this fraction aside to score the models it receives (eval_*)
    batch_size: int = 32
    lr: float = 0.05
    lr_schedule: str = "cosine"
    optimizer: str = "sgd"
    logit_adjustment: bool = False  # clients train against their own label prior (label skew)
    strategy: str = "fedavg"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    centralized: bool = False
    backend: str = "inprocess"
    secagg: bool = False
    dropout: float = 0.0
    dp_clip: float = 0.0
    dp_noise: float = 0.0
    publish: str = "best"  # every version that beats the published ones, into <out>/coordinator/registry
    publish_int8: bool = True
    init_from: str = ""  # fine-tuning: a published model's folder to start from
    train_layers: tuple[str, ...] = ()  # fine-tuning: the layers clients train; () trains all

    def __post_init__(self) -> None:
        defaults = DEFAULTS.get(self.dataset) or local_defaults(self.dataset)
        for key in ("model", "partition", "rounds", "local_epochs"):
            if getattr(self, key) is None:
                object.__setattr__(self, key, defaults[key])
        if self.clients is None and self.partition != "natural":
            object.__setattr__(self, "clients", 10)
        if self.rounds < 1:
            raise ValueError(f"expected rounds >= 1, got {self.rounds}")
        if self.clients_per_round is not None and self.clients_per_round < 1:
            raise ValueError(f"expected clients per round >= 1, got {self.clients_per_round}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"expected 0 <= dropout < 1, got {self.dropout}")
        if self.dropout and not self.secagg:
            # every backend: in-process clients skip their turns, gRPC agent processes exit (simulation/vanish.py),
            # Ray actors' agents drop the round
            raise ValueError("--dropout drops clients at secure-aggregation stages: it needs --secagg")
        if self.backend not in BACKENDS:
            raise ValueError(f"expected backend in {BACKENDS}, got {self.backend!r}")
        if self.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError(RAY_MISSING)
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"expected lr schedule 'cosine' or 'constant', got {self.lr_schedule!r}")
        self.train_config()  # validates epochs, batch size, lr, optimizer now, not mid-run

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.local_epochs,
            steps=self.local_steps,
            holdout=self.holdout,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            logit_adjustment=self.logit_adjustment,
        )

    def local_work(self) -> str:
        """What a client does per round, in words."""
        return f"{self.local_steps} local steps" if self.local_steps else f"{self.local_epochs} local epochs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
