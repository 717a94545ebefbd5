"""Model specs: the zoo, sized to a dataset, and built with the engine."""

from __future__ import annotations

from fedge.shared.models.zoo import ZOO, Spec, model_spec

__all__ = ["ZOO", "Spec", "model_spec"]
