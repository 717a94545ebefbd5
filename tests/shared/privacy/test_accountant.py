"""The accountant: ε per round and in total, checked against dp_accounting and two bounds by hand."""

from __future__ import annotations

import logging
import math

import dp_accounting
import pytest
from dp_accounting.rdp import RdpAccountant

from fedge.shared.privacy import PrivacyAccountant

DELTA = 1e-5


def gaussian_epsilon_exact(z: float, delta: float) -> float:
    """The smallest ε of one Gaussian mechanism (Balle & Wang 2018): no accountant can report less."""

    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    def delta_at(eps: float) -> float:
        return phi(1 / (2 * z) - eps * z) - math.exp(eps) * phi(-1 / (2 * z) - eps * z)

    low, high = 0.0, 100.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if delta_at(mid) > delta else (low, mid)
    return high


def textbook_rdp_epsilon(z: float, rounds: int, delta: float) -> float:
    """min over α of rounds·α/2z² + log(1/δ)/(α−1) (Mironov 2017), in closed form: dp_accounting converts tighter."""
    return rounds / (2 * z**2) + math.sqrt(2 * rounds * math.log(1 / delta)) / z


def test_no_round_means_no_privacy_spent() -> None:
    assert PrivacyAccountant(1.0, 1.0, DELTA).epsilon() == 0.0


def test_epsilon_grows_with_rounds() -> None:
    accountant = PrivacyAccountant(1.0, 1.0, DELTA)
    seen = []
    for _ in range(3):
        accountant.step()
        seen.append(accountant.epsilon())
    assert seen[0] < seen[1] < seen[2]


def test_epsilon_shrinks_with_more_noise() -> None:
    little, more = (PrivacyAccountant.from_rounds(z, 1.0, DELTA, rounds=10).epsilon() for z in (1.0, 2.0))
    assert more < little


def test_sampling_fewer_clients_spends_less() -> None:
    everyone, few = (PrivacyAccountant.from_rounds(1.0, q, DELTA, rounds=10).epsilon() for q in (1.0, 0.01))
    assert few < everyone


@pytest.mark.parametrize("rounds", [1, 10])
def test_epsilon_sits_between_the_exact_gaussian_and_the_textbook_rdp_bound(rounds: int) -> None:
    # with every client in every round, k rounds at noise z are one Gaussian at noise z/√k
    epsilon = PrivacyAccountant.from_rounds(1.0, 1.0, DELTA, rounds=rounds).epsilon()
    assert gaussian_epsilon_exact(1.0 / math.sqrt(rounds), DELTA) < epsilon < textbook_rdp_epsilon(1.0, rounds, DELTA)


def test_one_round_at_noise_one_costs_between_4_38_and_5_30() -> None:
    epsilon = PrivacyAccountant.from_rounds(1.0, 1.0, DELTA, rounds=1).epsilon()
    assert 4.38 < epsilon < 5.30
    assert epsilon == pytest.approx(4.7285, abs=1e-4)


def test_epsilon_matches_dp_accounting_composed_round_by_round() -> None:
    reference = RdpAccountant()
    for _ in range(5):
        reference.compose(dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(1.1)))
    ours = PrivacyAccountant.from_rounds(1.1, 0.05, DELTA, rounds=5)
    assert ours.epsilon() == pytest.approx(reference.get_epsilon(DELTA), rel=1e-9)


def test_epsilon_per_round_is_one_round_alone() -> None:
    accountant = PrivacyAccountant.from_rounds(1.0, 1.0, DELTA, rounds=10)
    assert accountant.epsilon_per_round() == PrivacyAccountant.from_rounds(1.0, 1.0, DELTA, rounds=1).epsilon()
    assert accountant.epsilon() < 10 * accountant.epsilon_per_round()  # composition is sublinear


def test_accountant_rebuilt_from_the_round_count_reports_the_same() -> None:
    live = PrivacyAccountant(0.8, 0.1, DELTA)
    for _ in range(7):
        live.step()
    restarted = PrivacyAccountant.from_rounds(0.8, 0.1, DELTA, rounds=live.rounds)
    assert restarted.rounds == 7
    assert restarted.epsilon() == live.epsilon()


@pytest.mark.parametrize("z", [0.0, -1.0, math.nan, math.inf])
def test_noise_multiplier_must_be_positive_and_finite(z: float) -> None:
    with pytest.raises(ValueError, match="noise_multiplier > 0"):
        PrivacyAccountant(z, 1.0, DELTA)


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5, math.nan])
def test_sampling_rate_must_be_in_zero_one(q: float) -> None:
    with pytest.raises(ValueError, match=r"sampling_rate in \(0, 1\]"):
        PrivacyAccountant(1.0, q, DELTA)


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-5, math.nan])
def test_delta_must_be_in_zero_one(delta: float) -> None:
    with pytest.raises(ValueError, match=r"delta in \(0, 1\)"):
        PrivacyAccountant(1.0, 1.0, delta)


@pytest.mark.parametrize("rounds", [-1, 2.5, True])
def test_round_count_must_be_a_whole_number(rounds: object) -> None:
    with pytest.raises(ValueError, match="whole number of rounds"):
        PrivacyAccountant.from_rounds(1.0, 1.0, DELTA, rounds=rounds)  # type: ignore[arg-type]


def test_orders_dp_accounting_leaves_out_do_not_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    # at q = 0.1, z = 1 dp_accounting cannot compute orders 1.1–1.5 and warns about each, every time
    with caplog.at_level(logging.WARNING):
        PrivacyAccountant.from_rounds(1.0, 0.1, DELTA, rounds=3).epsilon()
    assert not [r for r in caplog.records if "Excluding this order" in r.getMessage()]
