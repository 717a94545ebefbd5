"""``fedge init`` as a user runs it: a real folder, a file that loads, one clear line on a mistake."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from fedge.cli import app
from fedge.server.config import load_config, template_text


def fedge(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedge", *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def invoke(*args: str):
    return CliRunner().invoke(app, ["init", *args])


def test_init_writes_the_template_into_the_current_folder(tmp_path):
    result = fedge("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fedge.toml").read_text() == template_text()
    assert [task.name for task in load_config(tmp_path / "fedge.toml", environ={}).tasks] == ["har"]


def test_init_prints_what_it_wrote_and_the_next_commands(tmp_path):
    result = invoke("--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"Wrote {tmp_path / 'fedge.toml'}: a coordinator on 127.0.0.1:7070" in result.output
    assert "task 'har': har-cnn1d, 7 labels, 30 rounds of 3 clients, fedavg" in result.output
    assert f"cd {tmp_path}" in result.output
    assert "fedge server" in result.output and "fedge token create" in result.output


def test_init_creates_the_folder_given_by_dir(tmp_path):
    assert invoke("--dir", str(tmp_path / "etc" / "fedge")).exit_code == 0
    assert (tmp_path / "etc" / "fedge" / "fedge.toml").is_file()


def test_init_refuses_to_overwrite_with_one_line_and_exit_2(tmp_path):
    (tmp_path / "fedge.toml").write_text("# mine\n")
    result = fedge("init", cwd=tmp_path)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert message == "error: fedge.toml already exists: not overwriting it (fedge init --force replaces it)"
    assert (tmp_path / "fedge.toml").read_text() == "# mine\n"


def test_init_force_replaces_an_existing_file(tmp_path):
    (tmp_path / "fedge.toml").write_text("# mine\n")
    assert invoke("--dir", str(tmp_path), "--force").exit_code == 0
    assert (tmp_path / "fedge.toml").read_text() == template_text()
