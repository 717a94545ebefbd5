"""Serving published models from the registry folder: the Registry gRPC service's side.

The gateway serves the same models over HTTP (server/gateway/models.py) through these RPCs;
the HTTP paths are parsed here, beside the folder layout they mirror.

Nothing here checks signatures: the files are served exactly as written, and the device checks
them against the key it pins (`fedge models verify`). Models are public artefacts of the
federation, so no credential is asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fedge.server.errors import InvalidRequest, NotFound
from fedge.shared import registry
from fedge.shared.proto import registry_pb2 as rpb

CHUNK_BYTES = 512 * 1024
FILES = {
    registry.MODEL: "application/octet-stream",
    registry.MANIFEST: "application/json",
    registry.SIGNATURE: "application/octet-stream",
}
HTTP_PATH = re.compile(r"/models/([a-z0-9-]+)/(\d+|latest)/(?:(int8)/)?([a-z.]+)")


class Catalog:
    """The published models under one registry root (``<data_dir>/registry``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def entries(self, task_id: str = "") -> list[rpb.PublishedModel]:
        tasks = [task_id] if task_id else registry.published_tasks(self.root)
        found = []
        for task in tasks:
            for version in registry.published_versions(self.root, task):
                for variant in registry.published_variants(self.root, task, version):
                    found.append(self._entry(task, version, variant))
        return found

    def folder(self, task_id: str, version: int, variant: str) -> Path:
        """The folder of a published variant; version 0 means the newest."""
        if variant not in registry.VARIANTS:
            raise InvalidRequest(f"expected a variant in {', '.join(registry.VARIANTS)}, got {variant!r}")
        versions = registry.published_versions(self.root, task_id)
        if not versions:
            raise NotFound(f"no published model for task {task_id!r}")
        version = version or versions[-1]
        folder = registry.version_folder(self.root, task_id, version, variant)
        if version not in versions or not (folder / registry.MANIFEST).is_file():
            raise NotFound(f"task {task_id!r} has no published {variant} version {version}")
        return folder

    def _entry(self, task: str, version: int, variant: str) -> rpb.PublishedModel:
        folder = registry.version_folder(self.root, task, version, variant)
        return rpb.PublishedModel(
            task_id=task,
            version=version,
            manifest_json=(folder / registry.MANIFEST).read_bytes(),
            signature=(folder / registry.SIGNATURE).read_bytes(),
        )

    # -- gRPC -------------------------------------------------------------------------------
    def list_models(self, request: rpb.ListModelsRequest) -> rpb.ListModelsResponse:
        return rpb.ListModelsResponse(models=self.entries(request.task_id))

    def get_model(self, request: rpb.GetModelRequest) -> Iterator[rpb.ModelFileChunk]:
        variant = request.variant or "fp32"
        folder = self.folder(request.task_id, request.version, variant)
        data = (folder / registry.MODEL).read_bytes()
        yield rpb.ModelFileChunk(model=self._entry(request.task_id, int(folder_version(folder, variant)), variant))
        for offset in range(0, len(data), CHUNK_BYTES):
            yield rpb.ModelFileChunk(data=data[offset : offset + CHUNK_BYTES])


def parse_http_path(path: str) -> tuple[str, int, str, str]:
    """(task, version or 0 for latest, variant, file name) of a model file's HTTP path."""
    match = HTTP_PATH.fullmatch(path)
    if not match or match[4] not in FILES:
        raise NotFound(f"no such model file: {path} (expected /models/<task>/<version|latest>/{'|'.join(FILES)})")
    return match[1], 0 if match[2] == "latest" else int(match[2]), match[3] or "fp32", match[4]


def folder_version(folder: Path, variant: str) -> str:
    return (folder.parent if variant != "fp32" else folder).name
