from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from fedge.shared.registry import Manifest, ManifestError, rfc3339


def replaced(manifest: Manifest, **changes) -> dict:
    return {**manifest.to_dict(), **changes}


def test_canonical_json_is_the_vectors_bytes(manifest, vector):
    assert manifest.to_json() == bytes.fromhex(vector["manifest_json_hex"])
    assert manifest.to_json().decode("utf-8") == vector["manifest_json"]


def test_canonical_json_is_sorted_compact_utf8(manifest):
    text = manifest.to_json().decode("utf-8")
    assert text.startswith('{"created":"2025-05-01T12:00:00Z","format":"onnx","input":{"dtype":"float32",')
    assert '"stairs ↑"' in text and "\\u" not in text
    assert " " not in text.replace("stairs ↑", "")


def test_same_manifest_gives_the_same_bytes(manifest):
    again = Manifest(**manifest.to_dict())
    assert again.to_json() == manifest.to_json()
    assert again == manifest


def test_key_order_of_the_input_is_irrelevant(manifest):
    raw = manifest.to_dict()
    reordered = {key: raw[key] for key in reversed(raw)}
    reordered["input"] = {key: raw["input"][key] for key in reversed(raw["input"])}
    normalisation = raw["input"]["normalisation"]
    reordered["input"]["normalisation"] = {key: normalisation[key] for key in reversed(normalisation)}
    reordered["metrics"] = {key: raw["metrics"][key] for key in reversed(raw["metrics"])}
    assert Manifest(**reordered).to_json() == manifest.to_json()


def test_json_round_trips(manifest):
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_for_file_records_sha256_and_size(tmp_path, fields):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"abc")
    manifest = Manifest.for_file(path, **fields)
    assert manifest.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256("abc")
    assert manifest.size == 3


def test_for_bytes_stamps_the_time_in_utc(model, fields):
    del fields["created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", Manifest.for_bytes(model, **fields).created)


def test_integer_metrics_and_normalisation_are_stored_as_floats(manifest):
    normalisation = {"method": "scale", "channels": ["ax", "ay", "az"], "mean": [0, 0, 0], "std": [255, 255, 255]}
    raw = replaced(manifest, metrics={"accuracy": 1}, input={**manifest.input, "normalisation": normalisation})
    rebuilt = Manifest(**raw)
    assert rebuilt.metrics == {"accuracy": 1.0} and rebuilt.input["normalisation"]["std"] == [255.0] * 3
    assert b'"accuracy":1.0' in rebuilt.to_json()


def test_inputs_used_as_they_are_have_an_empty_normalisation(manifest):
    raw = replaced(manifest, input={"shape": [10], "dtype": "float32", "layout": "NC", "normalisation": {}})
    assert Manifest(**raw).input["normalisation"] == {}


def test_rfc3339_writes_utc_with_a_z():
    assert rfc3339(datetime.fromisoformat("2025-05-01T14:00:00.75+02:00")) == "2025-05-01T12:00:00Z"
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2025, 5, 1))


