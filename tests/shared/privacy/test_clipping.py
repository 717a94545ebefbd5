"""Per-update L2 clipping: one norm over the whole update, a copy back, and loud refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedge.shared.privacy import clip_update, quantised_sensitivity


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def global_norm(tensors: list[np.ndarray]) -> float:
    return math.sqrt(sum(float(np.sum(t.astype(np.float64) ** 2)) for t in tensors))


def test_small_update_is_left_untouched() -> None:
    delta = [f32(0.3, 0.4)]
    clipped, norm = clip_update(delta, max_norm=1.0)
    assert norm == pytest.approx(0.5)
    np.testing.assert_array_equal(clipped[0], delta[0])


def test_large_update_is_scaled_to_exactly_the_norm() -> None:
    delta = [f32(3.0, 0.0), f32(4.0).reshape(1, 1)]  # global norm 5
    clipped, norm = clip_update(delta, max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped[0], [0.6, 0.0], rtol=1e-7)
    np.testing.assert_allclose(clipped[1], [[0.8]], rtol=1e-7)
    assert global_norm(clipped) == pytest.approx(1.0, rel=1e-6)


def test_norm_is_taken_over_all_tensors_together() -> None:
    delta = [f32(0.8), f32(0.6)]  # each under 1, together exactly 1; together with 2× over 1
    _, norm = clip_update(delta, max_norm=1.0)
    clipped, doubled_norm = clip_update([t * 2 for t in delta], max_norm=1.0)
    assert norm == pytest.approx(1.0)
    assert doubled_norm == pytest.approx(2.0)
    np.testing.assert_allclose(np.concatenate(clipped), [0.8, 0.6], rtol=1e-7)


def test_update_at_exactly_the_norm_is_unchanged() -> None:
    clipped, _ = clip_update([f32(3.0, 4.0)], max_norm=5.0)
    np.testing.assert_array_equal(clipped[0], f32(3.0, 4.0))


def test_clipping_returns_a_copy_with_the_same_dtypes_and_shapes() -> None:
    delta = [np.full((2, 3), 10.0, dtype=np.float32), np.full(4, 10.0, dtype=np.float64)]
    before = [t.copy() for t in delta]
    clipped, _ = clip_update(delta, max_norm=1.0)
    clipped[0][0, 0] = 123.0
    for original, kept in zip(delta, before, strict=True):
        np.testing.assert_array_equal(original, kept)
    assert [(t.dtype, t.shape) for t in clipped] == [(np.float32, (2, 3)), (np.float64, (4,))]


def test_zero_update_and_empty_update_pass_through() -> None:
    clipped, norm = clip_update([np.zeros(3, dtype=np.float32)], max_norm=1.0)
    assert norm == 0.0
    np.testing.assert_array_equal(clipped[0], np.zeros(3))
    assert clip_update([], max_norm=1.0) == ([], 0.0)


@pytest.mark.parametrize("max_norm", [0.0, -1.0, math.nan, math.inf])
def test_max_norm_must_be_finite_and_positive(max_norm: float) -> None:
    with pytest.raises(ValueError, match="max_norm > 0"):
        clip_update([f32(1.0)], max_norm=max_norm)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_update_is_refused_naming_the_tensor(bad: float) -> None:
    with pytest.raises(ValueError, match="tensor 1"):
        clip_update([f32(1.0), f32(0.0, bad)], max_norm=1.0)


def test_update_whose_norm_overflows_is_refused() -> None:
    huge = np.full(4, np.finfo(np.float64).max / 2)
    with pytest.raises(ValueError, match="norm fits float64"):
        clip_update([huge], max_norm=1.0)


def test_integer_tensors_are_refused() -> None:
    with pytest.raises(TypeError, match="expected floating-point tensors, got int64 for tensor 0"):
        clip_update([np.array([1, 2], dtype=np.int64)], max_norm=1.0)


def test_quantised_sensitivity_allows_two_units_per_coordinate_in_quadrature() -> None:
    # clipped to 1.0, scaled by 100, 4 coordinates; the update and the zero update each round by < 1
    assert quantised_sensitivity(1.0, 100.0, 4) == 104.0


def test_rounding_never_pushes_an_update_past_the_quantised_sensitivity() -> None:
    rng = np.random.default_rng(0)
    dim, scale, offset = 1000, 50.0, 1000.5  # an offset-binary quantiser, whose zero lies between two levels

    def quantise(x: np.ndarray) -> np.ndarray:
        scaled = x.astype(np.float64) * scale + offset
        return np.floor(scaled) + (rng.random(dim) < scaled - np.floor(scaled))  # stochastic rounding

    bound = quantised_sensitivity(1.0, scale, dim)
    for _ in range(20):
        (clipped,), _ = clip_update([rng.normal(size=dim).astype(np.float32)], max_norm=1.0)
        assert np.linalg.norm(quantise(clipped) - quantise(np.zeros(dim))) < bound


@pytest.mark.parametrize(
    ("max_norm", "scale", "dim", "message"),
    [
        (0.0, 1.0, 1, "max_norm > 0"),
        (1.0, -2.0, 1, "scale > 0"),
        (1.0, math.inf, 1, "scale > 0"),
        (1.0, 1.0, 0, "coordinates"),
    ],
)
def test_quantised_sensitivity_refuses_bad_parameters(max_norm: float, scale: float, dim: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quantised_sensitivity(max_norm, scale, dim)
