from __future__ import annotations

import re

import numpy as np
import pytest

from fedge.shared.secagg.prg import Expander
from fedge.shared.secagg.quantize import SLICE, SPAN, Quantizer, keyed_draws


def test_values_replay_the_vector(vector):
    v = vector("quantize.json")
    quantizer = Quantizer(v["clip"], v["n_clients"])
    assert (quantizer.bits, quantizer.levels) == (v["bits"], v["levels"])
    q = quantizer.quantize_with(np.array(v["values"]["x"], dtype=np.float32), np.array(v["values"]["uniforms"]))
    assert q.tolist() == v["values"]["q"]


def test_sum_replays_the_vector(vector):
    v = vector("quantize.json")
    quantizer, s = Quantizer(v["clip"], v["n_clients"]), v["sum"]
    quantised = [
        quantizer.quantize_with(np.array(x, np.float32), np.array(u))
        for x, u in zip(s["updates"], s["uniforms"], strict=True)
    ]
    assert [q.tolist() for q in quantised] == s["quantized"]
    total = np.sum(quantised, axis=0, dtype=np.uint32)
    assert total.tolist() == s["total"]
    dequantised = quantizer.dequantize_sum(total, s["count"])
    assert dequantised.tolist() == s["dequantized"]
    assert np.abs(dequantised - np.array(s["clipped_sum"])).max() <= s["error_bound"]


@pytest.mark.parametrize(("n_clients", "bits"), [(1, 32), (2, 31), (3, 30), (4, 30), (5, 29), (100, 25), (65535, 16)])
def test_bits_leave_room_for_the_cohort_sum(n_clients, bits):
    quantizer = Quantizer(1.0, n_clients)
    assert quantizer.bits == bits
    assert n_clients * quantizer.levels < 2**32


def test_rounding_draws_are_the_keystream_of_a_seed_from_the_generator():
    """quantize(x, rng) is quantize_with(x, u), u = the AES words of 32 bytes of rng, read as
    uint32 · 2^-32, slice i under the nonce i."""
    x = np.random.default_rng(0).normal(0, 0.4, 2 * SLICE + 5)
    seed = np.random.default_rng(9).bytes(32)
    words = np.concatenate([Expander(seed).segment(i, min(SLICE, x.size - i * SLICE)) for i in range(3)])
    quantizer = Quantizer(1.0, 7)
    expected = quantizer.quantize_with(x, words * 2.0**-32)
    assert np.array_equal(quantizer.quantize(x, np.random.default_rng(9)), expected)
    assert not np.array_equal(quantizer.quantize(x, np.random.default_rng(10)), expected)
    drawn = keyed_draws(seed)(SLICE, SLICE + 5, np.empty(5))
    assert np.array_equal(drawn, words[SLICE : SLICE + 5] * 2.0**-32 * SPAN)


def test_a_deferred_update_is_filled_from_slice_starts_only():
    update = Quantizer(1.0, 3).deferred(np.zeros(2 * SLICE), np.random.default_rng(0))
    with pytest.raises(ValueError, match="slice start"):
        update.fill(5, np.empty(10, np.uint32))
    with pytest.raises(ValueError, match=f"within {2 * SLICE} values"):
        update.fill(SLICE, np.empty(SLICE + 1, np.uint32))


def test_noise_must_be_integers_one_per_value():
    quantizer = Quantizer(1.0, 3)
    with pytest.raises(ValueError, match="expected 4 integers of noise, got float64"):
        quantizer.deferred(np.zeros(4), np.random.default_rng(0), np.zeros(4))
    with pytest.raises(ValueError, match="expected 4 integers of noise"):
        quantizer.deferred(np.zeros(4), np.random.default_rng(0), np.zeros(3, np.int64))


