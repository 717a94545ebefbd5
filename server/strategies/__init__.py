"""Aggregation strategies: what to ask the cohort, and how updates become the next model.

    name          aggregator                   server step                          SecAgg
    fedavg        weighted mean, streaming     x + η·Δ                              yes
    fedprox       weighted mean, streaming     x + η·Δ; clients add a proximal term yes
    fedavgm       weighted mean, streaming     heavy-ball momentum (Hsu et al.)     yes
    fedadam       weighted mean, streaming     Adam moments (Reddi et al.)          yes
    fedyogi       weighted mean, streaming     Yogi moments (Reddi et al.)          yes
    fedadagrad    weighted mean, streaming     Adagrad moments (Reddi et al.)       yes
    fedexp        weighted mean and norms      x + η·Δ, η from the clients' spread  no
    fednova       mean per local work, stream  x + s·η·Δ, s from local work (Wang) no
    median        coordinate median, buffered  x + η·Δ                              no
    trimmed_mean  coordinate trimmed mean      x + η·Δ                              no
    krum          (Multi-)Krum, buffered       x + η·Δ                              no

Files: ``base.py`` (Update, protocols, WeightedMean, ScaledMean, Buffered, StrategyBase), one file per
strategy, ``fedopt.py`` for what FedAdam/FedYogi/FedAdagrad share. A robust rule must see
each update in the clear, so the coordinator refuses it when secure aggregation is on
(``secagg_compatible``).
"""

from __future__ import annotations

from dataclasses import fields

from fedge.server.strategies.base import (
    Aggregator,
    Buffered,
    Strategy,
    StrategyBase,
    Update,
    WeightedMean,
    Weights,
)
from fedge.server.strategies.fedadagrad import FedAdagrad
from fedge.server.strategies.fedadam import FedAdam
from fedge.server.strategies.fedavg import FedAvg
from fedge.server.strategies.fedavgm import FedAvgM
from fedge.server.strategies.fedexp import FedExP
from fedge.server.strategies.fednova import FedNova
from fedge.server.strategies.fedprox import FedProx
from fedge.server.strategies.fedyogi import FedYogi
from fedge.server.strategies.krum import Krum
from fedge.server.strategies.median import Median
from fedge.server.strategies.trimmed_mean import TrimmedMean

STRATEGIES: dict[str, type[StrategyBase]] = {
    cls.name: cls
    for cls in (
        FedAvg,
        FedProx,
        FedAvgM,
        FedAdam,
        FedYogi,
        FedAdagrad,
        FedExP,
        FedNova,
        Median,
        TrimmedMean,
        Krum,
    )
}


def make_strategy(name: str, **params: float | int) -> Strategy:
    """Build a strategy from a task's config, naming any mistake instead of ignoring it."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    allowed = [f.name for f in fields(cls) if f.init]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(
            f"strategy {name!r} got unknown parameter(s) {', '.join(unknown)}; expected some of {', '.join(allowed)}"
        )
    return cls(**params)


__all__ = [
    "STRATEGIES",
    "Aggregator",
    "Buffered",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedExP",
    "FedNova",
    "FedProx",
    "FedYogi",
    "Krum",
    "Median",
    "Strategy",
    "StrategyBase",
    "TrimmedMean",
    "Update",
    "WeightedMean",
    "Weights",
    "make_strategy",
]
