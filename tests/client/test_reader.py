"""The device's own reader: loaded from a module or a file, its samples checked, read again each round."""

from __future__ import annotations

import json
import logging
import sys
import textwrap

import numpy as np
import pytest

from fedge.client.agent import LocalTrainer
from fedge.client.reader import Reader
from fedge.shared.data.folder import LocalDataError
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.training import TrainConfig

SENSOR = """
import numpy as np

SESSIONS = [6]  # windows recorded so far; the test records more


def samples():
    n = sum(SESSIONS)
    y = np.arange(n) % 3
    x = (np.arange(n * 8, dtype=np.float32).reshape(n, 4, 2) / 100 + y[:, None, None]).astype(np.float32)
    return x, y


def broken():
    raise OSError("serial port /dev/ttyUSB0 is gone")
"""


def sensor_file(tmp_path, body: str = SENSOR):
    path = tmp_path / "sensor.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_reader_loads_from_a_file_or_a_module_and_gives_checked_samples(tmp_path, monkeypatch):
    from_file = Reader.open(f"{sensor_file(tmp_path)}:samples")
    assert len(from_file.data) == 6 and from_file.data.sample_shape == (4, 2)
    assert from_file.data.x.dtype == np.float32 and from_file.data.y.dtype == np.int64
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sensor", raising=False)
    from_module = Reader.open("sensor:samples")
    assert np.array_equal(from_module.data.x, from_file.data.x)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("samples", "expected MODULE:NAME"),
        ("no_such_module_here:samples", "cannot load no_such_module_here: ModuleNotFoundError"),
        ("{dir}/missing.py:samples", "cannot load .*missing.py: FileNotFoundError"),
        ("{file}:nothing", "sensor.py has no nothing"),
        ("{file}:SESSIONS", "expected a function SESSIONS in"),
        ("{file}:broken", r"failed: OSError: serial port /dev/ttyUSB0 is gone"),
    ],
)
def test_a_reader_that_cannot_be_used_is_refused_with_the_reason(tmp_path, spec, reason):
    path = sensor_file(tmp_path)
    with pytest.raises(LocalDataError, match=reason):
        Reader.open(spec.format(dir=tmp_path, file=path))


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        ("[1, 2]", r"expected a tuple \(x, y\), got list"),
        ("(np.zeros((3, 4), np.int64), np.zeros(3, np.int64))", "expected x float32 or float64"),
        ("(np.zeros(3, np.float32), np.zeros(3, np.int64))", r"of shape \(N, ...\), got float32 \(3,\)"),
        ("(np.zeros((3, 4), np.float32), np.zeros(3))", "expected y 3 integers, got float64"),
        ("(np.zeros((3, 4), np.float32), np.zeros(2, np.int64))", r"expected y 3 integers, got int64 \(2,\)"),
        ("(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))", "at least one sample"),
        ("(np.full((3, 4), np.nan, np.float32), np.zeros(3, np.int64))", "NaN or infinity"),
        ("(np.zeros((3, 4), np.float32), -np.ones(3, np.int64))", "class ids >= 0, got -1"),
    ],
)
def test_samples_of_the_wrong_kind_are_refused_naming_the_reader(tmp_path, returned, reason):
    path = sensor_file(tmp_path, f"import numpy as np\n\ndef samples():\n    return {returned}\n")
    with pytest.raises(LocalDataError, match=reason) as refused:
        Reader.open(f"{path}:samples")
    assert str(path) in str(refused.value)


def test_a_trainer_on_a_reader_takes_what_it_returns_each_round_and_rides_out_its_failures(tmp_path, caplog):
    reader = Reader.open(f"{sensor_file(tmp_path)}:samples")
    module = sys.modules[reader.function.__module__]
    trainer = LocalTrainer.on(reader)
    spec = json.dumps(model_spec("mlp", (4, 2), 3))
    start, plan = Model(json.loads(spec), seed=1).get_weights(), TrainConfig(batch_size=4)
    examples = lambda: trainer(spec, start, plan, np.random.default_rng(1))[1]  # noqa: E731
    assert examples() == 6
    assert reader.refresh() is None  # the same samples: nothing new
    module.SESSIONS.append(4)
    assert examples() == 10
    reader.function = module.broken
    with caplog.at_level(logging.WARNING, logger="fedge.agent"):
        assert examples() == 10  # the samples it had, not a crash
    assert "serial port /dev/ttyUSB0 is gone" in caplog.text