INPUT = {"shape": [50, 3], "dtype": "float32", "layout": "NWC", "normalisation": {}}
NORMALISATION = {"method": "standardise", "channels": ["ax", "ay", "az"], "mean": [0, 0, 0], "std": [1, 1, 1]}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "expected name as a non-empty string, got ''"),
        ("version", 0, "expected version as an integer >= 1, got 0"),
        ("version", True, "expected version as an integer >= 1, got True"),
        ("version", "3", "expected version as an integer >= 1, got '3'"),
        ("task", "Watch HAR", "expected task as a task name of a-z, 0-9, '-', got 'Watch HAR'"),
        ("task", "../keys", "expected task as a task name of a-z, 0-9, '-', got '../keys'"),
        ("round", 0, "expected round as an integer >= 1, got 0"),
        ("sha256", "AB" * 32, "expected sha256 as 64 lowercase hex, got 'ABAB"),
        ("size", 0, "expected size as a size in bytes >= 1, got 0"),
        ("created", "2025-05-01 12:00:00", "expected created as an RFC 3339 UTC time"),
        ("created", "2025-02-30T12:00:00Z", "got '2025-02-30T12:00:00Z'"),
        ("created", "2025-05-01T12:00:00+02:00", "got '2025-05-01T12:00:00+02:00'"),
        ("format", "tflite", "expected format as one of onnx, got 'tflite'"),
        ("quantization", "int4", "expected quantization as one of fp32, int8, got 'int4'"),
        ("labels", [], "expected labels as a non-empty list of names, got []"),
        ("labels", ["sit", 3], "expected labels as a non-empty list of names, got ['sit', 3]"),
        ("labels", ["sit", "walk", "sit"], "expected distinct labels, got 'sit' repeated"),
        ("metrics", [0.9], "expected metrics as a JSON object of names to numbers, got [0.9]"),
        ("metrics", {"accuracy": float("nan")}, "expected metrics['accuracy'] as a finite number, got nan"),
        ("metrics", {"accuracy": True}, "expected metrics['accuracy'] as a finite number, got True"),
        ("metrics", {"accuracy": 10**400}, "expected metrics['accuracy'] as a finite number"),
        ("metrics", {"précision": 0.9}, "expected metric names as non-empty ASCII strings, got 'précision'"),
        ("input", [50, 3], "expected input as a JSON object, got [50, 3]"),
        ("input", {**INPUT, "layout": "NCW"}, "expected input.layout among NC, NWC, NHWC, got 'NCW'"),
        ("input", {**INPUT, "shape": [1, 50, 3]}, "expected input.shape as 2 positive sizes for layout NWC"),
        ("input", {**INPUT, "shape": [50, 0]}, "(one sample, no batch axis), got [50, 0]"),
        ("input", {**INPUT, "dtype": "float64"}, "expected input.dtype among float32, got 'float64'"),
        ("input", {"shape": [50, 3]}, "expected input with the keys shape, dtype, layout, normalisation, got no dtype"),
        ("input", {**INPUT, "batch": 1}, "got unknown batch"),
        (
            "input",
            {**INPUT, "normalisation": {**NORMALISATION, "mean": [0, 0]}},
            "expected input.normalisation.mean as 3 finite numbers, got [0, 0]",
        ),
        (
            "input",
            {**INPUT, "normalisation": {**NORMALISATION, "std": [1, 0, 1]}},
            "expected input.normalisation.std as 3 finite numbers > 0, got [1, 0, 1]",
        ),
        (
            "input",
            {**INPUT, "normalisation": {**NORMALISATION, "channels": ["ax"]}},
            "expected input.normalisation.channels as 3 channel names, got ['ax']",
        ),
        (
            "input",
            {**INPUT, "normalisation": {**NORMALISATION, "method": "whiten"}},
            "expected input.normalisation.method among standardise, scale, got 'whiten'",
        ),
        ("input", {**INPUT, "normalisation": {"method": "scale"}}, "got no channels, mean, std"),
    ],
)
def test_malformed_field_is_refused_with_the_rule(manifest, field, value, message):
    with pytest.raises(ManifestError, match=re.escape(message)):
        Manifest(**replaced(manifest, **{field: value}))


def test_lone_surrogate_is_refused(manifest):
    with pytest.raises(ManifestError, match="expected text encodable as UTF-8"):
        Manifest(**replaced(manifest, name="model \ud800"))


SPOILED = {  # name -> (what spoils the canonical text, what the refusal says)
    "not-utf8": (lambda text: text.encode()[:-1] + b"\xff", "expected UTF-8 text, got an undecodable byte at offset"),
    "cut-short": (lambda text: text[:-1].encode(), "expected JSON, got Expecting ',' delimiter at offset"),
    "array": (lambda text: b"[" + text.encode() + b"]", "expected a JSON object, got list"),
    "missing-key": (lambda text: text.replace('"format":"onnx",', "").encode(), "got no format"),
    "unknown-key": (lambda text: text.replace("{", '{"author":"me",', 1).encode(), "got unknown author"),
    "duplicate-key": (lambda text: text.replace("{", '{"version":2,', 1).encode(), "got 'version' twice"),
    "nan": (lambda text: text.replace('"loss":0.3', '"loss":NaN').encode(), "expected finite numbers, got NaN"),
    "other-float-spelling": (lambda text: text.replace('"loss":0.3', '"loss":3e-1').encode(), "canonical JSON"),
    "whitespace": (lambda text: text.replace(",", ", ", 1).encode(), "got bytes that differ from it at offset 34"),
    "pretty-printed": (lambda text: json.dumps(json.loads(text), indent=2).encode(), "expected canonical JSON"),
    "unicode-escape": (lambda text: text.replace("↑", "\\u2191").encode(), "expected canonical JSON"),
    "too-large": (lambda text: text.encode() + b" " * (1 << 20), "expected a manifest of at most 1048576 bytes"),
}


@pytest.mark.parametrize("name", SPOILED)
def test_malformed_json_is_refused_with_the_rule(manifest, name):
    spoil, message = SPOILED[name]
    with pytest.raises(ManifestError, match=re.escape(message)):
        Manifest.from_json(spoil(manifest.to_json().decode()))


def test_deeply_nested_json_is_refused(manifest):
    with pytest.raises(ManifestError, match="nesting too deep"):
        Manifest.from_json(b"[" * 100_000 + b"]" * 100_000)


def test_manifest_from_text_is_refused(manifest):
    with pytest.raises(TypeError, match="expected the manifest as bytes, got str"):
        Manifest.from_json(manifest.to_json().decode())


def test_manifest_cannot_be_changed_after_it_is_built(manifest):
    with pytest.raises(AttributeError):
        manifest.version = 4
