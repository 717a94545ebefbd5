"""The round's neighbour graph: a Harary ring over a seeded permutation (Bell et al. 2020).

    if k ≥ n − 1:  every client neighbours every other client
    else:          key_c   = prg.expand(seed, n)[c]                     for c in 0 … n−1
                   ring    = the clients sorted by (key_c, c) ascending
                   client at ring position r neighbours the clients at positions r ± 1, …, r ± k/2 (mod n)

The server draws the 32-byte seed for each round and sends it with the keys; every client and the
server compute the same lists. Each list is sorted ascending; the graph is k-regular.
"""

from __future__ import annotations

from fedge.shared.secagg.prg import expand

MAX_CLIENTS = 0xFFFF


def neighbours(n: int, k: int, seed: bytes) -> list[list[int]]:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CLIENTS:
        raise ValueError(f"n must be an int in 1..{MAX_CLIENTS}, got {n!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k % 2:
        raise ValueError(f"k must be an even int of at least 2 (k/2 neighbours on each side of the ring), got {k!r}")
    keys = expand(seed, n).tolist()
    if k >= n - 1:
        return [[j for j in range(n) if j != i] for i in range(n)]
    ring = sorted(range(n), key=lambda c: (keys[c], c))
    position = {client: r for r, client in enumerate(ring)}
    half = k // 2
    return [sorted(ring[(position[c] + d) % n] for d in [*range(-half, 0), *range(1, half + 1)]) for c in range(n)]
