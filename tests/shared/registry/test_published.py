from __future__ import annotations

import re

import pytest

from fedge.shared.registry import (
    MANIFEST,
    MODEL,
    SIGNATURE,
    SigningKey,
    VerificationError,
    read_published,
    write_published,
)


@pytest.fixture
def folder(tmp_path, key, manifest, model):
    return write_published(tmp_path / "registry" / "watch-har" / "3", model, manifest, key)


def flip(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0x80
    return bytes(out)


def test_published_version_reads_back(folder, key, manifest, model, vector):
    assert sorted(path.name for path in folder.iterdir()) == [MANIFEST, SIGNATURE, MODEL]
    assert (folder / MANIFEST).read_bytes() == manifest.to_json()
    assert (folder / SIGNATURE).read_bytes().hex() == vector["signature"]
    assert read_published(folder, key.public_key()) == (manifest, model)


def test_version_folder_appears_whole_with_nothing_left_beside_it(folder):
    assert [path.name for path in folder.parent.iterdir()] == ["3"]


@pytest.mark.parametrize(
    ("name", "position", "sentence"),
    [
        (MODEL, 0, "the model file does not match its manifest: expected sha256"),
        (MODEL, -1, "the model file does not match its manifest: expected sha256"),
        (MANIFEST, 0, "the signature does not verify"),
        (MANIFEST, -1, "the signature does not verify"),
        (SIGNATURE, 0, "the signature does not verify"),
        (SIGNATURE, -1, "the signature does not verify"),
    ],
)
def test_tampered_file_is_never_returned(folder, key, name, position, sentence):
    path = folder / name
    path.write_bytes(flip(path.read_bytes(), position))
    with pytest.raises(VerificationError, match=f"{re.escape(str(folder))}: {sentence}"):
        read_published(folder, key.public_key())


def test_swapped_model_is_never_returned(folder, key):
    (folder / MODEL).write_bytes(b"another model")
    with pytest.raises(VerificationError, match="does not match its manifest: expected 81 bytes, got 13"):
        read_published(folder, key.public_key())


def test_folder_signed_by_another_key_is_refused(folder):
    with pytest.raises(VerificationError, match="the signature does not verify"):
        read_published(folder, SigningKey.generate().public_key())


@pytest.mark.parametrize("name", [MODEL, MANIFEST, SIGNATURE])
def test_folder_missing_a_file_is_refused(folder, key, name):
    (folder / name).unlink()
    with pytest.raises(VerificationError, match=f"is not a whole published model: no {re.escape(name)}"):
        read_published(folder, key.public_key())


def test_missing_version_is_not_found(tmp_path, key):
    with pytest.raises(FileNotFoundError, match="no published model at"):
        read_published(tmp_path / "registry" / "watch-har" / "9", key.public_key())


def test_published_version_is_never_rewritten(folder, key, manifest, model):
    with pytest.raises(FileExistsError, match="a published version is never rewritten"):
        write_published(folder, model, manifest, key)
    assert read_published(folder, key.public_key()) == (manifest, model)


def test_manifest_of_another_model_is_not_published(tmp_path, key, manifest, model):
    folder = tmp_path / "registry" / "watch-har" / "3"
    with pytest.raises(VerificationError, match="the model file does not match its manifest"):
        write_published(folder, model + b"!", manifest, key)
    assert not folder.exists()
