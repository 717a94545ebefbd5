import assert from "node:assert/strict";
import { test } from "node:test";

import { SALT, derive, info, pairwiseSeed, shareKey, PAIRWISE_MASK, SHARE_ENCRYPTION } from "../../src/secagg/index.js";
import { hex, secaggVector, toHex } from "../helpers.js";

const vector = secaggVector("kdf.json");

test("kdf: the salt is the vector's", () => {
  assert.equal(toHex(SALT), vector.salt);
});

for (const c of vector.cases) {
  test(`kdf: ${c.label} round ${c.round_id} pair (${c.i}, ${c.j}) gives the vector's info and key`, async () => {
    const secret = hex(vector.shared_secret);
    assert.equal(toHex(info(c.label, c.round_id, c.i, c.j)), c.info);
    assert.equal(toHex(await derive(secret, c.label, c.round_id, c.i, c.j)), c.okm);
    assert.equal(toHex(await derive(secret, c.label, BigInt(c.round_id), c.j, c.i)), c.okm, "both ends agree");
    const named = c.label === SHARE_ENCRYPTION ? shareKey : pairwiseSeed;
    assert.equal(toHex(await named(secret, c.round_id, c.i, c.j)), c.okm);
  });
}

test("kdf: malformed inputs are refused with the rule", async () => {
  const secret = hex(vector.shared_secret);
  assert.throws(() => info("fedge/other", 1, 0, 1), /label must be one of/);
  assert.throws(() => info(PAIRWISE_MASK, 1, 3, 3), /two different clients, got 3 twice/);
  assert.throws(() => info(PAIRWISE_MASK, -1, 0, 1), /roundId must be in 0..2\^64-1, got -1/);
  assert.throws(() => info(PAIRWISE_MASK, 2n ** 64n, 0, 1), /roundId must be in 0..2\^64-1/);
  assert.throws(() => info(PAIRWISE_MASK, "7", 0, 1), /roundId must be an int in 0..2\^64-1, got string/);
  assert.throws(() => info(PAIRWISE_MASK, 1, 0, 65535), /j must be in 0..65534, got 65535/);
  await assert.rejects(
    derive(secret.subarray(1), PAIRWISE_MASK, 1, 0, 1),
    /the shared secret must be exactly 32 bytes, got 31/,
  );
});
