import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DuplicateShare,
  NotEnoughShares,
  P,
  ReconstructionError,
  Share,
  combine,
  lagrangeAtZero,
  split,
} from "../../src/secagg/index.js";
import { bigIntToBytes } from "../../src/secagg/bytes.js";
import { hex, keystreamRng, secaggVector, toHex } from "../helpers.js";

const vector = secaggVector("shamir.json");
const fromBytes = (h) => Share.fromBytes(hex(h));

test("shamir: the field is the vector's prime 2^521 - 1", () => {
  assert.equal(P.toString(16), vector.prime_hex);
});

vector.splits.forEach((s, n) => {
  test(`shamir: split ${n} (t=${s.threshold}, xs ${s.xs}) gives the vector's shares`, async () => {
    const rng = await keystreamRng(hex(s.rng_seed), 66 * (s.threshold - 1));
    const shares = split(hex(s.secret), s.threshold, s.xs, rng);
    assert.deepEqual(
      shares.map((sh) => toHex(sh.toBytes())),
      s.shares,
    );
    assert.deepEqual(
      shares.map((sh) => sh.x),
      s.xs,
    );
  });

  test(`shamir: split ${n}: every listed subset gives the secret back, with the vector's weights`, () => {
    for (const c of s.combinations) {
      const shares = c.shares.map(fromBytes);
      assert.equal(toHex(combine(shares, s.threshold)), c.secret);
      if (c.lagrange) {
        const weights = lagrangeAtZero(shares.map((sh) => sh.x));
        assert.deepEqual(
          weights.map((w) => toHex(bigIntToBytes(w, 66))),
          c.lagrange,
        );
      }
    }
  });

  test(`shamir: split ${n}: fewer shares than the threshold are refused`, () => {
    assert.throws(() => combine(s.too_few.map(fromBytes), s.threshold), NotEnoughShares);
  });
});

test("shamir: the coefficients are the keystream's 66-byte draws masked to 521 bits", async () => {
  const s = vector.splits[0];
  const rng = await keystreamRng(hex(s.rng_seed), 66 * (s.threshold - 1));
  const drawn = s.coefficients.map(() => toHex(bigIntToBytes(BigInt(`0x${toHex(rng(66))}`) & P, 66)));
  assert.deepEqual(drawn, s.coefficients);
});

test("shamir: a repeated x is refused, and corrupt shares do not pass as a secret", () => {
  const shares = vector.splits[0].shares.map(fromBytes);
  assert.throws(() => combine([shares[0], shares[0], shares[1]], 3), DuplicateShare);
  const corrupt = new Share(shares[0].x, (shares[0].y + 2n ** 300n) % P);
  assert.throws(() => combine([corrupt, shares[1], shares[2]], 3), ReconstructionError);
});

test("shamir: malformed inputs are refused with the rule", () => {
  const secret = new Uint8Array(32);
  assert.throws(() => split(new Uint8Array(31), 2, [1, 2]), /a secret must be exactly 32 bytes, got 31 bytes/);
  assert.throws(() => split(secret, 1, [1, 2]), /threshold must be an int of at least 2, got 1/);
  assert.throws(() => split(secret, 3, [1, 2]), /need at least threshold=3 xs, got 2/);
  assert.throws(() => split(secret, 2, [1, 1]), /the xs must be distinct/);
  assert.throws(() => split(secret, 2, [0, 1]), /x must be an int in 1..65535, got 0/);
  assert.throws(
    () => split(secret, 2, [1, 2], () => new Uint8Array(65)),
    /rng\(66\) must return 66 bytes, got 65 bytes/,
  );
  assert.throws(() => Share.fromBytes(new Uint8Array(67)), /an encoded share is 68 bytes .*, got 67 bytes/);
  assert.throws(() => new Share(1, P), /y must be a BigInt in 0..2\^521-2/);
  assert.throws(() => combine(["share"], 2), /expected Share objects, got string/);
});

test("shamir: shares drawn from the OS recombine", () => {
  const secret = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const shares = split(secret, 4, [9, 3, 7, 12, 30]);
  assert.equal(toHex(combine(shares.slice(1), 4)), toHex(secret));
  assert.equal(toHex(combine([shares[4], shares[0], shares[2], shares[1]], 4)), toHex(secret));
});
