"""Optimisers on numbers checkable by hand."""

from __future__ import annotations

import numpy as np

from fedge.shared.nn import SGD, Adam, Parameter, Variable, proximal_term


def param(values: list[float], grad: list[float]) -> Parameter:
    p = Parameter(np.array(values, np.float32))
    p.grad = Variable(np.array(grad, np.float32))
    return p


def test_sgd_steps_against_the_gradient():
    p = param([1.0, 2.0], [0.5, -1.0])
    SGD(lr=0.1).step([p])
    np.testing.assert_allclose(p.data, [0.95, 2.1])


def test_sgd_momentum_accumulates_velocity():
    p = param([0.0], [1.0])
    opt = SGD(lr=1.0, momentum=0.9)
    opt.step([p])  # v = 1 -> w = -1
    opt.step([p])  # v = 0.9 * 1 + 1 = 1.9 -> w = -2.9
    np.testing.assert_allclose(p.data, [-2.9])


def test_adam_first_step_moves_by_lr_times_sign():
    p = param([1.0, 1.0], [4.0, -0.01])
    Adam(lr=0.1, eps=0.0).step([p])  # bias-corrected m/sqrt(v) = sign(g)
    np.testing.assert_allclose(p.data, [0.9, 1.1], rtol=1e-6)


def test_parameters_without_gradient_are_left_alone():
    p = Parameter(np.array([3.0], np.float32))
    Adam(lr=0.1).step([p])
    assert p.data.tolist() == [3.0]


def test_proximal_term_pulls_towards_the_global_weights():
    p = param([2.0], [0.0])
    SGD(lr=0.5, hooks=[proximal_term(mu=1.0, anchor=[np.array([1.0])])]).step([p])
    np.testing.assert_allclose(p.data, [1.5])  # grad = 1.0 * (2 - 1) -> 2 - 0.5 * 1


def test_proximal_term_does_not_touch_a_shared_gradient_twice():
    shared = Variable(np.array([0.0], np.float32))
    a, b = Parameter(np.array([1.0], np.float32)), Parameter(np.array([3.0], np.float32))
    a.grad = b.grad = shared
    SGD(lr=1.0, hooks=[proximal_term(1.0, [np.zeros(1), np.zeros(1)])]).step([a, b])
    assert (a.data.tolist(), b.data.tolist()) == ([0.0], [0.0])
