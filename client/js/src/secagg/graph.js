/**
 * The round's neighbour graph: a Harary ring over a seeded permutation (Bell et al. 2020).
 *
 *     if k ≥ n − 1:  every client neighbours every other client
 *     else:          key_c = expand(seed, n)[c]                       for c in 0 … n−1
 *                    ring  = the clients sorted by (key_c, c) ascending
 *                    the client at ring position r neighbours positions r ± 1, …, r ± k/2 (mod n)
 *
 * Every client and the server compute the same lists from the broadcast 32-byte seed. Each list
 * is sorted ascending; the graph is k-regular.
 */

import { isInt, repr } from "./bytes.js";
import { expand } from "./prg.js";

export const MAX_CLIENTS = 0xffff;

export async function neighbours(n, k, seed) {
  if (!isInt(n) || n < 1 || n > MAX_CLIENTS)
    throw new RangeError(`n must be an int in 1..${MAX_CLIENTS}, got ${repr(n)}`);
  if (!isInt(k) || k < 2 || k % 2) {
    throw new RangeError(
      `k must be an even int of at least 2 (k/2 neighbours on each side of the ring), got ${repr(k)}`,
    );
  }
  const keys = await expand(seed, n);
  const clients = Array.from({ length: n }, (_, c) => c);
  if (k >= n - 1) return clients.map((i) => clients.filter((j) => j !== i));
  const ring = clients.slice().sort((a, b) => keys[a] - keys[b] || a - b);
  const position = new Map(ring.map((client, r) => [client, r]));
  const offsets = [];
  for (let d = 1; d <= k / 2; d++) offsets.push(-d, d);
  return clients.map((c) => offsets.map((d) => ring[(((position.get(c) + d) % n) + n) % n]).sort((a, b) => a - b));
}
