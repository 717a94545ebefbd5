"""Every op: forward against numpy, gradient against float64 finite differences."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fedge.shared.nn import F, Variable


def naive_conv(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """Direct channels-last convolution, one output position at a time."""
    kernel = w.shape[:-2]
    windows = sliding_window_view(x, kernel, axis=tuple(range(1, 1 + len(kernel))))
    windows = windows[(slice(None), *(slice(None, None, stride),) * len(kernel))]
    # windows: (N, *S_out, C, *K) -> contract C and K against w (*K, C, O)
    k_axes = tuple(range(windows.ndim - len(kernel), windows.ndim))
    c_axis = windows.ndim - len(kernel) - 1
    return np.tensordot(windows, w, axes=((*k_axes, c_axis), (*range(len(kernel)), len(kernel))))


def naive_max_pool(x: np.ndarray, pool: int) -> np.ndarray:
    n, *spatial, c = x.shape
    out = [s // pool for s in spatial]
    x = x[(slice(None), *(slice(0, o * pool) for o in out))]
    shape = [n] + [d for o in out for d in (o, pool)] + [c]
    return x.reshape(shape).max(axis=tuple(2 + 2 * i for i in range(len(out))))


def test_add(gradcheck):
    gradcheck(lambda a, b: a + b, (3, 4), (4,), reference=lambda a, b: a + b)


def test_sub(gradcheck):
    gradcheck(lambda a, b: a - b, (3, 1), (3, 4), reference=lambda a, b: a - b)


def test_mul(gradcheck):
    gradcheck(lambda a, b: a * b, (2, 3), (2, 3), reference=lambda a, b: a * b)


def test_div(gradcheck):
    gradcheck(lambda a, b: a / b, (2, 3), (3,), reference=lambda a, b: a / b, positive=True)


def test_neg(gradcheck):
    gradcheck(lambda a: -a, (5,), reference=lambda a: -a)


def test_pow(gradcheck):
    gradcheck(lambda a: a**3, (4,), reference=lambda a: a**3)


def test_exp(gradcheck):
    gradcheck(F.exp, (3, 2), reference=np.exp)


def test_log(gradcheck):
    gradcheck(F.log, (3, 2), reference=np.log, positive=True)


def test_sum_over_axes(gradcheck):
    gradcheck(lambda a: F.sum(a, axis=(0, 2)), (2, 3, 4), reference=lambda a: a.sum(axis=(0, 2)))


def test_mean_keepdims(gradcheck):
    gradcheck(lambda a: F.mean(a, axis=1, keepdims=True), (3, 4), reference=lambda a: a.mean(axis=1, keepdims=True))


def test_broadcast_to(gradcheck):
    gradcheck(lambda a: F.broadcast_to(a, (2, 3, 4)), (3, 1), reference=lambda a: np.broadcast_to(a, (2, 3, 4)))


def test_sum_to(gradcheck):
    gradcheck(lambda a: F.sum_to(a, (3, 1)), (2, 3, 4), reference=lambda a: a.sum(axis=(0, 2))[:, None])


def test_reshape(gradcheck):
    gradcheck(lambda a: F.reshape(a, (6, 2)), (3, 4), reference=lambda a: a.reshape(6, 2))


def test_transpose(gradcheck):
    gradcheck(lambda a: F.transpose(a, (2, 0, 1)), (2, 3, 4), reference=lambda a: a.transpose(2, 0, 1))


def test_get_item(gradcheck):
    gradcheck(lambda a: a[[0, 2, 0], 1:], (3, 4), reference=lambda a: a[[0, 2, 0], 1:])


def test_matmul(gradcheck):
    gradcheck(F.matmul, (3, 4), (4, 2), reference=np.matmul)


def test_linear(gradcheck):
    gradcheck(F.linear, (3, 4), (4, 2), (2,), reference=lambda x, w, b: x @ w + b)


def test_relu(gradcheck):
    gradcheck(F.relu, (4, 5), reference=lambda a: np.maximum(a, 0))


def test_im2col_then_col2im_counts_window_overlaps():
    x = Variable(np.ones((1, 4, 1)))
    cols = F.im2col(x, (3,), (1,))
    cols.backward()  # each input position's gradient = the number of windows covering it
    assert x.grad.data.ravel().tolist() == [1.0, 2.0, 2.0, 1.0]


def test_max_pool_sends_a_tie_to_the_first_maximum():
    x = Variable(np.array([[[5.0], [5.0], [1.0], [2.0]]]))
    F.max_pool(x, 2).backward()
    assert x.grad.data.ravel().tolist() == [1.0, 0.0, 0.0, 1.0]


def test_max_pool_same_padding_ignores_the_padding(gradcheck):
    x = -np.abs(np.arange(1.0, 6.0)).reshape(1, 5, 1)  # all negative: zero padding would win
    assert F.max_pool(Variable(x), 2, padding="same").data.ravel().tolist() == [-1.0, -3.0, -5.0]


def test_softmax(gradcheck):
    def reference(a: np.ndarray) -> np.ndarray:
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    gradcheck(F.softmax, (3, 5), reference=reference)


def test_softmax_cross_entropy(gradcheck):
    labels = np.array([0, 3, 1])

    def reference(a: np.ndarray) -> np.ndarray:
        log_p = a - a.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        return -log_p[np.arange(3), labels].mean()

    gradcheck(lambda a: F.softmax_cross_entropy(a, labels), (3, 4), reference=reference)


def test_concat(gradcheck):
    gradcheck(lambda a, b: F.concat([a, b]), (2, 3, 2), (2, 3, 4), reference=lambda a, b: np.concatenate([a, b], -1))


def naive_group_norm(x: np.ndarray, groups: int, eps: float = 1e-5) -> np.ndarray:
    out = np.empty_like(x)
    per = x.shape[-1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            part = x[n, ..., g * per : (g + 1) * per]
            out[n, ..., g * per : (g + 1) * per] = (part - part.mean()) / np.sqrt(part.var() + eps)
    return out


def test_group_norm_2d(gradcheck):
    gradcheck(lambda x: F.group_norm(x, 2), (2, 3, 2, 4), reference=lambda x: naive_group_norm(x, 2))


def test_group_norm_1d_one_channel_per_group(gradcheck):
    gradcheck(lambda x: F.group_norm(x, 3), (2, 5, 3), reference=lambda x: naive_group_norm(x, 3))


def test_group_norm_statistics_are_per_sample_and_per_group():
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 6)).astype(np.float32)
    x[1] *= 50.0  # another sample's scale changes nothing here: no batch statistics
    x[0, ..., :3] += 7.0  # nor does another group's offset
    y = F.group_norm(Variable(x), 2).data
    assert np.allclose(y[0], naive_group_norm(x[:1], 2)[0], atol=1e-5)
    assert np.allclose(y.reshape(2, -1, 2, 3).mean(axis=(1, 3)), 0.0, atol=1e-5)
    assert np.allclose(y.reshape(2, -1, 2, 3).var(axis=(1, 3)), 1.0, atol=1e-3)


def test_conv1d_valid(gradcheck):
    gradcheck(F.conv, (2, 7, 3), (3, 3, 4), reference=naive_conv)


def test_conv1d_strided_with_bias(gradcheck):
    gradcheck(
        lambda x, w, b: F.conv(x, w, b, stride=2),
        (2, 9, 2),
        (3, 2, 3),
        (3,),
        reference=lambda x, w, b: naive_conv(x, w, 2) + b,
    )


def test_conv2d_valid(gradcheck):
    gradcheck(F.conv, (2, 5, 6, 3), (3, 2, 3, 2), reference=naive_conv)


def test_conv2d_same_padding(gradcheck):
    def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return naive_conv(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]), w)

    gradcheck(lambda x, w: F.conv(x, w, padding="same"), (1, 4, 5, 2), (3, 3, 2, 2), reference=reference)


def test_max_pool1d(gradcheck):
    gradcheck(lambda x: F.max_pool(x, 2), (2, 7, 3), reference=lambda x: naive_max_pool(x, 2))


def test_max_pool2d(gradcheck):
    gradcheck(lambda x: F.max_pool(x, 2), (2, 4, 6, 3), reference=lambda x: naive_max_pool(x, 2))


def test_max_pool2d_overlapping_windows(gradcheck):
    reference = lambda x: sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))  # noqa: E731
    gradcheck(lambda x: F.max_pool(x, 3, 2), (1, 7, 7, 2), reference=reference)


def test_global_avg_pool(gradcheck):
    gradcheck(F.global_avg_pool, (2, 3, 4, 5), reference=lambda x: x.mean(axis=(1, 2)))


def test_second_order_gradient_of_a_cube():
    x = Variable(np.array(2.0))
    y = x**3
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward()  # d/dx 3x^2 = 6x
    assert float(x.grad.data) == 12.0


def test_gradients_accumulate_when_a_variable_is_used_twice():
    x = Variable(np.array([3.0]))
    (x * x + x).backward()
    assert x.grad.data.tolist() == [7.0]  # 2x + 1


def test_scalars_keep_float32():
    x = Variable(np.ones(3, np.float32))
    assert (x * 2.5 + 1).dtype == np.float32


def test_unknown_padding_is_refused():
    x = Variable(np.zeros((1, 4, 1)))
    try:
        F.conv(x, np.zeros((2, 1, 1)), padding="full")
    except ValueError as e:
        assert "expected padding 'valid' or 'same', got 'full'" in str(e)
    else:
        raise AssertionError("padding='full' was accepted")
