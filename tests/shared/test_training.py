"""Local training options: logit adjustment under label skew, and how options are read."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.training import TrainConfig, fit, label_log_prior


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
