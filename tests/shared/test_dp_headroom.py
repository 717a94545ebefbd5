"""The quantiser's room for distributed DP noise: a noisy sum never wraps, and no-DP sums read as before.

Statistical checks use fixed seeds and bounds of about five standard errors, so they are
deterministic and still fail for noise off by a few percent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fedge.shared.privacy import check_noise, discrete_gaussian, plan_noise, quantised_sensitivity
from fedge.shared.secagg.quantize import NOISE_TAILS, Quantizer

C = 1.0  # dp_clip
VECTORS = Path(__file__).parents[1] / "vectors" / "secagg"


def old_dequantize_sum(quantizer: Quantizer, total: np.ndarray, count: int) -> np.ndarray:
    """The dequantisation before noise headroom: the uint32 total read as is."""
    return (total.astype(np.float64) * (2 * quantizer.clip / quantizer.levels) - count * quantizer.clip).astype(
        np.float32
    )


def noisy_sum(quantizer: Quantizer, updates: np.ndarray, stddev: float, rng: np.random.Generator):
    """What the coordinator unmasks (uint32, wrapped) and the exact integer sum it stands for."""
    exact = np.zeros(updates.shape[1], np.int64)
    wrapped = np.zeros(updates.shape[1], np.uint32)
    for update in updates:
        q = quantizer.quantize(update, rng).astype(np.int64) + discrete_gaussian(update.size, stddev, rng)
        exact += q
        wrapped += q.astype(np.uint32)  # two's complement, mod 2^32, as a device sends it under its masks
    return wrapped, exact


# -- without noise: the format and the reading are unchanged --------------------------------------
@pytest.mark.parametrize("n_clients", [1, 2, 3, 5, 100, 2**15, 65535])
def test_every_sum_without_noise_dequantises_exactly_as_before(n_clients):
    quantizer, rng = Quantizer(2.0, n_clients), np.random.default_rng(n_clients)
    for count in sorted({1, min(2, n_clients), n_clients // 2 or 1, n_clients - 1 or 1, n_clients}):
        top = count * quantizer.levels  # the largest sum of count quantised values
        totals = np.concatenate([[0, 1, top // 2, (top + 1) // 2, top - 1, top], rng.integers(0, top + 1, 10_000)])
        totals = totals.astype(np.uint32)
        new = quantizer.dequantize_sum(totals, count)
        assert new.tobytes() == old_dequantize_sum(quantizer, totals, count).tobytes(), (n_clients, count)


def test_the_golden_vector_sum_dequantises_as_recorded():
    v = json.loads((VECTORS / "quantize.json").read_text())
    quantizer, s = Quantizer(v["clip"], v["n_clients"]), v["sum"]
    assert quantizer.dequantize_sum(np.array(s["total"], np.uint32), s["count"]).tolist() == s["dequantized"]


# -- with noise: the planned quantiser holds the noisy sum -----------------------------------------
@pytest.mark.parametrize(("n", "m", "z"), [(16, 4, 1.0), (5, 3, 0.5), (8, 8, 2.0)])
def test_a_full_cohort_at_the_clip_with_the_planned_noise_never_wraps(n, m, z):
    """Every coordinate at ±C for every client (the extreme sums), plus each device's planned noise."""
    dim = 20_000
    plan = plan_noise(secagg_clip=C, max_clients=n, dp_clip=C, noise_multiplier=z, min_clients=m, dim=dim)
    quantizer, rng = Quantizer(plan.clip, n), np.random.default_rng([n, m])
    signs = np.where(np.arange(dim) % 2 == 0, 1.0, -1.0)  # half the sums at the top, half at the bottom
    updates = np.tile(signs * plan.dp_clip, (n, 1))
    wrapped, exact = noisy_sum(quantizer, updates, plan.client_stddev, rng)
    read = quantizer.dequantize_sum(wrapped, n).astype(np.float64)
    truth = (exact * quantizer.step - n * quantizer.clip).astype(np.float32)
    assert read.tobytes() == truth.astype(np.float64).tobytes()  # every coordinate is read back unwrapped
    # the error is the noise: σ_c·√n integer units, z·(C + 2√d·step)·√(n/m) in the update's units
    error = read - updates.sum(axis=0)
    expected = z * (plan.dp_clip + 2 * math.sqrt(dim) * quantizer.step) * math.sqrt(n / m)
    assert abs(error.mean()) < 5 * expected / math.sqrt(dim)
    assert error.std() == pytest.approx(expected, rel=5 / math.sqrt(2 * dim))
    assert error.std() >= z * plan.dp_clip * math.sqrt(n / m) * (1 - 5 / math.sqrt(2 * dim))


