"""Publishing committed versions: ONNX, an optional int8 copy, a signed manifest, a registry folder.

    policy     publish = "never" | "every" (each publish_every-th version, and the last one)
               | "best" (a version whose held-out publish_metric beats every published one:
               the coordinator's evaluate_on split, or the devices' eval_ scores, which arrive
               a round late: round N's devices score version N − 1, decided on then; the
               last version in the task's closing scoring round)
    publish    export the spec and weights to ONNX → manifest (input spec, labels, metrics) →
               sign with the coordinator's key → <data_dir>/registry/<task>/<version>/
    int8       quantise (calibrated on held-out samples when the task has some), measure its
               accuracy with ONNX Runtime beside fp32's, publish it in <version>/int8/

Publishing runs on the coordinator's publishing thread after a commit, so a slow export never
stalls check-ins; a failure is logged and the rounds go on. At start, a due version that a crash
left unpublished is published then (`candidates`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedge.server.config import DEVICE_METRICS, PUBLISH_METRICS, TaskConfig
from fedge.shared import data, registry
from fedge.shared.nn import Weights

log = logging.getLogger("fedge.publishing")

# what a device may want to know of a version
MANIFEST_METRICS = ("accuracy", "loss", "eval_accuracy", "eval_loss", "epsilon", "delta")
CALIBRATION_SAMPLES = 256


@dataclass
class Publisher:
    """Publishes one task's versions into a registry root by its policy."""

    task: TaskConfig
    spec: dict[str, Any]
    root: Path
    key: registry.SigningKey
    splits: data.Splits | None = None  # held-out samples calibrate and measure the int8 copy
    committed: Callable[[int], tuple[Weights, dict[str, Any]]] | None = None  # an earlier version, from the store
    _best: float | None = field(default=None, init=False)
    _read: bool = field(default=False, init=False)  # whether _best holds the published manifests' best

    def due(self, version: int, metrics: dict[str, Any]) -> bool:
        policy = self.task.publish
        if policy == "never" or version in registry.published_versions(self.root, self.task.name):
            return False
        if policy == "every":
            return version % self.task.publish_every == 0 or version >= self.task.rounds
        value = metrics.get(self.task.publish_metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return False
        best = self.best()
        return best is None or (value != best and PUBLISH_METRICS[self.task.publish_metric](value, best) == value)

    def candidates(self, version: int) -> list[int]:
        """Versions up to ``version`` the policy may still owe after a crash, oldest first."""
        if self.task.publish == "every":
            due = set(range(self.task.publish_every, version + 1, self.task.publish_every))
            due |= {version} if version >= self.task.rounds else set()
            return sorted(due - set(registry.published_versions(self.root, self.task.name)))
        return [version] if self.task.publish == "best" and version > 0 else []

    def best(self) -> float | None:
        """The best publish_metric among published versions: their manifests are read once, at the
        first decision after a start, and kept up to date as versions are published."""
        if not self._read:
            for version in registry.published_versions(self.root, self.task.name):
                folder = registry.version_folder(self.root, self.task.name, version)
                metrics = registry.Manifest.from_json((folder / registry.MANIFEST).read_bytes()).metrics
                self._remember(metrics.get(self.task.publish_metric))
            self._read = True
        return self._best

    def _remember(self, value: float | None) -> None:
        if value is not None:
            self._best = value if self._best is None else PUBLISH_METRICS[self.task.publish_metric](self._best, value)

    def on_commit(self, version: int, weights: Weights, metrics: dict[str, Any]) -> Path | None:
        """Publish ``version`` (or the one its devices scored) if the policy says so; never raises
        (the rounds must go on)."""
        if self.task.published_by_devices:
            return self.on_scores(version - 1, metrics)
        try:
            metrics = {k: v for k, v in metrics.items() if k not in DEVICE_METRICS}  # they score version N − 1
            if self.due(version, metrics):
                return self.publish(version, weights, metrics)
        except Exception:
            log.exception("task %s: publishing version %d failed", self.task.name, version)
        return None

    def on_scores(self, version: int, metrics: dict[str, Any]) -> Path | None:
        """Publish ``version`` if the devices' scores of it make it due (a round's figures hold the
        scores of the version before it; a scoring round's, of the last); never raises. Its weights
        are read from the store only when it is due."""
        scores = {k: metrics[k] for k in DEVICE_METRICS if k in metrics}
        try:
            if not self.task.published_by_devices or version < 1 or not self.due(version, scores):
                return None
            if self.committed is None:
                raise RuntimeError("publishing by the devices' scores needs the store's earlier versions")
            weights, own = self.committed(version)
            return self.publish(version, weights, own | scores)
        except Exception:
            log.exception("task %s: publishing version %d failed", self.task.name, version)
        return None

    def publish(self, version: int, weights: Weights, metrics: dict[str, Any]) -> Path:
        from fedge.shared.onnx.export import export

        model = export(self.spec, weights)
        kept = _manifest_metrics(metrics)
        folder = self._write(version, model.SerializeToString(), kept, "fp32")
        if self._read:
            self._remember(kept.get(self.task.publish_metric))
        if self.task.publish_int8:
            self._publish_int8(version, model, kept)
        log.info("task %s: published version %d at %s %s", self.task.name, version, folder, json.dumps(kept))
        return folder

    def _publish_int8(self, version: int, model: Any, fp32_metrics: dict[str, float]) -> None:
        from fedge.shared.onnx import runtime
        from fedge.shared.onnx.quantize import quantize_int8

        heldout = self.splits.heldout if self.splits is not None else None
        calibration = heldout.x[:CALIBRATION_SAMPLES] if heldout is not None else None
        int8 = quantize_int8(model, calibration).SerializeToString()
        metrics = {k: v for k, v in fp32_metrics.items() if k in ("epsilon", "delta")}
        if heldout is not None:
            measured = runtime.evaluate(runtime.session(int8), heldout.x, heldout.y)
            metrics |= measured | {f"fp32_{k}": v for k, v in fp32_metrics.items() if k in measured}
        self._write(version, int8, metrics, "int8")

    def _write(self, version: int, model_bytes: bytes, metrics: dict[str, float], variant: str) -> Path:
        manifest = registry.Manifest.for_bytes(
            model_bytes,
            name=self.task.name if variant == "fp32" else f"{self.task.name}-{variant}",
            version=version,
            task=self.task.name,
            round=version,
            input=self._input(),
            labels=list(self.task.labels),
            metrics=metrics,
            quantization=variant,
        )
        folder = registry.version_folder(self.root, self.task.name, version, variant)
        return registry.write_published(folder, model_bytes, manifest, self.key)

    def _input(self) -> dict[str, Any]:
        from fedge.shared.onnx.export import LAYOUTS

        shape = list(self.task.input_shape)
        normalisation = self.splits.normalisation if self.splits is not None else {}
        return {"shape": shape, "dtype": "float32", "layout": LAYOUTS[len(shape)], "normalisation": normalisation}


def _manifest_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if k in MANIFEST_METRICS and isinstance(v, int | float) and math.isfinite(v)
    }
