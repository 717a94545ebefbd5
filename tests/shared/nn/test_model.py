"""Models built from specs: naming, ordering, shapes, weights in and out, reproducibility."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from fedge.shared.models import ZOO, model_spec
from fedge.shared.nn import F, Model, SpecError, Variable, no_grad, test_mode
from fedge.shared.nn.core import grad_enabled

INPUTS = {"mlp": (20, 3), "har-cnn1d": (100, 6), "digits-cnn": (28, 28, 1), "squeezenet-mini": (32, 32, 3)}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_builds_and_gives_logits_per_class(name):
    model = Model(model_spec(name, INPUTS[name], 7), seed=0)
    x = np.random.default_rng(0).standard_normal((2, *INPUTS[name])).astype(np.float32)
    with test_mode():
        assert model(x).shape == (2, 7)


def test_parameters_are_named_layer_slash_param_in_spec_order():
    model = Model(model_spec("digits-cnn", (28, 28, 1), 10))
    assert model.parameter_names == [
        "conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias", "logits/kernel", "logits/bias",
    ]  # fmt: skip


def test_kernels_are_channels_last_hwio():
    model = Model(model_spec("digits-cnn", (28, 28, 1), 10))
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 5, 1, 8), (8,), (5, 5, 8, 16), (16,), (256, 10), (10,)]  # 4*4*16 = 256


def test_fire_module_concatenates_both_expands_then_normalises():
    model = Model(model_spec("squeezenet-mini", (28, 28, 1), 10))
    names = model.parameter_names
    assert names.index("fire2_expand1/kernel") < names.index("fire2_expand3/kernel") < names.index("fire2/gamma")
    shapes = dict(zip(names, (w.shape for w in model.get_weights()), strict=True))
    assert shapes["fire3_squeeze/kernel"] == (1, 1, 64, 16)
    assert shapes["fire2/gamma"] == shapes["fire2/beta"] == (64,)
    assert "fire2_expand1/bias" not in shapes  # the norm's offset is the bias


def test_group_norm_layer_scales_and_shifts_per_channel_then_activates():
    spec = {"name": "g", "input_shape": [3, 4], "layers": [{"type": "groupnorm", "groups": 2, "activation": "relu"}]}
    model = Model(spec)
    gamma, beta = np.array([1, 2, 3, 4], np.float32), np.array([0, -5, 1, 0], np.float32)
    model.set_weights([gamma, beta])
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    normal = F.group_norm(Variable(x), 2).data
    assert np.allclose(model(x).data, np.maximum(normal * gamma + beta, 0), atol=1e-6)
    assert (model(x).data[..., 1] == 0).all()  # beta -5 on unit-variance values, then ReLU


def test_same_seed_builds_identical_weights_and_another_seed_does_not():
    spec = model_spec("har-cnn1d", (100, 6), 7)
    a, b, c = Model(spec, seed=3), Model(spec, seed=3), Model(spec, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_weights_round_trip_and_are_copies():
    spec = model_spec("mlp", (4,), 3)
    source, target = Model(spec, seed=1), Model(spec, seed=2)
    weights = source.get_weights()
    target.set_weights(weights)
    weights[0][...] = 99.0
    assert all(np.array_equal(x, y) for x, y in zip(source.get_weights(), target.get_weights(), strict=True))


def test_set_weights_refuses_a_wrong_count():
    model = Model(model_spec("mlp", (4,), 3))
    with pytest.raises(ValueError, match="expected 6 tensors, got 5"):
        model.set_weights(model.get_weights()[:5])


def test_set_weights_refuses_a_wrong_shape():
    model = Model(model_spec("mlp", (4,), 3))
    weights = model.get_weights()
    weights[2] = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"tensor 2: expected shape \(64, 64\), got \(3, 3\)"):
        model.set_weights(weights)


def test_wrong_input_shape_is_refused():
    model = Model(model_spec("har-cnn1d", (100, 6), 7))
    with pytest.raises(ValueError, match=r"expected input \(N, 100, 6\), got \(2, 50, 6\)"):
        model(np.zeros((2, 50, 6), np.float32))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([{"type": "lstm"}], "expected type in"),
        ([{"type": "dense", "units": 3}], "expected a flat input"),
        ([{"type": "flatten"}, {"type": "dense", "units": 0}], "expected units >= 1"),
        ([{"type": "flatten"}, {"type": "dense", "units": 2, "activation": "tanh"}], "expected activation"),
        ([{"type": "conv1d", "filters": 2, "kernel_size": 9}], "does not fit input"),
        ([{"type": "dropout", "rate": 1.5}], "expected 0 <= rate < 1"),
        ([{"type": "flatten", "inputs": ["nowhere"]}], "are not earlier layers"),
        ([{"type": "relu", "name": "a"}, {"type": "relu", "name": "a"}], "already used"),
        ([{"type": "dense", "units": 2, "kernel": "big"}], "unknown option"),
        ([{"type": "conv1d", "filters": 2, "kernel_size": 3, "kernel_initializer": "ones"}], "kernel_initializer"),
        ([{"type": "groupnorm", "groups": 3}], "expected groups dividing the channels"),
        ([{"type": "flatten"}, {"type": "groupnorm", "groups": 1}], "of a spatial input"),
        ([{"type": "groupnorm", "groups": 2, "epsilon": 0}], "expected epsilon > 0"),
    ],
)
def test_bad_specs_are_refused_with_the_rule(layers, message):
    with pytest.raises(SpecError, match=message):
        Model({"name": "bad", "input_shape": [8, 2], "layers": layers})


# a conv1d kernel (3, 32, 64): fan in 3·32 = 96, fan out 3·64 = 192; uniform ±sqrt(6/n) has variance 2/n
@pytest.mark.parametrize(("initializer", "n"), [("glorot_uniform", 96 + 192), ("he_uniform", 96)])
def test_kernel_initialisers_have_their_variance(initializer, n):
    layer = {"type": "conv1d", "filters": 64, "kernel_size": 3, "kernel_initializer": initializer}
    model = Model({"name": "k", "input_shape": [8, 32], "layers": [layer]}, seed=0)
    assert model.get_weights()[0].var() == pytest.approx(2 / n, rel=0.05)


def test_spec_survives_json():
    spec = model_spec("squeezenet-mini", (28, 28, 1), 10)
    a, b = Model(spec, seed=0), Model.from_json(json.dumps(spec), seed=0)
    assert a.parameter_names == b.parameter_names


def test_dropout_is_identity_in_test_mode_and_not_in_training():
    spec = {"name": "d", "input_shape": [1000], "layers": [{"type": "dropout", "rate": 0.5}]}
    model, x = Model(spec, seed=0), np.ones((1, 1000), np.float32)
    with test_mode():
        assert np.array_equal(model(x).data, x)
    dropped = model(x).data
    assert 400 < int((dropped == 0).sum()) < 600 and set(np.unique(dropped)) == {0.0, 2.0}


def test_no_grad_records_no_graph():
    x = Variable(np.ones(3, np.float32))
    with no_grad():
        y = F.relu(x) * 2
    assert y.creator is None


def test_no_grad_in_one_thread_does_not_leak_into_another():
    seen: list[bool] = []
    inside, done = threading.Event(), threading.Event()

    def quiet() -> None:
        with no_grad():
            inside.set()
            done.wait(5)

    worker = threading.Thread(target=quiet)
    worker.start()
    inside.wait(5)
    seen.append(grad_enabled())
    done.set()
    worker.join()
    assert seen == [True]


def test_a_few_steps_fit_a_tiny_batch():
    from fedge.shared.nn import Adam

    rng = np.random.default_rng(0)
    model = Model(model_spec("har-cnn1d", (20, 2), 3), seed=0)
    x, y = rng.standard_normal((12, 20, 2)).astype(np.float32), np.arange(12) % 3
    opt = Adam(lr=0.01)
    for _ in range(60):
        model.cleargrads()
        loss = F.softmax_cross_entropy(model(x), y)
        loss.backward()
        opt.step(model.parameters())
    assert float(loss.data) < 0.05


def test_train_only_updates_the_named_parameters_and_leaves_the_rest():
    from fedge.shared.training import TrainConfig, fit

    model = Model(model_spec("har-cnn1d", (20, 3), 4), seed=0)
    before = model.get_weights()
    model.train_only(["logits/kernel", "logits/bias"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 20, 3)).astype(np.float32), rng.integers(0, 4, 16)
    fit(model, x, y, TrainConfig(epochs=1, batch_size=8, lr=0.1, proximal_mu=0.01), rng)

    changed = [n for n, a, b in zip(model.parameter_names, before, model.get_weights(), strict=True) if (a != b).any()]
    assert changed == ["logits/kernel", "logits/bias"]
    assert model.parameters()[0].grad is None  # nothing flowed back into the frozen convolutions


def test_train_only_refuses_names_the_model_does_not_have():
    model = Model(model_spec("mlp", (8,), 2))
    with pytest.raises(ValueError, match="expected parameter names of the model, got head/kernel"):
        model.train_only(["head/kernel"])
