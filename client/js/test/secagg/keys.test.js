import assert from "node:assert/strict";
import { test } from "node:test";

import { KeyAgreementError, PrivateKey, PublicKey, agree } from "../../src/secagg/index.js";
import { hex, secaggVector, toHex } from "../helpers.js";

const vector = secaggVector("keys.json");

for (const pair of vector.agreements) {
  test(`keys: ${pair.name} public keys and shared secret match the vector`, async () => {
    const a = await PrivateKey.fromBytes(hex(pair.private_a));
    const b = await PrivateKey.fromBytes(hex(pair.private_b));
    assert.equal(toHex(a.privateBytes()), pair.private_a);
    assert.equal(toHex(a.publicBytes()), pair.public_a);
    assert.equal(toHex(b.publicBytes()), pair.public_b);
    assert.equal(toHex(await agree(a, await PublicKey.fromBytes(hex(pair.public_b)))), pair.shared_secret);
    assert.equal(toHex(await agree(b, a.publicKey())), pair.shared_secret);
  });
}

for (const refused of vector.refused_peers) {
  test(`keys: agreement with a low-order peer is refused (${refused.why})`, async () => {
    const a = await PrivateKey.fromBytes(hex(refused.private));
    const peer = await PublicKey.fromBytes(hex(refused.peer_public));
    await assert.rejects(agree(a, peer), KeyAgreementError);
  });
}

test("keys: a generated key round-trips through its raw bytes", async () => {
  const key = await PrivateKey.generate();
  const again = await PrivateKey.fromBytes(key.privateBytes());
  assert.equal(toHex(again.publicBytes()), toHex(key.publicBytes()));
  assert.ok(key.publicKey().equals(again.publicKey()));
  assert.ok(!String(key).includes(toHex(key.privateBytes())), "a private key never prints its secret");
});

test("keys: wrong lengths and types are refused with the rule", async () => {
  await assert.rejects(PrivateKey.fromBytes(new Uint8Array(31)), /must be exactly 32 bytes, got 31/);
  await assert.rejects(PublicKey.fromBytes("00".repeat(32)), /must be 32 bytes \(a Uint8Array\), got string/);
  const key = await PrivateKey.generate();
  await assert.rejects(agree(key, key), /peerPublic must be a PublicKey, got PrivateKey/);
});