def test_without_the_room_the_same_noise_wraps_the_sum():
    """The check above can fail: the task's own clip, not widened, leaves the noise no room."""
    n, m, z, dim = 16, 4, 1.0, 20_000
    plan = plan_noise(secagg_clip=C, max_clients=n, dp_clip=C, noise_multiplier=z, min_clients=m, dim=dim)
    narrow = Quantizer(C, n)
    assert plan.clip > C and not narrow.tolerates_noise(plan.client_stddev, C)
    stddev = z * quantised_sensitivity(C, narrow.scale, dim) / math.sqrt(m)  # the same z on the narrow range
    updates = np.tile(np.where(np.arange(dim) % 2 == 0, C, -C), (n, 1))
    wrapped, exact = noisy_sum(narrow, updates, stddev, np.random.default_rng(7))
    misread = narrow.dequantize_sum(wrapped, n) != (exact * narrow.step - n * C).astype(np.float32)
    assert misread.mean() > 0.4  # about half: every sum the noise pushed out of [0, 2^32)


def test_noise_the_quantiser_tolerates_is_read_back_even_below_zero():
    """5 clients use 29 bits, 5/8 of 32: the window around the sum's centre reaches below 0."""
    n, dim = 5, 20_000
    quantizer = Quantizer(C, n)  # coordinates at ±C span the whole range
    stddev = quantizer.noise_room(C) / (NOISE_TAILS * math.sqrt(n))
    assert quantizer.tolerates_noise(stddev, C)
    updates = np.tile(np.where(np.arange(dim) % 2 == 0, C, -C), (n, 1))
    wrapped, exact = noisy_sum(quantizer, updates, stddev, np.random.default_rng(5))
    assert exact.min() < 0 and exact.max() > n * quantizer.levels  # the noise left [0, n·L] both ways ...
    truth = (exact * quantizer.step - n * C).astype(np.float32)
    assert quantizer.dequantize_sum(wrapped, n).tobytes() == truth.tobytes()  # ... and they were read back
    assert (old_dequantize_sum(quantizer, wrapped, n) != truth).mean() > 0.2  # read as is: a quarter wrap


def test_fewer_reporting_clients_also_read_back_unwrapped():
    n, m, dim = 12, 3, 5_000
    plan = plan_noise(secagg_clip=0.5, max_clients=n, dp_clip=C, noise_multiplier=1.0, min_clients=m, dim=dim)
    quantizer, rng = Quantizer(plan.clip, n), np.random.default_rng(11)
    for count in (m, n - 1):
        updates = np.tile(np.where(np.arange(dim) % 2 == 0, C, -C), (count, 1))
        wrapped, exact = noisy_sum(quantizer, updates, plan.client_stddev, rng)
        truth = (exact * quantizer.step - count * quantizer.clip).astype(np.float32)
        assert quantizer.dequantize_sum(wrapped, count).tobytes() == truth.tobytes()


