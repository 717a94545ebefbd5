import assert from "node:assert/strict";
import { test } from "node:test";

import { expand, mask, removePairMasks, removeSelfMasks, sign } from "../../src/secagg/index.js";
import { SEGMENT } from "../../src/secagg/prg.js";
import { hex, secaggVector } from "../helpers.js";

const vector = secaggVector("masking.json");
const pairs = vector.pair_seeds.map((p) => [hex(p.seed), p.sign]);

test("masking: values masked with a self seed and two signed pair seeds give the vector", async () => {
  const values = Uint32Array.from(vector.values);
  const masked = await mask(values, hex(vector.self_seed), pairs);
  assert.deepEqual(Array.from(masked), vector.masked);
  assert.deepEqual(Array.from(values), vector.values, "the input is not modified");
  const withoutSelf = await removeSelfMasks(masked, [hex(vector.self_seed)]);
  assert.deepEqual(Array.from(withoutSelf), vector.without_self_mask);
  assert.deepEqual(Array.from(await removePairMasks(withoutSelf, pairs)), vector.without_any_mask);
});

test("masking: the sign is +1 towards a higher index", () => {
  assert.equal(sign(0, 3), 1);
  assert.equal(sign(2, 1), -1);
  assert.throws(() => sign(4, 4), /two different clients, got 4 twice/);
});

test("masking: malformed inputs are refused with the rule", async () => {
  const seed = hex(vector.self_seed);
  await assert.rejects(mask([1, 2], seed, []), /values must be a Uint32Array, got Array/);
  await assert.rejects(mask(new Uint32Array(2), seed, [[seed, 2]]), /sign must be \+1 or -1, got 2/);
  await assert.rejects(removeSelfMasks(new Int32Array(2), [seed]), /total must be a Uint32Array, got Int32Array/);
});

test("masking: many masks, expanded several at a time, add up as one at a time would", async () => {
  const size = 2 * SEGMENT + 5; // three keystream segments
  const seeds = Array.from({ length: 9 }, (_, i) => new Uint8Array(32).fill(i + 1));
  const values = Uint32Array.from({ length: size }, (_, m) => (m * 2654435761) >>> 0);
  const expected = values.slice();
  for (const [i, seed] of seeds.entries()) {
    const stream = await expand(seed, size);
    for (let m = 0; m < size; m++) expected[m] += i === 0 || i % 2 ? stream[m] : -stream[m];
  }
  const pairs = seeds.slice(1).map((seed, i) => [seed, (i + 1) % 2 ? 1 : -1]);
  assert.deepEqual(await mask(values, seeds[0], pairs), expected);
  const unmasked = await removePairMasks(await removeSelfMasks(expected, [seeds[0]]), pairs);
  assert.deepEqual(unmasked, values);
});

test("masking: a malformed seed is refused before any mask is added", async () => {
  const seed = new Uint8Array(32);
  await assert.rejects(mask(new Uint32Array(4), seed, [[seed, 1], [new Uint8Array(31), -1]]), /exactly 32 bytes, got 31/);
});
