"""Published models: manifests, their Ed25519 signatures, and the on-disk layout (docs/registry.md).

    manifest.py   Manifest: name, version, input spec, labels, metrics, sha256, size…; canonical JSON
    signing.py    SigningKey / VerifyKey (raw 32 bytes), sign_manifest, verify, load_or_create
    published.py  write_published / read_published: <task>/<version>/{model.onnx, manifest.json, manifest.sig}

Publishing and running, one line each:

    coordinator   manifest = Manifest.for_bytes(model, …); write_published(folder, model, manifest, key)
    device, user  manifest = verify(pinned_key, manifest_json, signature, model)   → run the model

Errors: VerificationError (do not run this model), KeyFileError (the key file breaks a rule) and
ManifestError (a manifest breaks the format) are ValueErrors whose message is one sentence.
"""

from __future__ import annotations

from fedge.shared.registry.manifest import Manifest, ManifestError, rfc3339
from fedge.shared.registry.published import (
    MANIFEST,
    MODEL,
    SIGNATURE,
    VARIANTS,
    published_tasks,
    published_variants,
    published_versions,
    read_published,
    version_folder,
    write_published,
)
from fedge.shared.registry.signing import (
    KeyFileError,
    SigningKey,
    VerificationError,
    VerifyKey,
    check_model,
    key_path,
    load,
    load_or_create,
    sign_manifest,
    verify,
)

__all__ = [
    "MANIFEST",
    "MODEL",
    "SIGNATURE",
    "VARIANTS",
    "KeyFileError",
    "Manifest",
    "ManifestError",
    "SigningKey",
    "VerificationError",
    "VerifyKey",
    "check_model",
    "key_path",
    "load",
    "load_or_create",
    "published_tasks",
    "published_variants",
    "published_versions",
    "read_published",
    "rfc3339",
    "sign_manifest",
    "verify",
    "version_folder",
    "write_published",
]