# -- the plan --------------------------------------------------------------------------------------
def test_the_plan_widens_the_clip_only_as_far_as_the_noise_needs():
    kwargs = dict(max_clients=128, dp_clip=C, noise_multiplier=1.0, min_clients=64, dim=1000)
    narrow = plan_noise(secagg_clip=C, **kwargs)
    quantizer = Quantizer(narrow.clip, 128)  # 25 bits: 128 full ranges fill 32 bits
    assert narrow.clip > C
    assert quantizer.tolerates_noise(narrow.client_stddev, C)
    # a slightly narrower range (finer step, so more noise in integer units) would not hold it
    tighter = Quantizer(narrow.clip * 0.999, 128)
    stddev = 1.0 * quantised_sensitivity(C, tighter.scale, 1000) / math.sqrt(64)
    assert not tighter.tolerates_noise(stddev, C)
    wide = plan_noise(secagg_clip=8.0, **kwargs)  # the task's range already has room: kept as it is
    assert wide.clip == 8.0 and Quantizer(8.0, 128).tolerates_noise(wide.client_stddev, C)
    # 100 clients leave 22% of 32 bits free at 25 bits: at z = 1 over 50 that is room enough
    assert plan_noise(secagg_clip=C, **{**kwargs, "max_clients": 100, "min_clients": 50}).clip == C


def test_the_plan_carries_float32_values_that_give_at_least_the_multiplier():
    plan = plan_noise(secagg_clip=0.3, max_clients=7, dp_clip=0.1, noise_multiplier=1.1, min_clients=3, dim=777)
    for value in (plan.clip, plan.dp_clip, plan.client_stddev):
        assert float(np.float32(value)) == value
    z = check_noise(
        clip=plan.clip, max_clients=7, dp_clip=plan.dp_clip, client_stddev=plan.client_stddev,
        min_clients=3, noise_multiplier=1.1, dim=777, floor=1.1,
    )  # fmt: skip
    assert 1.1 <= z < 1.1 * (1 + 1e-6)


def test_noise_that_cannot_fit_32_bits_is_refused_at_planning():
    with pytest.raises(ValueError, match="cannot fit 32 bits"):
        plan_noise(secagg_clip=1.0, max_clients=65535, dp_clip=1.0, noise_multiplier=1e4, min_clients=1, dim=10**8)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier > 0"),
        ({"dp_clip": 0.0}, "dp_clip > 0"),
        ({"min_clients": 0}, "min_clients in 1..10"),
        ({"min_clients": 11}, "min_clients in 1..10"),
        ({"dim": 0}, "dim ≥ 1"),
    ],
)
def test_planning_refuses_invalid_numbers(change, rule):
    kwargs = dict(secagg_clip=1.0, max_clients=10, dp_clip=1.0, noise_multiplier=1.0, min_clients=5, dim=10)
    with pytest.raises(ValueError, match=rule):
        plan_noise(**{**kwargs, **change})


# -- the quantiser's room -------------------------------------------------------------------------
def test_noise_room_is_what_the_coordinates_leave_of_the_window():
    quantizer = Quantizer(4.0, 16)  # 28 bits
    assert quantizer.noise_room(4.0) < 0  # the full range fills 32 bits: no room
    assert quantizer.noise_room(100.0) == quantizer.noise_room(4.0)  # the quantiser clamps at clip anyway
    room = quantizer.noise_room(1.0)  # a quarter of the range: three quarters of 2^31 left
    assert room == pytest.approx(0.75 * 2**31, rel=1e-6)
    stddev = room / (NOISE_TAILS * 4)  # √16 = 4
    assert quantizer.tolerates_noise(stddev, 1.0)
    assert not quantizer.tolerates_noise(stddev * 1.0001, 1.0)
    assert quantizer.tolerates_noise(0.0, 1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1", True])
def test_noise_room_refuses_a_bound_that_is_not_a_positive_number(bad):
    with pytest.raises(ValueError, match="bound must be a finite number > 0"):
        Quantizer(1.0, 3).noise_room(bad)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_tolerates_noise_refuses_a_stddev_that_is_not_a_number_at_least_zero(bad):
    with pytest.raises(ValueError, match="client_stddev must be a finite number >= 0"):
        Quantizer(1.0, 3).tolerates_noise(bad, 1.0)
