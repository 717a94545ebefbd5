"""One published model version on disk: the model, its manifest and the manifest's signature.

    <data_dir>/registry/<task>/<version>/model.onnx      the model file, as exported
                                         manifest.json   the manifest's canonical JSON: the signed bytes
                                         manifest.sig    the raw 64-byte Ed25519 signature
                                         int8/           the same three files for an int8 copy, if made
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
VARIANTS = ("fp32", "int8")  # fp32 is the version folder itself, int8 a folder inside it


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


def version_folder(root: Path, task: str, version: int, variant: str = "fp32") -> Path:
    """Where one published variant lives under a registry root (``<data_dir>/registry``)."""
    if variant not in VARIANTS:
        raise ValueError(f"expected a variant in {', '.join(VARIANTS)}, got {variant!r}")
    folder = Path(root) / task / str(version)
    return folder / variant if variant != "fp32" else folder


def published_versions(root: Path, task: str) -> list[int]:
    """The task's published versions, oldest first; folders still being written are skipped."""
    folder = Path(root) / task
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file())


def published_tasks(root: Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def published_variants(root: Path, task: str, version: int) -> list[str]:
    return [v for v in VARIANTS if (version_folder(root, task, version, v) / MANIFEST).is_file()]
