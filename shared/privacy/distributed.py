"""Distributed DP under secure aggregation: the numbers a coordinator plans, and what a device checks.

A SecAggPlan with noise carries, besides the quantiser's clip and max_clients (n):

    dp_clip               C    the L2 norm every device clips its update to
    dp_noise_stddev       σ_c  each device's discrete Gaussian scale, in integer units
    dp_min_clients        m    the fewest clients whose sum the coordinator unmasks (min_clients)
    dp_noise_multiplier   z    the multiplier the coordinator states

A device knows its own update's length d, so it can check on its own that its noise alone gives
the stated multiplier over the clients the sum needs, with s = the quantiser's scale (levels/2·clip):

    z_device = σ_c · √m / (C·s + 2√d)      (C·s + 2√d: quantised_sensitivity)

m devices adding σ_c each put noise of σ_c·√m on the sum, z_device times one client's
sensitivity; more reporting clients only add noise. ``check_noise`` validates the numbers, checks
that the noise of n devices fits the quantiser's 32 bits (``Quantizer.tolerates_noise``), and
returns z_device; ``plan_noise`` is the coordinator's side: it widens the quantiser's clip until the
noise fits, and sizes σ_c. Every float it returns is a float32, as the plan carries it, rounded so
that the guarantee only gains (clip and σ_c up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .clipping import quantised_sensitivity
from .noise import MAX_SIGMA, MIN_CLIENT_SIGMA, client_noise_scale

RELATIVE_SLACK = 1e-9  # float64 recomputation of z_device may differ from the coordinator's by a few ulps


class NoisePlanError(ValueError):
    """A plan whose differential-privacy numbers are invalid, inconsistent, or below what is required."""


@dataclass(frozen=True)
class NoisePlan:
    """What the coordinator puts in the SecAggPlan for distributed DP (all floats are float32 values)."""

    clip: float  # the quantiser's range: the task's secagg_clip, widened when the noise needs room
    dp_clip: float
    client_stddev: float
    min_clients: int
    noise_multiplier: float


def plan_noise(
    *, secagg_clip: float, max_clients: int, dp_clip: float, noise_multiplier: float, min_clients: int, dim: int
) -> NoisePlan:
    """The coordinator's plan: the narrowest clip ≥ secagg_clip whose 32 bits hold the noise, and σ_c for it.

    With every coordinate within C (the L2 clip), a sum of n quantised updates lies within
    n·(C·s + 2) of its centre, and n devices' noise within NOISE_TAILS·σ_c·√n; σ_c is
    z·(C·s + 2√d)/√m. Both grow with s = levels/(2·clip), so the largest s whose total fits in
    2^31 (Quantizer.noise_room) is solved for directly, and clip = levels/(2·s).
    """
    from fedge.shared.secagg.quantize import NOISE_TAILS, Quantizer

    _require(_whole(dim) and dim >= 1, f"dim ≥ 1, got {dim!r}")
    _require(_finite(noise_multiplier) and noise_multiplier > 0, f"noise_multiplier > 0, got {noise_multiplier!r}")
    _require(_finite(dp_clip) and dp_clip > 0, f"dp_clip > 0 (noise needs a clip), got {dp_clip!r}")
    base = Quantizer(secagg_clip, max_clients)
    _require(
        _whole(min_clients) and 1 <= min_clients <= max_clients, f"min_clients in 1..{max_clients}, got {min_clients!r}"
    )
    n, m, z = max_clients, int(min_clients), float(noise_multiplier)
    c = _float32(dp_clip)
    bound = c * (1 + 2.0**-20)  # Quantizer.noise_room's allowance for float32 clipping
    tails = NOISE_TAILS * math.sqrt(n / m) * z * (1 + 2.0**-20)  # and for σ_c rounded up to float32
    room = 2.0**31 - 1 - 2 * n - tails * 2 * math.sqrt(dim)
    if room <= 0:
        raise NoisePlanError(f"noise for {dim} coordinates at z = {z} cannot fit 32 bits with {n} clients")
    clip = max(base.clip, base.levels / 2 * (tails * c + n * bound) / room)
    for _ in range(64):  # float rounding only: the solved clip fits, or one nudge makes it
        clip = _float32_up(clip)
        quantizer = Quantizer(clip, n)
        stddev = client_noise_scale(z * quantised_sensitivity(c, quantizer.scale, dim), m)
        stddev = _float32_up(stddev)
        if quantizer.tolerates_noise(stddev, c):
            break
        clip *= 1 + 2.0**-20
    else:  # pragma: no cover - the solution above leaves margin
        raise NoisePlanError(f"found no quantiser range for the noise (clip {clip}, σ_c {stddev})")
    plan = NoisePlan(clip=clip, dp_clip=c, client_stddev=stddev, min_clients=m, noise_multiplier=z)
    check_noise(  # what every device will check: never send a plan they refuse
        clip=plan.clip,
        max_clients=n,
        dp_clip=plan.dp_clip,
        client_stddev=plan.client_stddev,
        min_clients=m,
        noise_multiplier=z,
        dim=dim,
        floor=z,
    )
    return plan


def check_noise(
    *,
    clip: float,
    max_clients: int,
    dp_clip: float,
    client_stddev: float,
    min_clients: int,
    noise_multiplier: float,
    dim: int,
    floor: float = 0.0,
) -> float:
    """A device's check of a plan's DP numbers: the noise multiplier its own noise gives (0.0 with none).

    Raises NoisePlanError, saying why, for numbers that are not finite or negative, noise without
    a clip or below the sampler's 2 units or over its 2^40, a clients count outside 1..max_clients,
    noise that could wrap the sum, a stated multiplier the noise does not give, or a multiplier
    under ``floor`` (the device's minimum; 0: none).
    """
    from fedge.shared.secagg.quantize import Quantizer

    numbers = {"dp_clip": dp_clip, "dp_noise_stddev": client_stddev, "dp_noise_multiplier": noise_multiplier}
    for name, value in numbers.items():
        if not (_finite(value) and value >= 0):
            raise NoisePlanError(f"the plan's {name} must be a finite number ≥ 0, got {value!r}")
    if not (_finite(floor) and floor >= 0):
        raise ValueError(f"the device's floor must be a finite number ≥ 0, got {floor!r}")
    try:
        quantizer = Quantizer(clip, max_clients)
    except ValueError as error:
        raise NoisePlanError(f"the plan's quantiser is invalid: {error}") from None
    if not client_stddev:
        if noise_multiplier:
            raise NoisePlanError(f"the plan states noise multiplier {noise_multiplier} but adds no noise on devices")
        if floor:
            raise NoisePlanError(f"the plan adds no noise on this device; it requires a noise multiplier ≥ {floor}")
        return 0.0
    if not dp_clip:
        raise NoisePlanError("the plan adds noise without a dp_clip: the noise then bounds nothing")
    if not MIN_CLIENT_SIGMA <= client_stddev <= MAX_SIGMA:
        raise NoisePlanError(
            f"the plan's dp_noise_stddev must lie in [{MIN_CLIENT_SIGMA}, 2^40] integer units, got {client_stddev!r}"
        )
    if not (_whole(min_clients) and 1 <= min_clients <= max_clients):
        raise NoisePlanError(f"the plan's dp_min_clients must lie in 1..max_clients={max_clients}, got {min_clients!r}")
    if not (_whole(dim) and dim >= 1):
        raise NoisePlanError(f"noise needs an update of ≥ 1 coordinate, got {dim!r}")
    if not quantizer.tolerates_noise(client_stddev, dp_clip):
        raise NoisePlanError(
            f"the plan leaves no room for the noise: {max_clients} devices at σ_c = {client_stddev:.6g} could wrap "
            f"the 32-bit sum with clip {clip:.6g}, dp_clip {dp_clip:.6g}"
        )
    z = device_multiplier(quantizer, dp_clip, client_stddev, int(min_clients), int(dim))
    if z < noise_multiplier * (1 - RELATIVE_SLACK):
        raise NoisePlanError(
            f"the plan states noise multiplier {noise_multiplier:.6g}, but its noise gives {z:.6g} "
            f"over {min_clients} clients for {dim} coordinates"
        )
    if z < floor * (1 - RELATIVE_SLACK):
        raise NoisePlanError(
            f"the plan's noise gives noise multiplier {z:.6g} over {min_clients} clients; "
            f"this device requires ≥ {floor}"
        )
    return z


def device_multiplier(quantizer, dp_clip: float, client_stddev: float, min_clients: int, dim: int) -> float:
    """z_device = σ_c·√m / quantised_sensitivity(C, s, d): the multiplier m devices' noise gives the sum."""
    return client_stddev * math.sqrt(min_clients) / quantised_sensitivity(dp_clip, quantizer.scale, dim)


def _finite(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _whole(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _require(ok: bool, rule: str) -> None:
    if not ok:
        raise ValueError(f"expected {rule}")


def _float32(value: float) -> float:
    return float(np.float32(value))


def _float32_up(value: float) -> float:
    """The least float32 ≥ value."""
    up = np.float32(value)
    if float(up) < value:
        up = np.nextafter(up, np.float32(np.inf))
    return float(up)
