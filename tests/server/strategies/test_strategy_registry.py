"""make_strategy: a task's strategy name and parameters, checked before any round runs."""

from __future__ import annotations

import re

import pytest

from fedge.cli.simulate import STRATEGY_NAMES
from fedge.server.strategies import STRATEGIES, FedAdam, FedAvg, Krum, make_strategy


def test_registry_lists_every_strategy_by_name() -> None:
    assert list(STRATEGIES) == [
        "fedavg",
        "fedprox",
        "fedavgm",
        "fedadam",
        "fedyogi",
        "fedadagrad",
        "fedexp",
        "fednova",
        "median",
        "trimmed_mean",
        "krum",
    ]


def test_simulate_s_help_names_every_strategy() -> None:
    assert ", ".join(STRATEGIES) == STRATEGY_NAMES


def test_only_the_mean_based_strategies_work_with_secure_aggregation() -> None:
    compatible = {name: cls.secagg_compatible for name, cls in STRATEGIES.items()}
    assert compatible == {
        "fedavg": True,
        "fedprox": True,
        "fedavgm": True,
        "fedadam": True,
        "fedyogi": True,
        "fedadagrad": True,
        "fedexp": False,
        "fednova": False,
        "median": False,
        "trimmed_mean": False,
        "krum": False,
    }


def test_make_strategy_passes_parameters_through() -> None:
    strategy = make_strategy("krum", num_byzantine=2, num_selected=3)
    assert isinstance(strategy, Krum)
    assert (strategy.num_byzantine, strategy.num_selected) == (2, 3)


def test_make_strategy_gives_each_task_its_own_state() -> None:
    assert make_strategy("fedadam") is not make_strategy("fedadam")
    assert isinstance(make_strategy("fedadam"), FedAdam)


def test_unknown_strategy_lists_the_valid_names() -> None:
    message = (
        "unknown strategy 'fedsgd'; expected one of fedavg, fedprox, fedavgm, fedadam, "
        "fedyogi, fedadagrad, fedexp, fednova, median, trimmed_mean, krum"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        make_strategy("fedsgd")


def test_unknown_parameter_is_named() -> None:
    message = "strategy 'fedavg' got unknown parameter(s) beta1, mu; expected some of server_lr"
    with pytest.raises(TypeError, match=re.escape(message)):
        make_strategy("fedavg", mu=0.1, beta1=0.9)


def test_fedadagrad_has_no_beta2() -> None:
    with pytest.raises(TypeError, match=re.escape("got unknown parameter(s) beta2")):
        make_strategy("fedadagrad", beta2=0.99)


@pytest.mark.parametrize("value", ["0.1", None, True])
def test_parameter_that_is_not_a_number_is_rejected(value: object) -> None:
    with pytest.raises(TypeError, match=re.escape(f"fedavg server_lr must be a number, got {value!r}")):
        FedAvg(server_lr=value)  # type: ignore[arg-type]
