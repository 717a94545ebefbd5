import assert from "node:assert/strict";
import { test } from "node:test";

import { mask, removePairMasks, removeSelfMasks, sign } from "../../src/secagg/index.js";
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
