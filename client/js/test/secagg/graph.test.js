import assert from "node:assert/strict";
import { test } from "node:test";

import { expand, neighbours } from "../../src/secagg/index.js";
import { hex, secaggVector } from "../helpers.js";

for (const c of secaggVector("graph.json").cases) {
  test(`graph: n=${c.n}, k=${c.k} gives the vector's keys, ring and neighbours`, async () => {
    const keys = Array.from(await expand(hex(c.seed), c.n));
    assert.deepEqual(keys, c.keys);
    const ring = keys.map((_, i) => i).sort((a, b) => keys[a] - keys[b] || a - b);
    assert.deepEqual(ring, c.ring);
    const graph = await neighbours(c.n, c.k, hex(c.seed));
    assert.deepEqual(graph, c.neighbours);
    const degree = Math.min(c.k, c.n - 1);
    graph.forEach((list, i) => {
      assert.equal(list.length, degree, "k-regular");
      list.forEach((j) => assert.ok(graph[j].includes(i), "symmetric"));
    });
  });
}

test("graph: malformed parameters are refused with the rule", async () => {
  const seed = new Uint8Array(32);
  await assert.rejects(neighbours(0, 2, seed), /n must be an int in 1..65535, got 0/);
  await assert.rejects(neighbours(10, 3, seed), /k must be an even int of at least 2 .*, got 3/);
  await assert.rejects(neighbours(10, 4, new Uint8Array(8)), /a PRG seed must be exactly 32 bytes, got 8/);
});
