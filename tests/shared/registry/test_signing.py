from __future__ import annotations

import hashlib
import os
import re
import stat
import threading

import pytest

from fedge.shared.registry import (
    KeyFileError,
    Manifest,
    SigningKey,
    VerificationError,
    VerifyKey,
    load,
    load_or_create,
    sign_manifest,
    verify,
)

SIGNATURE_REFUSED = "the signature does not verify with key c86c54a32d69e5bf"
SENTENCES = {  # the vector's error kinds, as Python says them
    "signature": "the signature does not verify",
    "manifest": "the signed manifest does not parse",
    "model": "the model file does not match its manifest",
}


def flip(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0x01
    return bytes(out)


@pytest.fixture
def signed(key, manifest):
    return manifest.to_json(), sign_manifest(key, manifest)


# -------------------------------------------------------------------- verify


def test_signed_manifest_verifies(key, manifest, signed, model):
    manifest_json, signature = signed
    assert verify(key.public_key(), manifest_json, signature, model) == manifest


@pytest.mark.parametrize("position", [0, 1, 40, -1])
def test_flipped_model_byte_is_refused(key, signed, model, position):
    tampered = flip(model, position)
    digest = hashlib.sha256(tampered).hexdigest()
    expected = hashlib.sha256(model).hexdigest()
    sentence = f"the model file does not match its manifest: expected sha256 {expected}, got {digest}"
    with pytest.raises(VerificationError, match=re.escape(sentence)):
        verify(key.public_key(), *signed, tampered)


@pytest.mark.parametrize("position", [0, 1, 100, 300, -2, -1])
def test_flipped_manifest_byte_is_refused(key, signed, model, position):
    manifest_json, signature = signed
    with pytest.raises(VerificationError, match=SIGNATURE_REFUSED):
        verify(key.public_key(), flip(manifest_json, position), signature, model)


@pytest.mark.parametrize("position", [0, 1, 31, 32, 62, 63])
def test_flipped_signature_byte_is_refused(key, signed, model, position):
    manifest_json, signature = signed
    with pytest.raises(VerificationError, match=SIGNATURE_REFUSED):
        verify(key.public_key(), manifest_json, flip(signature, position), model)


def test_every_single_flipped_byte_is_refused(key, signed, model):
    parts = [*signed, model]  # manifest JSON, signature, model
    sentences = [SIGNATURE_REFUSED, SIGNATURE_REFUSED, "the model file does not match its manifest"]
    for index, sentence in enumerate(sentences):
        for position in range(len(parts[index])):
            spoiled = [flip(part, position) if i == index else part for i, part in enumerate(parts)]
            with pytest.raises(VerificationError, match=sentence):
                verify(key.public_key(), *spoiled)


def test_truncated_model_is_refused_by_its_size(key, signed, model):
    sentence = f"the model file does not match its manifest: expected {len(model)} bytes, got {len(model) - 1}"
    with pytest.raises(VerificationError, match=re.escape(sentence)):
        verify(key.public_key(), *signed, model[:-1])


def test_manifest_edited_to_describe_another_model_is_refused(key, manifest, signed):
    other, fields = b"another model", manifest.to_dict()
    del fields["sha256"], fields["size"]
    edited = Manifest.for_bytes(other, **fields)
    with pytest.raises(VerificationError, match=SIGNATURE_REFUSED):
        verify(key.public_key(), edited.to_json(), signed[1], other)


def test_different_key_is_refused(signed, model):
    other = SigningKey.generate().public_key()
    with pytest.raises(VerificationError, match=f"the signature does not verify with key {other.fingerprint()}"):
        verify(other, *signed, model)


@pytest.mark.parametrize("size", [0, 63, 65])
def test_signature_of_the_wrong_length_is_refused(key, signed, model, size):
    with pytest.raises(VerificationError, match=f"expected a 64-byte Ed25519 signature, got {size} bytes"):
        verify(key.public_key(), signed[0], bytes(size), model)


def test_signed_manifest_that_does_not_parse_is_refused(key, model):
    manifest_json = b'{"name":"watch-har"}'
    with pytest.raises(VerificationError, match="the signed manifest does not parse: expected the keys name, version"):
        verify(key.public_key(), manifest_json, key.sign(manifest_json), model)


def test_verify_wants_a_verify_key(key, signed, model):
    with pytest.raises(TypeError, match="key must be a VerifyKey, got SigningKey"):
        verify(key, *signed, model)


def test_manifest_text_is_refused(key, signed, model):
    with pytest.raises(TypeError, match="manifest_json must be bytes, got str"):
        verify(key.public_key(), signed[0].decode(), signed[1], model)


# -------------------------------------------------------------------- the golden vector


@pytest.mark.parametrize("case", range(2))
def test_rfc8032_vectors_replay(vector, case):
    test = vector["rfc8032"][case]
    key = SigningKey.from_bytes(bytes.fromhex(test["private_key"]))
    assert key.public_key().public_bytes().hex() == test["public_key"]
    assert key.sign(bytes.fromhex(test["message"])).hex() == test["signature"]
    VerifyKey.from_bytes(bytes.fromhex(test["public_key"])).verify(
        bytes.fromhex(test["signature"]), bytes.fromhex(test["message"])
    )


def test_signed_manifest_vector_replays(vector, key, manifest, model):
    public = VerifyKey.from_bytes(bytes.fromhex(vector["public_key"]))
    assert key.public_key() == public and public.fingerprint() == vector["fingerprint"]
    assert bytes.fromhex(vector["model"]) == model
    assert vector["manifest_json"].encode("utf-8") == bytes.fromhex(vector["manifest_json_hex"]) == manifest.to_json()
    assert sign_manifest(key, manifest).hex() == vector["signature"]
    signature = bytes.fromhex(vector["signature"])
    assert verify(public, bytes.fromhex(vector["manifest_json_hex"]), signature, model).to_dict() == vector["manifest"]


@pytest.mark.parametrize("case", range(6))
def test_refused_vectors_are_refused_with_their_sentence(vector, case):
    refused = vector["refused"][case]
    public = VerifyKey.from_bytes(bytes.fromhex(refused["public_key"]))
    parts = [bytes.fromhex(refused[name]) for name in ("manifest_json_hex", "signature", "model")]
    with pytest.raises(VerificationError, match=SENTENCES[refused["error"]]):
        verify(public, *parts)


def test_generator_reproduces_the_committed_vector(generator, vector):
    assert generator.dumps(generator.build()["ed25519.json"]) == generator.dumps(vector), "run generate.py"


# -------------------------------------------------------------------- keys


def test_raw_encodings_round_trip():
    key = SigningKey.generate()
    assert SigningKey.from_bytes(key.private_bytes()).public_key() == key.public_key()
    assert VerifyKey.from_bytes(key.public_key().public_bytes()) == key.public_key()


def test_fingerprint_is_the_start_of_the_public_keys_sha256():
    public = SigningKey.generate().public_key()
    assert public.fingerprint() == hashlib.sha256(public.public_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("size", [0, 31, 33, 64])
@pytest.mark.parametrize("cls", [SigningKey, VerifyKey])
def test_wrong_key_length_is_refused_with_the_rule(cls, size):
    with pytest.raises(ValueError, match=f"exactly 32 bytes, got {size}"):
        cls.from_bytes(bytes(size))


@pytest.mark.parametrize("cls", [SigningKey, VerifyKey])
def test_key_from_text_is_refused(cls):
    with pytest.raises(TypeError, match="bytes of length 32, got str"):
        cls.from_bytes("00" * 32)


def test_signing_key_repr_hides_the_secret(key, vector):
    assert vector["private_key"] not in repr(key)
    assert repr(key) == "SigningKey(public=c86c54a32d69e5bf)"


# -------------------------------------------------------------------- key files


def test_key_file_is_made_0600_at_first_start(tmp_path):
    path = tmp_path / "keys" / "signing.key"
    key = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == key.private_bytes()
    assert os.listdir(path.parent) == ["signing.key"]


def test_key_file_is_kept_at_the_next_start(tmp_path):
    path = tmp_path / "signing.key"
    assert load_or_create(path).public_key() == load_or_create(path).public_key() == load(path).public_key()


def test_servers_starting_at_once_keep_one_key(tmp_path):
    path, keys = tmp_path / "signing.key", []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create(path).public_key())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_others_may_read_is_refused(tmp_path, mode):
    path = tmp_path / "signing.key"
    load_or_create(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"has mode {mode:04o}: expected 0600.*run chmod 600"):
        load_or_create(path)


@pytest.mark.parametrize(("size", "holds"), [(0, "0 bytes"), (31, "31 bytes"), (33, "more than 32 bytes")])
def test_corrupt_key_file_is_refused(tmp_path, size, holds):
    path = tmp_path / "signing.key"
    path.write_bytes(bytes(size))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=f"holds {holds}: expected the raw 32-byte Ed25519 private key"):
        load_or_create(path)


def test_key_folder_in_place_of_the_file_is_refused(tmp_path):
    (tmp_path / "signing.key").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="is not a file"):
        load_or_create(tmp_path / "signing.key")


def test_missing_key_file_is_not_made_by_load(tmp_path):
    with pytest.raises(KeyFileError, match=r"no signing key at .*a server makes one at its first start"):
        load(tmp_path / "signing.key")
    assert not (tmp_path / "signing.key").exists()
