"""A small synthetic IMU set for fast tests: learnable in a few epochs, non-IID by subject.

Each window is, per channel c, ``gain[s, c] * amplitude[k, c] * sin(2π f[k, c] t + phase)
+ offset[s, c] + noise`` for class k and subject s. Within a channel every class has its own
frequency, so a small CNN separates them quickly; every subject distorts the signal with
its own gain and offset, so per-subject ("natural") clients see shifted inputs. The last
`heldout` fraction of each subject's windows of each class is held out, as in `watch`.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, Splits
from .normalisation import normalise, standardisation

NAME = "synthetic-imu"
CYCLES_APART = 1.5  # frequency gap between classes, in cycles per window
JITTER = 0.05  # per-window relative frequency jitter, below half the gap
NOISE = 0.3


def synthetic_imu(
    subjects: int = 4,
    windows_per_class: int = 30,
    classes: int = 4,
    window: int = 50,
    channels: int = 6,
    heldout: float = 0.2,
    seed: int = 0,
) -> Splits:
    """`windows_per_class` windows per subject and class; the same seed gives the same data."""
    held_per_cell = _check_options(subjects, windows_per_class, classes, window, channels, heldout)
    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat(np.arange(classes, dtype=np.int64), windows_per_class), subjects)
    groups = np.repeat(np.arange(subjects, dtype=np.int64), classes * windows_per_class)
    x = _record(rng, y, groups, window, channels)
    position = np.tile(np.arange(windows_per_class), classes * subjects)  # time within a cell
    return _splits(x, y, groups, held=position >= windows_per_class - held_per_cell)


def _record(rng: np.random.Generator, y: np.ndarray, groups: np.ndarray, window: int, channels: int) -> np.ndarray:
    """Class waves, distorted by each subject's gain and offset, plus sensor noise."""
    frequency, amplitude = _class_signatures(rng, int(y.max()) + 1, channels)
    gain = rng.uniform(0.7, 1.3, (int(groups.max()) + 1, channels))
    offset = rng.normal(0.0, 0.5, gain.shape)
    waves = _waves(rng, frequency[y], amplitude[y], window)
    x = gain[groups][:, None, :] * waves + offset[groups][:, None, :]
    return x + rng.normal(0.0, NOISE, x.shape)


def _class_signatures(rng: np.random.Generator, classes: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the classes take distinct frequencies in a random order."""
    grid = 1.0 + CYCLES_APART * np.arange(classes)
    frequency = np.stack([rng.permutation(grid) for _ in range(channels)], axis=1)
    return frequency, rng.uniform(0.5, 1.5, (classes, channels))


def _waves(rng: np.random.Generator, frequency: np.ndarray, amplitude: np.ndarray, window: int) -> np.ndarray:
    """(N, window, channels) sinusoids with a random phase and a slight frequency jitter."""
    n, channels = frequency.shape
    t = np.arange(window)[None, :, None] / window
    cycles = frequency * rng.uniform(1 - JITTER, 1 + JITTER, (n, channels))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1, channels))
    return amplitude[:, None, :] * np.sin(2 * np.pi * cycles[:, None, :] * t + phase)


def _splits(x: np.ndarray, y: np.ndarray, groups: np.ndarray, held: np.ndarray) -> Splits:
    stats = standardisation(x[~held], [f"ch{c}" for c in range(x.shape[-1])])
    labels = tuple(f"motion-{k}" for k in range(int(y.max()) + 1))

    def part(mask: np.ndarray) -> Dataset:
        return Dataset(NAME, normalise(x[mask], stats), y[mask], labels, groups[mask])

    return Splits(part(~held), part(held), stats)


def _check_options(
    subjects: int, windows_per_class: int, classes: int, window: int, channels: int, heldout: float
) -> int:
    """The number of held-out windows per subject and class, at least one of each kind."""
    if subjects < 1 or channels < 1 or classes < 2:
        raise ValueError(f"expected subjects >= 1, channels >= 1, classes >= 2, got {subjects}, {channels}, {classes}")
    top = (1.0 + CYCLES_APART * (classes - 1)) * (1 + JITTER)  # highest frequency, in cycles
    if window <= 2 * top:
        raise ValueError(f"expected window > {2 * top:g} samples to resolve {classes} classes, got {window}")
    if not 0.0 < heldout < 1.0:
        raise ValueError(f"expected heldout in (0, 1), got {heldout}")
    held = round(windows_per_class * heldout)
    if not 0 < held < windows_per_class:
        raise ValueError(
            f"expected windows_per_class × heldout to leave windows on both sides, got {windows_per_class} × {heldout}"
        )
    return held