def test_largest_values_of_a_full_cohort_do_not_wrap():
    quantizer = Quantizer(2.0, 5)
    top = np.stack([quantizer.quantize(np.full(4, 9.0), np.random.default_rng(i)) for i in range(5)])
    total = top.sum(axis=0, dtype=np.uint32)
    assert np.allclose(quantizer.dequantize_sum(total, 5), 10.0)


@pytest.mark.parametrize("n_clients", [1, 2, 100, 65535])
def test_the_largest_draw_never_rounds_past_the_clip(n_clients):
    """Beyond the clip, scaled is L exactly: a draw just below 1 must not round L + u up to L + 1
    (in binary64, L + 1 − 2^-53 is L + 1), which would wrap the cohort's sum."""
    quantizer, below_one = Quantizer(0.7, n_clients), np.nextafter(1.0, 0.0)
    x = np.array([0.71, 9.0, np.finfo(np.float32).max, -0.71, -9.0, -np.finfo(np.float32).max], np.float32)
    for u in (0.0, below_one):
        assert quantizer.quantize_with(x, np.full(x.shape, u)).tolist() == [quantizer.levels] * 3 + [0] * 3


def test_values_beyond_clip_are_clipped():
    quantizer = Quantizer(1.0, 1)
    q = quantizer.quantize(np.array([-5.0, 5.0]), np.random.default_rng(0))
    assert q.tolist() == [0, quantizer.levels]


def test_stochastic_rounding_is_unbiased():
    quantizer = Quantizer(1.0, 2**15)  # 17 bits
    scaled = (0.123456 + 1.0) / 2.0 * quantizer.levels  # 73626.3…: rounds to 73626 or 73627
    q = quantizer.quantize(np.full(200_000, 0.123456), np.random.default_rng(1))
    assert set(np.unique(q).tolist()) == {int(scaled), int(scaled) + 1}
    assert abs(q.mean() - scaled) < 0.006  # five standard deviations of the mean of 200k draws


def test_sum_of_many_clients_stays_within_the_bound():
    quantizer, rng = Quantizer(0.5, 40), np.random.default_rng(3)
    updates = rng.normal(0, 0.3, size=(40, 1000))
    total = np.sum([quantizer.quantize(u, rng) for u in updates], axis=0, dtype=np.uint32)
    error = np.abs(quantizer.dequantize_sum(total, 40) - np.clip(updates, -0.5, 0.5).sum(axis=0))
    assert error.max() <= quantizer.error_bound(40)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError, match="must be finite"):
        Quantizer(1.0, 3).quantize(np.array([0.0, bad]), np.random.default_rng(0))


@pytest.mark.parametrize("clip", [0, -1.0, float("nan"), float("inf"), "1"])
def test_clip_must_be_a_positive_finite_number(clip):
    with pytest.raises(ValueError, match="clip must be a finite number > 0"):
        Quantizer(clip, 3)


@pytest.mark.parametrize("n_clients", [0, 65536, 2.0, True])
def test_n_clients_must_fit_the_cohort_limit(n_clients):
    with pytest.raises(ValueError, match=re.escape("n_clients must be an int in 1..65535")):
        Quantizer(1.0, n_clients)


def test_rng_must_be_a_numpy_generator():
    with pytest.raises(TypeError, match="numpy Generator, got RandomState"):
        Quantizer(1.0, 3).quantize(np.zeros(2), np.random.RandomState(0))


def test_uniforms_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match=r"uniforms must lie in \[0, 1\)"):
        Quantizer(1.0, 3).quantize_with(np.zeros(2), np.array([0.5, 1.0]))


def test_dequantising_more_clients_than_planned_is_refused():
    with pytest.raises(ValueError, match=re.escape("count must be an int in 1..n_clients=3, got 4")):
        Quantizer(1.0, 3).dequantize_sum(np.zeros(2, np.uint32), 4)


def test_dequantising_a_signed_total_is_refused():
    with pytest.raises(TypeError, match="total must be a uint32 array, got int64"):
        Quantizer(1.0, 3).dequantize_sum(np.zeros(2, np.int64), 1)
