"""The shared aggregator contract: weighting, streaming, and every rejected update."""

from __future__ import annotations

import gc
import re
import weakref

import numpy as np
import pytest

from fedge.server.strategies.base import Aggregator, Update, WeightedMean, Weights
from fedge.server.strategies.median import MedianAggregator

TEMPLATE: Weights = [np.zeros(2, np.float32), np.zeros((1, 1), np.float32)]
SHAPES = "[(2,), (1, 1)]"


def update(a: list[float], b: float, n: int = 1, client_id: str = "") -> Update:
    """An update shaped like TEMPLATE: a (2,) tensor and a (1, 1) tensor."""
    return Update([np.array(a, np.float32), np.array([[b]], np.float32)], n, client_id)


@pytest.fixture(params=[WeightedMean, MedianAggregator], ids=["streaming", "buffered"])
def aggregator(request: pytest.FixtureRequest) -> Aggregator:
    return request.param(TEMPLATE)


def test_weighted_mean_weights_updates_by_examples() -> None:
    agg = WeightedMean(TEMPLATE)
    agg.add(update([1, 2], 10, n=1))
    agg.add(update([4, 8], 30, n=3))
    a, b = agg.result()
    # (1·1 + 3·4)/4 = 3.25, (1·2 + 3·8)/4 = 6.5, (1·10 + 3·30)/4 = 25
    np.testing.assert_array_equal(a, [3.25, 6.5])
    np.testing.assert_array_equal(b, [[25.0]])


def test_weighted_mean_counts_updates_and_examples() -> None:
    agg = WeightedMean(TEMPLATE)
    agg.add(update([1, 2], 10, n=1))
    agg.add(update([4, 8], 30, n=3))
    assert (agg.count, agg.total_examples) == (2, 4)


def test_weighted_mean_result_is_float32_in_template_shapes() -> None:
    agg = WeightedMean(TEMPLATE)
    agg.add(update([1, 2], 3))
    assert [(t.dtype, t.shape) for t in agg.result()] == [
        (np.float32, (2,)),
        (np.float32, (1, 1)),
    ]


def streamed_and_batch(deltas: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The streamed mean, the float64 batch formula, and the updates' weighted magnitude Σ nᵢ·|Δᵢ| / Σ nᵢ."""
    agg = WeightedMean([np.zeros(deltas.shape[1], np.float32)])
    for delta, n in zip(deltas, counts, strict=True):
        agg.add(Update([delta], int(n)))
    wide = deltas.astype(np.float64) * counts[:, None]
    return agg.result()[0], wide.sum(axis=0) / counts.sum(), np.abs(wide).sum(axis=0) / counts.sum()


def test_streaming_weighted_mean_equals_the_batch_formula() -> None:
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(50, 2)).astype(np.float32)
    counts = rng.integers(1, 1000, size=50)
    streamed, batch, magnitude = streamed_and_batch(deltas, counts)
    # within float32 resolution of the updates themselves: where they cancel, of their magnitude, not of the mean
    assert np.all(np.abs(streamed - batch) <= np.finfo(np.float32).eps * magnitude)


def test_rounding_does_not_grow_with_the_number_of_updates() -> None:
    rng = np.random.default_rng(1)
    scales = rng.uniform(0.01, 100, size=(1000, 1))  # updates of very different sizes
    deltas = (rng.normal(size=(1000, 300)) * scales).astype(np.float32)
    counts = rng.integers(1, 5000, size=1000)
    streamed, batch, magnitude = streamed_and_batch(deltas, counts)
    assert np.all(np.abs(streamed - batch) <= np.finfo(np.float32).eps * magnitude)


def test_arrival_order_changes_the_mean_by_float32_rounding_at_most() -> None:
    rng = np.random.default_rng(2)
    deltas = rng.normal(size=(100, 300)).astype(np.float32)
    counts = rng.integers(1, 1000, size=100)
    order = rng.permutation(100)
    forward, _, magnitude = streamed_and_batch(deltas, counts)
    shuffled, _, _ = streamed_and_batch(deltas[order], counts[order])
    assert np.all(np.abs(forward - shuffled) <= 2 * np.finfo(np.float32).eps * magnitude)


