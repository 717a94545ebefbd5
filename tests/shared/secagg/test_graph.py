from __future__ import annotations

import re

import pytest

from fedge.shared.secagg.graph import neighbours
from fedge.shared.secagg.prg import expand


def test_graphs_replay_the_vectors(vector):
    for case in vector("graph.json")["cases"]:
        seed = bytes.fromhex(case["seed"])
        assert expand(seed, case["n"]).tolist() == case["keys"]
        assert sorted(range(case["n"]), key=lambda c: (case["keys"][c], c)) == case["ring"]
        assert neighbours(case["n"], case["k"], seed) == case["neighbours"]


@pytest.mark.parametrize(("n", "k"), [(10, 4), (11, 6), (100, 28), (1000, 40), (3, 2)])
def test_graph_is_k_regular_and_symmetric(n, k):
    graph = neighbours(n, k, bytes(range(32)))
    degree = min(k, n - 1)
    for i, peers in enumerate(graph):
        assert len(peers) == degree and i not in peers and peers == sorted(peers)
        assert all(i in graph[j] for j in peers)


def test_k_of_at_least_n_minus_one_gives_the_complete_graph():
    assert neighbours(4, 4, bytes(32)) == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]


def test_different_seeds_give_different_graphs():
    assert neighbours(50, 6, bytes(32)) != neighbours(50, 6, bytes(31) + b"\x01")


@pytest.mark.parametrize("k", [3, 0, -2])
def test_odd_or_small_k_is_refused_with_the_rule(k):
    with pytest.raises(ValueError, match="k must be an even int of at least 2"):
        neighbours(10, k, bytes(32))


@pytest.mark.parametrize("n", [0, 65536])
def test_cohort_size_out_of_range_is_refused(n):
    with pytest.raises(ValueError, match=re.escape("n must be an int in 1..65535")):
        neighbours(n, 2, bytes(32))


def test_short_seed_is_refused():
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        neighbours(10, 4, bytes(16))
