"""Writes the registry's golden vector (docs/registry.md is the spec).

    .venv/bin/python tests/vectors/registry/generate.py          rewrite ed25519.json
    .venv/bin/python tests/vectors/registry/generate.py --check  exit 1 if the file differs from what this writes

Ed25519 is deterministic, so fixed inputs give fixed signatures: the private key is
SHA-256("fedge/registry/vectors/signing-key"), the model file a fixed byte string. Two RFC 8032
§7.1 tests come first, so an implementation can show it runs pure Ed25519 before it replays ours.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from fedge.shared.registry import Manifest, SigningKey, sign_manifest

HERE = Path(__file__).parent
FILENAME = "ed25519.json"

RFC8032 = [  # RFC 8032 §7.1, TEST 1 and TEST 2
    {
        "name": "RFC 8032 7.1 TEST 1",
        "private_key": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "message": "",
        "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    {
        "name": "RFC 8032 7.1 TEST 2",
        "private_key": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "public_key": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "message": "72",
        "signature": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
]  # fmt: skip


def fixed(name: str) -> bytes:
    return hashlib.sha256(b"fedge/registry/vectors/" + name.encode()).digest()


def model_bytes() -> bytes:
    return b"fedge/registry/vectors: stands in for model.onnx\n" + fixed("model")


def manifest_fields() -> dict[str, Any]:
    normalisation = {
        "method": "standardise",
        "channels": ["ax", "ay", "az"],
        "mean": [0.01, -0.2, 9.81],
        "std": [0.5, 0.5, 1.25],
    }
    return {
        "name": "watch-har",
        "version": 3,
        "task": "watch-har",
        "round": 3,
        "input": {"shape": [50, 3], "dtype": "float32", "layout": "NWC", "normalisation": normalisation},
        "labels": ["sit", "stand", "walk", "stairs ↑"],  # one non-ASCII label: the JSON is UTF-8, not \u escapes
        "metrics": {"accuracy": 0.9125, "loss": 0.3},
        "created": "2025-05-01T12:00:00Z",
        "format": "onnx",
        "quantization": "fp32",
    }  # fmt: skip


def refusal(name: str, error: str, key: SigningKey, manifest_json: bytes, signature: bytes, model: bytes) -> dict:
    return {
        "name": name,
        "error": error,
        "public_key": key.public_key().public_bytes().hex(),
        "manifest_json_hex": manifest_json.hex(),
        "signature": signature.hex(),
        "model": model.hex(),
    }


def flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def build() -> dict[str, Any]:
    key, other = SigningKey.from_bytes(fixed("signing-key")), SigningKey.from_bytes(fixed("another-key"))
    model = model_bytes()
    manifest = Manifest.for_bytes(model, **manifest_fields())
    manifest_json, signature = manifest.to_json(), sign_manifest(key, manifest)
    incomplete = b'{"name":"watch-har","version":3}'
    refused = [
        refusal("a flipped model byte", "model", key, manifest_json, signature, flip(model, 0)),
        refusal("a truncated model", "model", key, manifest_json, signature, model[:-1]),
        refusal("a flipped manifest byte", "signature", key, flip(manifest_json, 100), signature, model),
        refusal("a flipped signature byte", "signature", key, manifest_json, flip(signature, 63), model),
        refusal("another key", "signature", other, manifest_json, signature, model),
        refusal("a signed manifest missing fields", "manifest", key, incomplete, key.sign(incomplete), model),
    ]  # fmt: skip
    return {
        FILENAME: {
            "description": "Ed25519 (RFC 8032, pure) over the manifest's canonical JSON bytes; see docs/registry.md",
            "rfc8032": RFC8032,
            "private_key": key.private_bytes().hex(),
            "public_key": key.public_key().public_bytes().hex(),
            "fingerprint": key.public_key().fingerprint(),
            "model": model.hex(),
            "manifest": manifest.to_dict(),
            "manifest_json": manifest_json.decode("utf-8"),
            "manifest_json_hex": manifest_json.hex(),
            "signature": signature.hex(),
            "refused": refused,
        }
    }


def dumps(value: Any, indent: int = 0) -> str:
    """JSON with lists of scalars kept on one line, so the file reads well and diffs well."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}" if items else "{}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return "[\n" + ",\n".join(pad + dumps(v, indent + 1) for v in value) + "\n" + "  " * indent + "]"
    return json.dumps(value, ensure_ascii=False)


def main(argv: list[str]) -> int:
    stale = []
    for filename, content in build().items():
        path, text = HERE / filename, dumps(content) + "\n"
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale vectors (run generate.py): {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
