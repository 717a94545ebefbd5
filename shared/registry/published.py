"""One published model version on disk: the model, its manifest and the manifest's signature.

    <data_dir>/registry/<task>/<version>/model.onnx      the model file, as exported
                                         manifest.json   the manifest's canonical JSON: the signed bytes
                                         manifest.sig    the raw 64-byte Ed25519 signature
    <data_dir>/keys/signing.key                          the raw 32-byte private key, mode 0600

A version folder appears whole (built under a hidden name, then renamed) and is never
rewritten; readers skip names starting with ".", which are folders still being written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fedge.shared.registry.manifest import Manifest
from fedge.shared.registry.signing import SigningKey, VerificationError, VerifyKey, check_model, sign_manifest, verify

MODEL = "model.onnx"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


def write_published(folder: Path, model_bytes: bytes, manifest: Manifest, key: SigningKey) -> Path:
    """Signs `manifest` and writes the three files into `folder`, which must not exist yet."""
    folder = Path(folder)
    check_model(manifest, model_bytes)  # never sign a manifest that describes another file
    if folder.exists():
        raise FileExistsError(f"{folder} already exists: a published version is never rewritten")
    files = {MODEL: bytes(model_bytes), MANIFEST: manifest.to_json(), SIGNATURE: sign_manifest(key, manifest)}
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        staging.chmod(0o755)  # mkdtemp's 0700 would hide a public model from a separate web server
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def read_published(folder: Path, verify_key: VerifyKey) -> tuple[Manifest, bytes]:
    """The manifest and model bytes of `folder`, returned only once the signature and the model's
    hash check out; a tampered or incomplete folder raises VerificationError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no published model at {folder}")
    missing = [name for name in (MODEL, MANIFEST, SIGNATURE) if not (folder / name).is_file()]
    if missing:
        raise VerificationError(f"{folder} is not a whole published model: no {', '.join(missing)}")
    model = (folder / MODEL).read_bytes()
    try:
        manifest = verify(verify_key, (folder / MANIFEST).read_bytes(), (folder / SIGNATURE).read_bytes(), model)
    except VerificationError as error:
        raise VerificationError(f"{folder}: {error}") from None
    return manifest, model