def test_weighted_mean_keeps_no_reference_to_an_update() -> None:
    agg = WeightedMean(TEMPLATE)
    delta = [np.array([1, 2], np.float32), np.array([[3]], np.float32)]
    alive = weakref.ref(delta[0])
    agg.add(Update(delta, 1))
    del delta
    gc.collect()
    assert alive() is None


def test_changing_a_delta_after_add_does_not_change_the_result(aggregator: Aggregator) -> None:
    sent = update([1, 2], 3)
    aggregator.add(sent)
    sent.delta[0][:] = 99
    np.testing.assert_array_equal(aggregator.result()[0], [1, 2])


def test_empty_round_is_rejected(aggregator: Aggregator) -> None:
    with pytest.raises(ValueError, match="no update was added: cannot aggregate an empty round"):
        aggregator.result()


def test_update_with_missing_tensor_is_rejected(aggregator: Aggregator) -> None:
    short = Update([np.zeros(2, np.float32)], 1)
    message = f"update: expected 2 tensors of shapes {SHAPES}, got 1 tensors of shapes [(2,)]"
    with pytest.raises(ValueError, match=re.escape(message)):
        aggregator.add(short)


def test_update_with_wrong_shape_is_rejected(aggregator: Aggregator) -> None:
    wide = Update([np.zeros(3, np.float32), np.zeros((1, 1), np.float32)], 1)
    message = f"expected 2 tensors of shapes {SHAPES}, got 2 tensors of shapes [(3,), (1, 1)]"
    with pytest.raises(ValueError, match=re.escape(message)):
        aggregator.add(wide)


def test_rejection_names_the_client(aggregator: Aggregator) -> None:
    short = Update([np.zeros(2, np.float32)], 1, client_id="phone-7")
    with pytest.raises(ValueError, match=r"^update from client 'phone-7': expected 2 tensors"):
        aggregator.add(short)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_update_is_rejected(aggregator: Aggregator, bad: float) -> None:
    message = re.escape("update from client 'c': tensor 1 has non-finite values (NaN or Inf)")
    with pytest.raises(ValueError, match=message):
        aggregator.add(update([1, 2], bad, client_id="c"))


def test_an_update_checked_on_arrival_still_has_its_shapes_checked(aggregator: Aggregator) -> None:
    # the coordinator checks dtypes and finiteness once, naming the tensor; shapes are checked again here
    wide = Update([np.zeros(3, np.float32), np.zeros((1, 1), np.float32)], 1, checked=True)
    with pytest.raises(ValueError, match=re.escape("got 2 tensors of shapes [(3,), (1, 1)]")):
        aggregator.add(wide)


@pytest.mark.parametrize("n", [0, -3, 2.0, True, "5"])
def test_update_without_a_positive_example_count_is_rejected(aggregator: Aggregator, n: object) -> None:
    message = re.escape(f"update: num_examples must be a positive int, got {n!r}")
    with pytest.raises(ValueError, match=message):
        aggregator.add(update([1, 2], 3, n=n))  # type: ignore[arg-type]


def test_complex_update_is_rejected(aggregator: Aggregator) -> None:
    odd = Update([np.array([1j, 2]), np.zeros((1, 1), np.float32)], 1)
    with pytest.raises(ValueError, match="expected real numbers in tensor 0, got complex128"):
        aggregator.add(odd)


def test_same_client_added_twice_is_rejected(aggregator: Aggregator) -> None:
    aggregator.add(update([1, 2], 3, client_id="c"))
    with pytest.raises(ValueError, match="update from client 'c' was already added this round"):
        aggregator.add(update([1, 2], 3, client_id="c"))


def test_rejected_update_leaves_the_aggregate_unchanged(aggregator: Aggregator) -> None:
    aggregator.add(update([1, 2], 3, n=2, client_id="a"))
    with pytest.raises(ValueError):
        aggregator.add(update([100, 100], np.nan, n=5, client_id="b"))
    assert (aggregator.count, aggregator.total_examples) == (1, 2)
    np.testing.assert_array_equal(aggregator.result()[0], [1, 2])
    aggregator.add(update([3, 4], 5, n=2, client_id="b"))  # "b" was not marked as seen


def test_template_without_tensors_is_rejected() -> None:
    with pytest.raises(ValueError, match="template has no tensors: expected the global weights"):
        WeightedMean([])
