"""Client-level differential privacy: clip each update, add noise, account for (ε, δ).

    clipping.py    clip_update: per-update L2 clipping over all tensors together;
                   quantised_sensitivity: that bound once the update is scaled and rounded
    noise.py       gaussian_noise (central, trusted server), discrete_gaussian and
                   client_noise_scale (distributed, on devices, under secure aggregation);
                   mean_noise_ratio: whether a cohort is large enough to learn through the noise
    distributed.py plan_noise (coordinator: quantiser room and each device's noise for z) and
                   check_noise (device: validates a plan and returns the z its own noise gives)
    accountant.py  PrivacyAccountant: ε per round and in total, from dp_accounting

The accountant needs the `server` extra (dp-accounting); it is imported on first use, so a
device that only clips and adds noise installs nothing more than numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clipping import clip_update, quantised_sensitivity
from .distributed import NoisePlan, NoisePlanError, check_noise, plan_noise
from .noise import client_noise_scale, discrete_gaussian, gaussian_noise, mean_noise_ratio

if TYPE_CHECKING:
    from .accountant import PrivacyAccountant

__all__ = [
    "NoisePlan",
    "NoisePlanError",
    "PrivacyAccountant",
    "check_noise",
    "client_noise_scale",
    "clip_update",
    "discrete_gaussian",
    "gaussian_noise",
    "mean_noise_ratio",
    "plan_noise",
    "quantised_sensitivity",
]


def __getattr__(name: str) -> Any:
    if name == "PrivacyAccountant":
        from .accountant import PrivacyAccountant

        return PrivacyAccountant
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
