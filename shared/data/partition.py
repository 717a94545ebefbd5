"""Splitting one dataset into simulated clients, each a sorted int64 index array.

Schemes, as written on the command line::

    iid              shuffle, then equal shares
    dirichlet:ALPHA  label skew: each class spread over clients by proportions ~ Dir(ALPHA);
                     small ALPHA (0.1) gives clients few classes, large (100) is close to iid
    natural          one client per group (the subject who recorded the data)
"""

from __future__ import annotations

import math

import numpy as np

from .dataset import Dataset

SCHEMES = ("iid", "dirichlet:<alpha>", "natural")
MIN_SIZE = 10  # samples a Dirichlet client must get, when the dataset is large enough
MAX_DRAWS = 1000


def partition(dataset: Dataset, scheme: str, clients: int | None, seed: int) -> list[np.ndarray]:
    """Index arrays for `clients` clients (None for `natural`, which has one per group)."""
    kind, alpha = _parse(scheme)
    if kind == "natural":
        return _natural_for(dataset, clients)
    if clients is None:
        raise ValueError(f"expected a number of clients for scheme {scheme!r}, got None")
    _check_clients(clients, len(dataset))
    rng = np.random.default_rng(seed)
    if alpha is None:
        return iid(len(dataset), clients, rng)
    floor = max(1, min(MIN_SIZE, len(dataset) // (2 * clients)))  # reachable on small sets
    return dirichlet(dataset.y, clients, alpha, rng, min_size=floor)


def iid(n_samples: int, clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Equal shares (sizes differ by at most one) of a random permutation."""
    _check_clients(clients, n_samples)
    shares = np.array_split(rng.permutation(n_samples).astype(np.int64), clients)
    return [np.sort(share) for share in shares]


def dirichlet(
    y: np.ndarray,
    clients: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = MIN_SIZE,
) -> list[np.ndarray]:
    """Label skew (Hsu et al. 2019): per class, client proportions ~ Dir(alpha); redrawn
    until every client holds at least `min_size` samples."""
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"expected dirichlet alpha > 0, got {alpha}")
    _check_clients(clients, len(y))
    if min_size * clients > len(y):
        raise ValueError(f"expected min_size × clients <= {len(y)} samples, got {min_size} × {clients}")
    for _ in range(MAX_DRAWS):
        shares = _dirichlet_draw(y, clients, alpha, rng)
        if min(len(share) for share in shares) >= min_size:
            return shares
    raise ValueError(
        f"no Dirichlet({alpha}) draw in {MAX_DRAWS} gave every one of {clients} clients "
        f"{min_size} samples: raise alpha or lower min_size"
    )


def natural(groups: np.ndarray) -> list[np.ndarray]:
    """One client per distinct group, in sorted group order."""
    return [np.flatnonzero(groups == group).astype(np.int64) for group in np.unique(groups)]


def _dirichlet_draw(y: np.ndarray, clients: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    shares: list[list[np.ndarray]] = [[] for _ in range(clients)]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        proportions = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(proportions)[:-1] * len(members)).astype(np.int64)
        for share, piece in zip(shares, np.split(members, cuts), strict=True):
            share.append(piece)
    return [np.sort(np.concatenate(share)).astype(np.int64) for share in shares]


def _natural_for(dataset: Dataset, clients: int | None) -> list[np.ndarray]:
    if dataset.groups is None:
        raise ValueError(
            f"expected a dataset with groups for scheme 'natural', got {dataset.name!r} "
            "without: use 'iid' or 'dirichlet:<alpha>'"
        )
    shares = natural(dataset.groups)
    if clients is not None and clients != len(shares):
        raise ValueError(
            f"expected clients={len(shares)} for scheme 'natural' on {dataset.name!r} "
            f"(one per group), got clients={clients}"
        )
    return shares


def _parse(scheme: str) -> tuple[str, float | None]:
    """The scheme's kind and, for Dirichlet, its alpha."""
    if scheme in ("iid", "natural"):
        return scheme, None
    kind, colon, argument = scheme.partition(":")
    if kind != "dirichlet" or not colon:
        raise ValueError(f"expected a scheme among {', '.join(SCHEMES)}, got {scheme!r}")
    try:
        return kind, float(argument)
    except ValueError:
        raise ValueError(f"expected a number after 'dirichlet:', e.g. 'dirichlet:0.5', got {argument!r}") from None


def _check_clients(clients: int, n_samples: int) -> None:
    if not 1 <= clients <= n_samples:
        raise ValueError(f"expected between 1 and {n_samples} clients for {n_samples} samples, got {clients}")
