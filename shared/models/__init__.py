"""Model specs: the zoo, sized to a dataset, and built with the engine."""

from __future__ import annotations

from fedge.shared.models.external import EXTERNAL, external_spec, is_external, read_parameters
from fedge.shared.models.zoo import ZOO, Spec, model_spec

__all__ = ["EXTERNAL", "ZOO", "Spec", "external_spec", "is_external", "model_spec", "read_parameters"]
