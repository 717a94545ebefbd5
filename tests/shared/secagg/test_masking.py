from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from fedge.shared.secagg.masking import mask, remove_pair_masks, remove_self_masks, sign
from fedge.shared.secagg.prg import SEGMENT, expand
from fedge.shared.secagg.quantize import Deferred, Quantizer


def _pairs(entries: list[dict]) -> list[tuple[bytes, int]]:
    return [(bytes.fromhex(e["seed"]), e["sign"]) for e in entries]


def test_masking_replays_the_vector(vector):
    v = vector("masking.json")
    values, self_seed = np.array(v["values"], dtype=np.uint32), bytes.fromhex(v["self_seed"])
    masked = mask(values, self_seed, _pairs(v["pair_seeds"]))
    assert masked.tolist() == v["masked"]
    assert remove_self_masks(masked, [self_seed]).tolist() == v["without_self_mask"]
    assert remove_pair_masks(remove_self_masks(masked, [self_seed]), _pairs(v["pair_seeds"])).tolist() == v["values"]


def test_pairwise_masks_cancel_in_the_sum():
    a, b, seed = np.array([1, 2, 3], np.uint32), np.array([10, 20, 2**32 - 1], np.uint32), bytes(range(32))
    total = mask(a, bytes(32), [(seed, sign(0, 1))]) + mask(b, b"\x01" * 32, [(seed, sign(1, 0))])
    assert remove_self_masks(total, [bytes(32), b"\x01" * 32]).tolist() == [11, 22, 2]


def test_sign_is_plus_for_the_lower_index():
    assert (sign(2, 7), sign(7, 2)) == (1, -1)


def test_mask_leaves_its_input_untouched():
    values = np.arange(4, dtype=np.uint32)
    mask(values, bytes(32), [])
    assert values.tolist() == [0, 1, 2, 3]


def test_a_single_masked_vector_looks_uniform():
    masked = mask(np.zeros(100_000, np.uint32), bytes(range(32)), [(b"\x07" * 32, 1), (b"\x09" * 32, -1)])
    counts = np.bincount(masked.view(np.uint8), minlength=256)
    expected = counts.sum() / 256
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert 161.7 < chi_square < 377.1  # the two-sided 1e-6 quantiles of chi-square with 255 degrees of freedom
    assert abs(float(masked.mean()) / 2**32 - 0.5) < 0.005


@pytest.mark.parametrize(
    "values", [np.zeros(3, np.int32), np.zeros(3, np.float32), np.zeros((2, 2), np.uint32), [0, 1]]
)
def test_values_other_than_a_flat_uint32_array_are_refused(values):
    with pytest.raises(TypeError, match="values must be a 1-D uint32 array"):
        mask(values, bytes(32), [])


@pytest.mark.parametrize("direction", [0, 2, True])
def test_pair_sign_other_than_plus_or_minus_one_is_refused(direction):
    with pytest.raises(ValueError, match="sign must be \\+1 or -1"):
        mask(np.zeros(2, np.uint32), bytes(32), [(bytes(32), direction)])


def test_a_pair_of_one_client_has_no_sign():
    with pytest.raises(ValueError, match="got 3 twice"):
        sign(3, 3)


@pytest.mark.parametrize("size", [1, 4 * SEGMENT + 3, 9 * SEGMENT + 1])
def test_slices_and_threads_give_the_bytes_of_whole_expansions(size, monkeypatch):
    """A reference built from whole expansions: sliced, split among threads, the same values."""
    monkeypatch.setattr("fedge.shared.secagg.masking.MIN_WORK", 1)  # as many threads as segments allow
    rng = np.random.default_rng(size)
    values = rng.integers(0, 2**32, size, dtype=np.uint32)
    pairs = [(bytes([i]) * 32, 1 if i % 2 else -1) for i in range(1, 6)]
    expected = values + expand(b"\xee" * 32, size)
    for seed, direction in pairs:
        expected = expected + expand(seed, size) if direction == 1 else expected - expand(seed, size)
    assert np.array_equal(mask(values, b"\xee" * 32, pairs), expected)


def test_masking_leaves_the_values_alone():
    values = np.arange(1000, dtype=np.uint32)
    out = mask(values, b"\xee" * 32, [(b"\x01" * 32, 1)])
    assert out is not values and np.array_equal(values, np.arange(1000, dtype=np.uint32))


@pytest.mark.parametrize("size", [1, 4 * SEGMENT + 3, 9 * SEGMENT + 1])
def test_a_deferred_update_masks_to_the_bytes_of_quantising_first(size, monkeypatch):
    """Quantised segment by segment in the masking threads, noise included: the same bytes as
    quantising the whole update and then masking it."""
    monkeypatch.setattr("fedge.shared.secagg.masking.MIN_WORK", 1)  # as many threads as segments allow
    x = np.random.default_rng(size).normal(0, 0.5, size).astype(np.float32)
    noise = np.random.default_rng(1).integers(-50, 50, size)
    quantizer, pairs = Quantizer(1.0, 10), [(b"\x01" * 32, 1), (b"\x02" * 32, -1)]
    whole = quantizer.deferred(x, np.random.default_rng(7), noise).result()
    assert np.array_equal(whole, quantizer.quantize(x, np.random.default_rng(7)) + noise.astype(np.uint32))
    deferred = quantizer.deferred(x, np.random.default_rng(7), noise)
    assert np.array_equal(mask(deferred, b"\xee" * 32, pairs), mask(whole, b"\xee" * 32, pairs))


def test_a_bad_seed_is_refused_before_anything_is_quantised(monkeypatch):
    monkeypatch.setattr("fedge.shared.secagg.masking.MIN_WORK", 1)  # threads would share the work
    drawn = []
    update = Deferred(Quantizer(1.0, 3), np.zeros(3 * SEGMENT), lambda low, high, out: drawn.append(low) or out)
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        mask(update, b"\xee" * 32, [(b"\x01" * 32, 1), (b"\x02" * 31, -1)])
    assert drawn == []


def _mask_in_child(queue) -> None:
    values = np.zeros(3 * SEGMENT, np.uint32)
    queue.put(mask(values, b"\x01" * 32, [(b"\x02" * 32, 1)]).tobytes())


def test_a_forked_child_masks_with_its_own_helper_threads(monkeypatch):
    """The parent's pool object is copied into a fork without its threads: the child makes its own."""
    monkeypatch.setattr("fedge.shared.secagg.masking.MIN_WORK", 1)
    values = np.zeros(3 * SEGMENT, np.uint32)
    expected = mask(values, b"\x01" * 32, [(b"\x02" * 32, 1)])  # the parent's helpers now exist
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_mask_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=30) == expected.tobytes()
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
