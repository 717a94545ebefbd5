"""Noise: the central Gaussian's scale, and the exact discrete Gaussian checked against its formula.

Statistical checks use a fixed seed and bounds of about five standard errors, so they are
deterministic and still fail for a sampler that is off by a percent.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from fedge.shared.privacy import client_noise_scale, discrete_gaussian, gaussian_noise, mean_noise_ratio
from fedge.shared.privacy import noise as noise_module

N = 200_000


def discrete_gaussian_pmf(k: int, sigma: float) -> float:
    """P(X = k) ∝ exp(-k² / 2σ²), normalised over the integers (the tail past 40σ is nil)."""
    support = np.arange(-math.ceil(40 * sigma) - 1, math.ceil(40 * sigma) + 2)
    return math.exp(-(k**2) / (2 * sigma**2)) / float(np.sum(np.exp(-(support**2) / (2 * sigma**2))))


def test_mean_noise_ratio_is_the_noise_norm_on_the_mean_over_the_clip() -> None:
    z, dim, clients, clip = 0.5, 10_000, 4, 0.3
    noise = gaussian_noise([(dim,)], stddev=z * clip, rng=np.random.default_rng(0))[0] / clients  # on the mean
    assert mean_noise_ratio(z, dim, clients) == pytest.approx(np.linalg.norm(noise) / clip, rel=0.02)
    assert mean_noise_ratio(1.0, 10_000, 1000) == pytest.approx(0.1)  # a thousand clients drown it
    with pytest.raises(ValueError, match="dim and clients"):
        mean_noise_ratio(1.0, 10, 0)


def test_gaussian_noise_has_one_array_per_shape() -> None:
    arrays = gaussian_noise([(2, 3), (4,)], stddev=1.0, rng=np.random.default_rng(0))
    assert [a.shape for a in arrays] == [(2, 3), (4,)]
    assert all(a.dtype == np.float64 for a in arrays)


def test_gaussian_noise_has_the_requested_standard_deviation() -> None:
    (sample,) = gaussian_noise([(N,)], stddev=0.5, rng=np.random.default_rng(1))
    assert abs(sample.mean()) < 5 * 0.5 / math.sqrt(N)
    assert sample.std() == pytest.approx(0.5, abs=5 * 0.5 / math.sqrt(2 * N))


@pytest.mark.parametrize("stddev", [0.0, -1.0, math.nan, math.inf])
def test_gaussian_noise_refuses_a_scale_that_is_not_positive_and_finite(stddev: float) -> None:
    with pytest.raises(ValueError, match="finite stddev > 0"):
        gaussian_noise([(1,)], stddev=stddev, rng=np.random.default_rng(0))


def test_client_noise_scale_is_the_total_over_root_n() -> None:
    assert client_noise_scale(10.0, 4) == 5.0
    assert client_noise_scale(3.0, 1) == 3.0


def test_client_noise_scale_refuses_a_per_client_sigma_under_two_units() -> None:
    # 3 / √4 = 1.5: the sum of such noise is measurably not a discrete Gaussian
    with pytest.raises(
        ValueError, match=r"per-client sigma ≥ 2.0 integer units \(quantise finer\), got 3.0 / √4 = 1.5"
    ):
        client_noise_scale(3.0, 4)


def test_client_noise_sums_to_the_total_scale() -> None:
    rng = np.random.default_rng(2)
    per_client = client_noise_scale(20.0, 4)  # 10 each
    total = sum(discrete_gaussian(N, per_client, rng) for _ in range(4))
    assert total.var() == pytest.approx(400.0, rel=5 * math.sqrt(2 / N))


@pytest.mark.parametrize("n_clients", [0, -3, 1.5, True])
def test_client_noise_scale_needs_a_whole_number_of_clients(n_clients: object) -> None:
    with pytest.raises(ValueError, match="whole number of clients"):
        client_noise_scale(1.0, n_clients)  # type: ignore[arg-type]


def test_discrete_gaussian_gives_integers_of_the_requested_shape() -> None:
    sample = discrete_gaussian((3, 4), sigma=2.0, rng=np.random.default_rng(3))
    assert sample.shape == (3, 4)
    assert sample.dtype == np.int64
    assert discrete_gaussian(5, sigma=2.0, rng=np.random.default_rng(3)).shape == (5,)


@pytest.mark.parametrize("sigma", [1.0, 3.0, 100.0])
def test_discrete_gaussian_has_mean_zero_and_variance_sigma_squared(sigma: float) -> None:
    sample = discrete_gaussian(N, sigma, np.random.default_rng(4))
    assert abs(sample.mean()) < 5 * sigma / math.sqrt(N)
    # for σ ≥ 1 the discrete Gaussian's variance is σ² to within 1e-6 (σ = 1: 0.9999998)
    assert sample.var() == pytest.approx(sigma**2, rel=5 * math.sqrt(2 / N))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5])
def test_discrete_gaussian_frequencies_match_its_formula(sigma: float) -> None:
    sample = discrete_gaussian(N, sigma, np.random.default_rng(5))
    for k in range(-3, 4):
        p = discrete_gaussian_pmf(k, sigma)
        assert np.mean(sample == k) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / N) + 1e-9)


def test_discrete_gaussian_of_scale_one_is_zero_about_forty_percent_of_the_time() -> None:
    # 1 / Σ exp(-k²/2) = 0.39894…, the same as the continuous density at 0, 1/√(2π), to 8 digits
    sample = discrete_gaussian(N, 1.0, np.random.default_rng(6))
    assert np.mean(sample == 0) == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.006)


def test_discrete_gaussian_is_symmetric() -> None:
    sample = discrete_gaussian(N, 2.0, np.random.default_rng(7))
    positive, negative = np.sum(sample > 0), np.sum(sample < 0)
    assert abs(positive - negative) < 5 * math.sqrt(positive + negative)
    for k in (1, 2, 3):
        up, down = np.sum(sample == k), np.sum(sample == -k)
        assert abs(up - down) < 5 * math.sqrt(up + down)


def test_discrete_gaussian_is_reproducible_from_a_seed() -> None:
    first = discrete_gaussian(1000, 7.5, np.random.default_rng(8))
    second = discrete_gaussian(1000, 7.5, np.random.default_rng(8))
    np.testing.assert_array_equal(first, second)


def test_discrete_gaussian_draws_a_million_samples_quickly() -> None:
    start = time.process_time()  # CPU time: another busy process on the machine does not count
    discrete_gaussian(1_000_000, 50.0, np.random.default_rng(9))
    assert time.process_time() - start < 5.0  # about 0.5 s on one core


def test_exact_path_alone_gives_the_same_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no trust in float64 every coin goes through the exact comparison with `decimal`."""
    exact_coins = []
    exact_coin = noise_module._exact_coin
    monkeypatch.setattr(noise_module, "_FLOAT_MARGIN", 1.0)
    monkeypatch.setattr(noise_module, "_exact_coin", lambda *a: exact_coins.append(1) or exact_coin(*a))
    n, sigma = 2000, 1.5
    sample = discrete_gaussian(n, sigma, np.random.default_rng(10))
    assert len(exact_coins) > n
    for k in (-1, 0, 1):
        p = discrete_gaussian_pmf(k, sigma)
        assert np.mean(sample == k) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))


def test_exact_coin_decides_clear_cases_from_the_first_digits() -> None:
    from fractions import Fraction

    rng = np.random.default_rng(11)
    top = 2**53 - 1  # the uniform number is at least 1 - 2^-53
    assert noise_module._exact_coin(0, Fraction(1), rng) is True  # below 2^-53 < e^-1
    assert noise_module._exact_coin(top, Fraction(1), rng) is False
    assert noise_module._exact_coin(top, Fraction(0), rng) is True  # exp(0) = 1 is above everything
    # e^-800 ≈ 1e-348 lies inside [0, 2^-53): undecided by 53 digits, settled by the next 64 (or 128…)
    assert noise_module._exact_coin(0, Fraction(800), rng) is False


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf])
def test_discrete_gaussian_refuses_a_scale_that_is_not_positive_and_finite(sigma: float) -> None:
    with pytest.raises(ValueError, match="finite sigma > 0"):
        discrete_gaussian(1, sigma, np.random.default_rng(0))


def test_discrete_gaussian_refuses_a_scale_past_two_to_the_forty() -> None:
    with pytest.raises(ValueError, match=r"sigma ≤ 2\^40"):
        discrete_gaussian(1, 2.0**41, np.random.default_rng(0))
