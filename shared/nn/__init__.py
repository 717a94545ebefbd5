"""fedge's training engine: define-by-run autodiff on NumPy (or CuPy), channels-last.

The public surface is small:

- ``Variable``, ``Parameter``, ``Function`` — the graph (``core``); ``no_grad()`` and
  ``test_mode()`` are context managers kept per thread/task.
- ``functions`` (imported as ``F``) — the ops: conv, max_pool, linear, relu, softmax, …
- ``Model`` — built from a JSON spec; ``get_weights``/``set_weights`` move ordered float32 lists.
- ``SGD``, ``Adam``, ``proximal_term`` — optimisers and FedProx's gradient hook.
"""

from __future__ import annotations

from fedge.shared.nn import functions
from fedge.shared.nn import functions as F
from fedge.shared.nn.backend import get_array_module, gpu_available, to_device
from fedge.shared.nn.core import Function, Parameter, Variable, grad_enabled, is_training, no_grad, test_mode
from fedge.shared.nn.layers import LAYERS, Layer, SpecError
from fedge.shared.nn.model import Model, Weights, check_weights
from fedge.shared.nn.optimizers import OPTIMIZERS, SGD, Adam, Optimizer, proximal_term

__all__ = [
    "LAYERS",
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "F",
    "Function",
    "Layer",
    "Model",
    "Optimizer",
    "Parameter",
    "SpecError",
    "Variable",
    "Weights",
    "check_weights",
    "functions",
    "get_array_module",
    "gpu_available",
    "grad_enabled",
    "is_training",
    "no_grad",
    "proximal_term",
    "test_mode",
    "to_device",
]
