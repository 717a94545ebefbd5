import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { expand, keystream } from "../../src/secagg/index.js";
import { hex, secaggVector, toHex } from "../helpers.js";

const vector = secaggVector("prg.json");

for (const c of vector.cases) {
  test(`prg: seed ${c.name} gives the vector's keystream and masks`, async () => {
    const seed = hex(c.seed);
    assert.equal(toHex(await keystream(seed, 64)), c.keystream_64);
    assert.deepEqual(Array.from(await expand(seed, 16)), c.first_16);
    const long = await expand(seed, 1_240_000);
    assert.equal(long.length, 1_240_000);
    assert.equal(long[long.length - 1], c.count_1240000_last);
    const littleEndian = new Uint8Array(long.length * 4);
    new Uint32Array(littleEndian.buffer).set(long); // the vector hashes little-endian bytes
    assert.equal(createHash("sha256").update(littleEndian).digest("hex"), c.count_1240000_sha256);
  });
}

test("prg: a shorter expansion is a prefix of a longer one", async () => {
  const seed = hex(vector.cases[2].seed);
  assert.deepEqual(Array.from(await expand(seed, 5)), Array.from((await expand(seed, 9)).subarray(0, 5)));
  assert.equal((await expand(seed, 0)).length, 0);
});

test("prg: wrong seeds and counts are refused with the rule", async () => {
  await assert.rejects(expand(new Uint8Array(16), 4), /a PRG seed must be exactly 32 bytes, got 16/);
  await assert.rejects(expand("seed", 4), /a PRG seed must be 32 bytes \(a Uint8Array\), got string/);
  await assert.rejects(expand(new Uint8Array(32), -1), /count must be a non-negative int/);
  await assert.rejects(expand(new Uint8Array(32), 1.5), /count must be a non-negative int/);
});
