"""`fedge token create --link / --qr`: join links a device owner opens (or scans) to join from a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from typer.testing import CliRunner

from fedge.cli import app
from fedge.server.store import Store
from fedge.shared import registry

LINK = re.compile(r"(?P<base>\S+)/#token=(?P<token>[^&\s]+)(&key=(?P<key>[0-9a-f]{64}))?")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A coordinator's data dir, and a working directory without fedge.toml (the built-in defaults)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEDGE_HTTP_PORT", raising=False)
    Store(tmp_path / "data").close()
    yield tmp_path / "data"


def create(data_dir: Path, *args: str, **env: str):
    return CliRunner().invoke(app, ["token", "create", "--data-dir", str(data_dir), *args], env=env)


def test_links_carry_fresh_tokens_on_the_given_base_url(data_dir: Path) -> None:
    result = create(data_dir, "--count", "2", "--link", "--base-url", "http://10.0.0.5:8080/")
    assert result.exit_code == 0, result.output
    links = result.output.splitlines()
    assert len(links) == 2
    store = Store(data_dir)
    try:
        for line in links:
            match = LINK.fullmatch(line)
            assert match and match["base"] == "http://10.0.0.5:8080", line
            client_id, _ = store.enroll(match["token"], "browser-chromium/wasm", "")  # a real, unused token
            assert client_id
    finally:
        store.close()


def test_the_base_url_defaults_to_the_configured_gateway(data_dir: Path) -> None:
    assert LINK.fullmatch(create(data_dir, "--link").output.strip())["base"] == "http://127.0.0.1:8080"
    moved = create(data_dir, "--link", FEDGE_HTTP_PORT="9001").output.strip()
    assert LINK.fullmatch(moved)["base"] == "http://127.0.0.1:9001"


def test_links_carry_the_model_signing_key_once_the_coordinator_made_one(data_dir: Path) -> None:
    assert LINK.fullmatch(create(data_dir, "--link").output.strip())["key"] is None  # no key before a first start
    key = registry.load_or_create(registry.key_path(data_dir))  # what `fedge server` does at its first start
    link = LINK.fullmatch(create(data_dir, "--link").output.strip())
    assert link["key"] == key.public_key().public_bytes().hex()


def test_links_without_a_gateway_need_a_base_url(data_dir: Path) -> None:
    result = create(data_dir, "--link", FEDGE_HTTP_PORT="0")
    assert result.exit_code != 0
    assert "the web gateway is off (http_port = 0): pass --base-url" in str(result.exception)


def test_plain_tokens_stay_the_default(data_dir: Path) -> None:
    (line,) = create(data_dir).output.splitlines()
    assert "/" not in line and "token=" not in line


def modules(drawing: list[str]) -> list[list[bool]]:
    """Half-block characters back to rows of modules (True: dark); the terminal's light is the block."""
    halves = {"█": (False, False), "▀": (False, True), "▄": (True, False), " ": (True, True)}
    rows = []
    for line in drawing:
        pairs = [halves[c] for c in line]
        rows += [[top for top, _ in pairs], [bottom for _, bottom in pairs]]
    return rows


def test_qr_codes_encode_the_link(data_dir: Path) -> None:
    result = create(data_dir, "--qr", "--base-url", "http://192.168.1.20:8080")
    assert result.exit_code == 0, result.output
    link, *drawing = [line for line in result.output.splitlines() if line]
    assert LINK.fullmatch(link)
    expected = segno.make(link, error="m")
    size = expected.symbol_size(border=2)[0]
    drawn = modules(drawing)[:size]  # an odd size leaves one half row of border below
    matrix = [[bool(v) for v in row] for row in expected.matrix_iter(border=2)]
    assert drawn == matrix
