from __future__ import annotations

import numpy as np
import pytest

from fedge.shared.data import Dataset, partition
from fedge.shared.data.partition import dirichlet, iid, natural


def dataset(n: int = 1000, classes: int = 10, groups: np.ndarray | None = None) -> Dataset:
    """n one-number samples, the classes in equal blocks."""
    y = np.repeat(np.arange(classes, dtype=np.int64), n // classes)
    labels = tuple(str(k) for k in range(classes))
    return Dataset("toy", np.zeros((n, 1), np.float32), y, labels, groups)


def majority_share(y: np.ndarray, shares: list[np.ndarray]) -> float:
    """How much of a client's data its commonest class is, averaged over clients."""
    return float(np.mean([np.bincount(y[share]).max() / len(share) for share in shares]))


def assert_disjoint_cover(shares: list[np.ndarray], n: int) -> None:
    every = np.concatenate(shares)
    assert np.array_equal(np.sort(every), np.arange(n))
    assert all(share.dtype == np.int64 and np.all(np.diff(share) > 0) for share in shares)


def test_iid_shares_are_disjoint_sorted_and_differ_in_size_by_at_most_one() -> None:
    shares = iid(10, 3, np.random.default_rng(0))

    assert [len(share) for share in shares] == [4, 3, 3]
    assert_disjoint_cover(shares, 10)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet:0.5", "dirichlet:0.05"])
def test_every_scheme_splits_all_samples_into_disjoint_sorted_shares(scheme: str) -> None:
    shares = partition(dataset(), scheme, clients=8, seed=0)

    assert len(shares) == 8
    assert_disjoint_cover(shares, 1000)


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    toy = dataset()

    skewed = majority_share(toy.y, partition(toy, "dirichlet:0.1", clients=10, seed=0))
    balanced = majority_share(toy.y, partition(toy, "dirichlet:100", clients=10, seed=0))

    assert skewed > 0.5  # most of a client's data is one class
    assert balanced < 0.2  # close to the 0.1 of perfectly mixed clients


def test_dirichlet_gives_every_client_at_least_min_size_samples() -> None:
    y = dataset().y

    shares = dirichlet(y, clients=10, alpha=0.05, rng=np.random.default_rng(0), min_size=20)

    assert min(len(share) for share in shares) >= 20


def test_same_seed_gives_the_same_partition_and_another_seed_does_not() -> None:
    toy = dataset()

    first, again = (partition(toy, "dirichlet:0.5", clients=5, seed=3) for _ in range(2))
    other = partition(toy, "dirichlet:0.5", clients=5, seed=4)

    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_natural_gives_one_client_per_group_in_sorted_group_order() -> None:
    shares = natural(np.array([2, 0, 2, 1], np.int64))

    assert [share.tolist() for share in shares] == [[1], [3], [0, 2]]


def test_natural_scheme_accepts_the_matching_number_of_clients() -> None:
    toy = dataset(4, classes=2, groups=np.array([2, 0, 2, 1], np.int64))

    assert len(partition(toy, "natural", clients=3, seed=0)) == 3


@pytest.mark.parametrize(
    ("scheme", "clients", "message"),
    [
        ("dirichlet", 4, "expected a scheme among iid, dirichlet:<alpha>, natural, got 'dirichlet'"),
        ("shards:2", 4, "expected a scheme among iid, dirichlet:<alpha>, natural, got 'shards:2'"),
        ("dirichlet:0", 4, "expected dirichlet alpha > 0, got 0.0"),
        ("dirichlet:-1", 4, "expected dirichlet alpha > 0, got -1.0"),
        ("dirichlet:nan", 4, "expected dirichlet alpha > 0, got nan"),
        ("dirichlet:high", 4, "expected a number after 'dirichlet:', e.g. 'dirichlet:0.5', got 'high'"),
        ("iid", None, "expected a number of clients for scheme 'iid', got None"),
        ("iid", 11, "expected between 1 and 10 clients for 10 samples, got 11"),
        ("dirichlet:1", 0, "expected between 1 and 10 clients for 10 samples, got 0"),
        ("natural", 2, "expected a dataset with groups for scheme 'natural', got 'toy' without"),
    ],
)
def test_bad_partition_requests_are_rejected(scheme: str, clients: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        partition(dataset(10, classes=2), scheme, clients=clients, seed=0)


def test_natural_with_another_number_of_clients_names_both_numbers() -> None:
    toy = dataset(4, classes=2, groups=np.array([2, 0, 2, 1], np.int64))

    with pytest.raises(ValueError, match=r"expected clients=3 .*one per group\), got clients=5"):
        partition(toy, "natural", clients=5, seed=0)


def test_dirichlet_min_size_beyond_the_data_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected min_size × clients <= 10 samples, got 5 × 3"):
        dirichlet(dataset(10, classes=2).y, clients=3, alpha=1.0, rng=np.random.default_rng(0), min_size=5)
