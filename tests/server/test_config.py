"""fedge.toml as an operator writes it: real files, every mistake named with its file and line."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from fedge.server.config import (
    ConfigError,
    FieldError,
    ServerSettings,
    TaskConfig,
    key_lines,
    load_config,
    template_text,
    write_template,
)
from fedge.shared.data.folder import write_local_data
from fedge.shared.training import TrainConfig, cosine_lr

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"
HAR_LABELS = ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


ROUNDS_LINE = line_of(template_text(), "rounds = 30")


def edited(old: str, new: str) -> str:
    """The template with one line changed."""
    text = template_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


def write(folder: Path, text: str) -> Path:
    path = folder / "fedge.toml"
    path.write_text(text)
    return path


def error_of(path: Path | None, **options) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=options.pop("environ", {}), **options)
    return str(caught.value)


def test_template_loads_and_defines_one_har_task(tmp_path):
    config = load_config(write(tmp_path, template_text()), environ={})
    (task,) = config.tasks
    assert (task.name, task.model, task.input_shape, task.labels) == ("har", "har-cnn1d", (100, 6), HAR_LABELS)
    assert (task.num_classes, task.cohort_size, task.evaluate_on) == (7, 4, "watch")
    assert task.training == TrainConfig(epochs=2, batch_size=32, lr=0.05, optimizer="sgd")
    assert config.server == ServerSettings(data_dir=tmp_path / "fedge-data")


def test_no_file_means_the_template_values(tmp_path):
    from_file = load_config(write(tmp_path, template_text()), environ={})
    built_in = load_config(None, environ={})
    assert built_in.tasks == from_file.tasks
    assert built_in.server.data_dir == Path("fedge-data") and built_in.path is None


def test_template_sets_every_key():
    document = tomllib.loads(template_text())
    (task,) = document["task"]
    assert set(document["server"]) == {f.name for f in fields(ServerSettings)}
    assert set(task) == {f.name for f in fields(TaskConfig)}
    assert set(task["training"]) == {f.name for f in fields(TrainConfig)}


def test_docs_describe_every_key():
    docs = DOCS.read_text()
    for cls in (ServerSettings, TaskConfig, TrainConfig):
        for f in fields(cls):
            assert f"| `{f.name}` |" in docs or f"### `[task.{f.name}]`" in docs, f.name


def test_corrupt_toml_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, edited("rounds = 30", "rounds 30"))
    assert error_of(path) == f"{path} line {ROUNDS_LINE}: Expected '=' after a key in a key/value pair (column 8)"


def test_value_out_of_range_is_refused_with_its_line(tmp_path):
    text = edited("clients_per_round = 3", "clients_per_round = 0")
    path = write(tmp_path, text)
    expected = f"line {line_of(text, 'clients_per_round = 0')}: task 'har': expected clients_per_round >= 1, got 0"
    assert error_of(path) == f"{path} {expected}"


def test_wrong_type_names_what_was_expected_and_what_was_given(tmp_path):
    path = write(tmp_path, edited("rounds = 30", 'rounds = "ten"'))
    expected = f"line {ROUNDS_LINE}: task 'har': expected rounds to be an integer, got string \"ten\""
    assert error_of(path).endswith(expected)


def test_integer_is_accepted_where_a_number_is_expected(tmp_path):
    task = load_config(write(tmp_path, edited("over_selection = 1.3", "over_selection = 2")), environ={}).tasks[0]
    assert task.over_selection == 2.0 and isinstance(task.over_selection, float)


def test_unknown_key_is_named(tmp_path):
    message = error_of(write(tmp_path, edited("rounds = 30", "round = 30")))
    assert f"line {ROUNDS_LINE}: task 'har': unknown key 'round' (did you mean 'rounds'?)" in message
    assert "known keys: name, model, input_shape, labels, rounds," in message


def test_unknown_training_key_lists_the_training_keys(tmp_path):
    message = error_of(write(tmp_path, edited("epochs = 2", "epoch = 2")))
    assert "task 'har': training: unknown key 'epoch'" in message
    assert "known keys: epochs, batch_size, lr, optimizer, momentum, proximal_mu, logit_adjustment" in message


def test_unknown_table_is_named(tmp_path):
    message = error_of(write(tmp_path, template_text() + "\n[logging]\nlevel = 1\n"))
    assert "unknown key 'logging'; known keys: server, task" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("port = 7070", "port = 70000", "server: expected port in 0..65535, got 70000"),
        (
            "chunk_kb = 512",
            "chunk_kb = 16384",
            "server: expected chunk_kb in 1..16383 (below max_message_mb), got 16384",
        ),
        ('name = "har"', 'name = "Har"', "task 'Har': expected name of a-z, 0-9 and '-', got 'Har'"),
        ("[100, 6]", "[100, 0]", "expected input_shape to be a non-empty array of positive integers, got [100, 0]"),
        ("[100, 6]", "[]", "expected input_shape to be a non-empty array of positive integers, got []"),
        ('labels = ["PEN"', 'labels = ["ROW"', "expected labels to be unique ('ROW' repeated)"),
        ("rounds = 30", "rounds = 0", "expected rounds >= 1, got 0"),
        ("min_clients = 2", "min_clients = 4", "expected min_clients in 1..clients_per_round (3), got 4"),
        ("min_clients = 2", "min_clients = 0", "expected min_clients in 1..clients_per_round (3), got 0"),
        ("over_selection = 1.3", "over_selection = 0.9", "expected over_selection >= 1, got 0.9"),
        ("select_timeout_s = 30.0", "select_timeout_s = 0", "expected select_timeout_s > 0, got 0.0"),
        ("train_deadline_s = 120.0", "train_deadline_s = -1.0", "expected train_deadline_s > 0, got -1.0"),
        ('lr_schedule = "cosine"', 'lr_schedule = "step"', "expected lr_schedule 'cosine' or 'constant', got 'step'"),
    ],
)
def test_each_range_is_checked_at_its_line(tmp_path, old, new, expected):
    text = edited(old, new)
    path = write(tmp_path, text)
    owner = "" if expected.startswith(("server", "task")) else "task 'har': "
    assert error_of(path).startswith(f"{path} line {line_of(text, new)}: {owner}{expected}")


def test_unknown_model_lists_the_zoo(tmp_path):
    message = error_of(write(tmp_path, edited('model = "har-cnn1d"', 'model = "resnet"')))
    expected = "expected model one of mlp, har-cnn1d, digits-cnn, squeezenet-mini, or 'external', got 'resnet'"
    assert f"line {line_of(template_text(), 'model = ')}: task 'har': {expected}" in message


def test_unknown_strategy_lists_the_strategies(tmp_path):
    message = error_of(write(tmp_path, edited('strategy = "fedavg"', 'strategy = "fedsgd"')))
    assert "expected strategy one of fedavg, fedprox, fedavgm," in message and "got 'fedsgd'" in message


def test_strategy_options_are_checked_by_building_the_strategy(tmp_path):
    text = edited("[task.strategy_options]", "[task.strategy_options]\nserver_lr = 1.0\nserver_l = 2.0")
    message = error_of(write(tmp_path, text))
    assert f"line {line_of(text, 'server_l =')}: task 'har': strategy_options:" in message
    assert "unknown parameter(s) server_l" in message


def test_strategy_option_out_of_range_points_at_its_line(tmp_path):
    text = edited("[task.strategy_options]", "[task.strategy_options]\nbeta1 = 0.9\nbeta2 = 7")
    text = text.replace('strategy = "fedavg"', 'strategy = "fedadam"')
    message = error_of(write(tmp_path, text))
    assert f"line {line_of(text, 'beta2 = 7')}: task 'har': strategy_options: beta2" in message


def test_strategy_option_must_be_a_number(tmp_path):
    message = error_of(write(tmp_path, edited("[task.strategy_options]", '[task.strategy_options]\nserver_lr = "1"')))
    assert "task 'har': expected strategy_options.server_lr to be a number, got string \"1\"" in message


def test_training_is_checked_by_train_config(tmp_path):
    text = edited("batch_size = 32", "batch_size = 0")
    message = error_of(write(tmp_path, text))
    assert f"line {line_of(text, 'batch_size = 0')}: task 'har': training: expected epochs >= 1 and batch_size" in (
        message
    )


def test_a_window_too_short_for_the_model_names_the_input_shape_line(tmp_path):
    text = edited("input_shape = [100, 6]", "input_shape = [10, 6]")
    message = error_of(write(tmp_path, text))
    assert f"line {line_of(text, 'input_shape = [10, 6]')}: task 'har': model har-cnn1d cannot take samples" in message
    assert "of shape [10, 6] (layer 'conv2' (conv1d): kernel (5,) does not fit input" in message
    assert "choose another model (mlp takes any shape)" in message


def test_unknown_evaluation_dataset_lists_the_datasets_and_data_folders(tmp_path):
    message = error_of(write(tmp_path, edited('evaluate_on = "watch"', 'evaluate_on = "mnist"')))
    expected = "'', one of watch, fashion-mnist, synthetic-imu, or a data folder with a meta.json (docs/client-data.md)"
    assert f"expected evaluate_on {expected}, got '{tmp_path / 'mnist'}'" in message


def test_evaluate_on_names_a_data_folder_relative_to_the_file(tmp_path):
    write_local_data(tmp_path / "split" / "heldout", np.zeros((3, 100, 6), np.float32), np.arange(3), HAR_LABELS,
                     dataset="my-watch", normalisation={})  # fmt: skip
    path = write(tmp_path, edited('evaluate_on = "watch"', 'evaluate_on = "split/heldout"'))
    (task,) = load_config(path, environ={}).tasks
    assert task.evaluate_on == str(tmp_path / "split" / "heldout")


SECOND_TASK = '\n[[task]]\nname = "{name}"\nmodel = "mlp"\ninput_shape = [3]\nlabels = ["a", "b"]\n'


def test_second_task_takes_the_defaults(tmp_path):
    config = load_config(write(tmp_path, template_text() + SECOND_TASK.format(name="two")), environ={})
    second = config.tasks[1]
    assert (second.name, second.rounds, second.strategy, second.evaluate_on, second.training) == (
        "two",
        30,
        "fedavg",
        "",
        TrainConfig(),
    )


def test_duplicate_task_names_are_refused(tmp_path):
    text = template_text() + SECOND_TASK.format(name="har")
    message = error_of(write(tmp_path, text))
    assert f"line {len(text.splitlines()) - 3}: task 'har': expected a unique name" in message


def test_missing_required_key_is_named(tmp_path):
    message = error_of(write(tmp_path, template_text() + SECOND_TASK.format(name="two").replace("input_shape", "#")))
    assert "task 'two': missing required key(s) input_shape" in message


def test_a_file_without_tasks_is_refused(tmp_path):
    path = write(tmp_path, "[server]\nport = 7070\n")
    assert error_of(path) == f"{path}: no [[task]] table: expected at least one task for the coordinator to run"


def test_a_single_bracket_task_table_asks_for_double_brackets(tmp_path):
    message = error_of(write(tmp_path, '[task]\nname = "har"\n'))
    assert "line 1: expected [[task]] tables (double brackets, one per task)" in message


def test_missing_file_is_named(tmp_path):
    assert error_of(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: no such file (fedge init writes one)"


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "fedge.toml"
    path.write_bytes(b"\xff\xfe")
    assert error_of(path) == f"{path}: expected UTF-8 text, got byte 0xff"


def test_environment_overrides_the_file_and_flags_override_both(tmp_path):
    path = write(tmp_path, edited("port = 7070", "port = 7001"))
    environ = {"FEDGE_PORT": "7002", "FEDGE_HOST": "0.0.0.0", "FEDGE_DATA_DIR": "/srv/env"}
    assert load_config(path, environ={}).server.port == 7001
    server = load_config(path, environ=environ).server
    assert (server.host, server.port, server.data_dir) == ("0.0.0.0", 7002, Path("/srv/env"))
    server = load_config(path, {"port": 7003, "data_dir": Path("/srv/flag"), "host": None}, environ).server
    assert (server.host, server.port, server.data_dir) == ("0.0.0.0", 7003, Path("/srv/flag"))


def test_an_empty_environment_variable_counts_as_unset():
    assert load_config(None, environ={"FEDGE_PORT": "", "FEDGE_HOST": ""}).server == ServerSettings()


def test_a_bad_environment_value_names_the_variable():
    message = error_of(None, environ={"FEDGE_PORT": "http"})
    assert message == (
        'fedge.toml (built-in defaults): server: expected port to be an integer, got string "http" '
        "(set by environment FEDGE_PORT)"
    )


def test_a_bad_flag_value_names_the_flag(tmp_path):
    path = write(tmp_path, template_text())
    assert (
        error_of(path, overrides={"port": -1}) == f"{path}: server: expected port in 0..65535, got -1 (set by --port)"
    )


def test_an_unknown_override_is_refused():
    assert "cannot override 'workers'; expected one of host, port, data_dir" in error_of(None, overrides={"workers": 2})


def test_relative_data_dir_is_relative_to_the_file(tmp_path):
    path = write(tmp_path, edited('data_dir = "fedge-data"', 'data_dir = "state"'))
    assert load_config(path, environ={}).server.data_dir == tmp_path / "state"
    assert load_config(path, environ={"FEDGE_DATA_DIR": "here"}).server.data_dir == Path("here")


def test_cohort_size_rounds_up_without_float_noise():
    task = load_config(None, environ={}).tasks[0]
    assert TaskConfig(**{**vars(task), "clients_per_round": 3, "over_selection": 1.3}).cohort_size == 4
    assert TaskConfig(**{**vars(task), "clients_per_round": 50, "over_selection": 1.1}).cohort_size == 55
    assert TaskConfig(**{**vars(task), "clients_per_round": 10, "over_selection": 1.0}).cohort_size == 10


def test_lr_at_decays_the_cosine_way_to_five_percent():
    task = load_config(None, environ={}).tasks[0]
    assert task.lr_at(0.0) == pytest.approx(0.05) and task.lr_at(1.0) == pytest.approx(0.0025)
    assert task.lr_at(0.5) == pytest.approx(0.02625) == cosine_lr(0.05, 0.5)
    constant = TaskConfig(**{**vars(task), "lr_schedule": "constant"})
    assert constant.lr_at(0.7) == 0.05


def test_task_config_checks_itself_when_built_directly():
    with pytest.raises(FieldError) as caught:
        TaskConfig(name="x", model="mlp", input_shape=(3,), labels=("a", "b"), min_clients=5)
    assert caught.value.key == "min_clients"


def test_each_strategy_object_is_fresh():
    task = load_config(None, environ={}).tasks[0]
    assert task.make_strategy() is not task.make_strategy()


def test_key_lines_number_arrays_of_tables_and_skip_multiline_values():
    text = '[[task]]\nname = "a"\nlabels = [\n  "x",\n  "y = 1",\n]\nrounds = 2\n[[task]]\n[task.training]\nlr = 1\n'
    lines = key_lines(text)
    assert lines[("task", 0, "labels")] == 3 and lines[("task", 0, "rounds")] == 7
    assert lines[("task", 1)] == 8 and lines[("task", 1, "training", "lr")] == 10
    assert ("task", 0, "y") not in lines


def test_write_template_refuses_to_overwrite_unless_forced(tmp_path):
    path = write_template(tmp_path)
    path.write_text("# edited\n")
    with pytest.raises(ConfigError, match=r"fedge\.toml already exists: not overwriting it"):
        write_template(tmp_path)
    assert path.read_text() == "# edited\n"
    assert write_template(tmp_path, force=True).read_text() == template_text()


def test_a_generated_file_loads_back_to_the_same_configuration(tmp_path):
    from fedge.server.config import to_toml

    original = load_config(None, environ={})
    task = dataclasses.replace(original.tasks[0], strategy="fedadam", strategy_options={"server_lr": 0.1}, rounds=5)
    path = tmp_path / "fedge.toml"
    path.write_text(to_toml(original.server, [task]))

    loaded = load_config(path, environ={})
    assert loaded.tasks == (task,)
    assert loaded.server.port == original.server.port
