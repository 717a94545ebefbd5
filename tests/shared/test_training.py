"""Local training options: logit adjustment under label skew, and how options are read."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.training import TrainConfig, batches, fit, holdout_split, label_log_prior


def test_the_label_prior_is_the_smoothed_log_frequency_of_each_class():
    prior = label_log_prior(np.array([0, 0, 0, 2]), 4)
    np.testing.assert_allclose(np.exp(prior), [4 / 8, 1 / 8, 2 / 8, 1 / 8], rtol=1e-6)
    assert prior.dtype == np.float32


def skewed_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A device that holds class 0 almost only: 95 of 100 samples."""
    y = np.array([0] * 95 + [1] * 5)
    return rng.normal(size=(100, 8)).astype(np.float32), y


def trained_bias(config: TrainConfig) -> np.ndarray:
    model = Model(model_spec("mlp", (8,), 3), seed=0)
    x, y = skewed_data(np.random.default_rng(0))
    fit(model, x, y, config, np.random.default_rng(1))
    return dict(zip(model.parameter_names, model.get_weights(), strict=True))["logits/bias"]


def test_logit_adjustment_keeps_a_skewed_device_from_pulling_the_classifier_to_its_class():
    plain = trained_bias(TrainConfig(epochs=3, batch_size=10, lr=0.1))
    adjusted = trained_bias(TrainConfig(epochs=3, batch_size=10, lr=0.1, logit_adjustment=True))
    # without it, the bias learns the device's prior: class 0 far above the class it never saw
    assert plain[0] - plain[2] > 1.0
    # with it, the prior is explained by the adjustment, and the bias moves far less
    assert abs(adjusted[0] - adjusted[2]) < 0.25 * (plain[0] - plain[2])


def test_boolean_options_are_read_from_their_spelling():
    assert TrainConfig().override({"logit_adjustment": "true"}).logit_adjustment is True
    assert TrainConfig(logit_adjustment=True).override({"logit_adjustment": "false"}).logit_adjustment is False
    assert TrainConfig().override({"logit_adjustment": True}).logit_adjustment is True
    with pytest.raises(ValueError, match="expected true or false for logit_adjustment, got 'maybe'"):
        TrainConfig().override({"logit_adjustment": "maybe"})


def _walk(n: int, **options) -> list[np.ndarray]:
    return list(batches(n, TrainConfig(**options), np.random.default_rng(3)))


def test_epochs_walk_every_sample_once_per_pass():
    steps = _walk(10, epochs=2, batch_size=4)
    assert [len(b) for b in steps] == [4, 4, 2, 4, 4, 2]
    assert sorted(np.concatenate(steps[:3])) == list(range(10))
    assert sorted(np.concatenate(steps[3:])) == list(range(10))


def test_steps_cut_a_pass_short_or_pass_a_small_dataset_again():
    assert [len(b) for b in _walk(100, batch_size=8, steps=3)] == [8, 8, 8]  # less than an epoch
    again = _walk(10, batch_size=4, steps=5, epochs=9)  # steps win over epochs
    assert [len(b) for b in again] == [4, 4, 2, 4, 4]
    assert sorted(np.concatenate(again[:3])) == list(range(10))
    # the same draws as epochs would make: a step budget changes where training stops, not its order
    assert all(np.array_equal(a, b) for a, b in zip(again, _walk(10, batch_size=4, epochs=2), strict=False))


def test_fit_with_steps_trains_that_many_batches():
    model = Model(model_spec("mlp", (8,), 4), seed=0)
    x = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    y = np.arange(50) % 4
    before = [p.data.copy() for p in model.trainable]
    result = fit(model, x, y, TrainConfig(batch_size=10, steps=2, momentum=0.0), np.random.default_rng(1))
    assert result.num_examples == 50  # the weight a client carries is its data's size, not what it saw
    assert any(not np.array_equal(a, p.data) for a, p in zip(before, model.trainable, strict=True))


def test_negative_steps_are_refused():
    with pytest.raises(ValueError, match=r"expected steps >= 0 \(0: train for epochs\), got -1"):
        TrainConfig(steps=-1)


def test_a_holdout_split_is_fixed_disjoint_and_keeps_a_sample_on_each_side():
    train, held = holdout_split(20, 0.25)
    assert len(held) == 5 and sorted([*train, *held]) == list(range(20))
    again = holdout_split(20, 0.25)
    assert np.array_equal(again[1], held)  # the same samples every round and after a restart
    assert list(held) != [0, 1, 2, 3, 4]  # a shuffle: data stored by class is not held out by class
    assert [len(part) for part in holdout_split(2, 0.5)] == [1, 1]
    assert [len(part) for part in holdout_split(3, 0.01)] == [2, 1]
    assert [len(part) for part in holdout_split(1, 0.5)] == [1, 0]
    assert [len(part) for part in holdout_split(10, 0.0)] == [10, 0]


def test_a_holdout_over_half_is_refused():
    with pytest.raises(ValueError, match=r"expected 0 <= holdout <= 0.5, got 0.6"):
        TrainConfig(holdout=0.6)
