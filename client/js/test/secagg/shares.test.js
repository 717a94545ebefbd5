import assert from "node:assert/strict";
import { test } from "node:test";

import {
  PrivateKey,
  RevealRefused,
  Share,
  ShareBundle,
  ShareDecryptionError,
  agree,
  decryptBundle,
  encryptBundle,
  nonce,
  reveal,
  shareKey,
} from "../../src/secagg/index.js";
import { hex, secaggVector, toHex } from "../helpers.js";

const vector = secaggVector("shares.json");
const bundle = () =>
  new ShareBundle(
    vector.sender,
    vector.receiver,
    Share.fromBytes(hex(vector.s_share)),
    Share.fromBytes(hex(vector.b_share)),
  );

test("shares: the pair's secret and key are the vector's", async () => {
  const sender = await PrivateKey.fromBytes(hex(vector.sender_c_private));
  const receiver = await PrivateKey.fromBytes(hex(vector.receiver_c_private));
  const secret = await agree(sender, receiver.publicKey());
  assert.equal(toHex(secret), vector.shared_secret);
  assert.equal(toHex(await shareKey(secret, vector.round_id, vector.sender, vector.receiver)), vector.key);
});

test("shares: a bundle seals to the vector's plaintext and ciphertext, and opens again", async () => {
  assert.equal(toHex(nonce(vector.round_id, vector.sender, vector.receiver)), vector.nonce);
  assert.equal(vector.aad, vector.nonce);
  assert.equal(toHex(bundle().toBytes()), vector.plaintext);
  const sealed = await encryptBundle(hex(vector.key), vector.round_id, bundle());
  assert.equal(toHex(sealed), vector.ciphertext);
  const opened = await decryptBundle(hex(vector.key), vector.round_id, vector.sender, vector.receiver, sealed);
  assert.equal(toHex(opened.toBytes()), vector.plaintext);
  assert.equal(toHex(ShareBundle.fromBytes(hex(vector.plaintext)).toBytes()), vector.plaintext);
});

for (const refused of vector.refused) {
  test(`shares: a bundle ${refused.why} does not open`, async () => {
    const opening = decryptBundle(
      hex(vector.key),
      refused.round_id,
      refused.sender,
      refused.receiver,
      hex(refused.ciphertext),
    );
    await assert.rejects(opening, ShareDecryptionError);
  });
}

test("shares: malformed bundles and keys are refused with the rule", async () => {
  const s = Share.fromBytes(hex(vector.s_share));
  assert.throws(() => new ShareBundle(5, 5, s, s), /sender = receiver = 5/);
  assert.throws(() => new ShareBundle(2, 4, s, s), /sShare.x must be receiver \+ 1 = 5, got 6/);
  assert.throws(() => new ShareBundle(2, 5, s, "b"), /bShare must be a Share, got string/);
  assert.throws(() => ShareBundle.fromBytes(new Uint8Array(139)), /a share bundle is 140 bytes, got 139 bytes/);
  await assert.rejects(encryptBundle(new Uint8Array(16), 7, bundle()), /exactly 32 bytes \(AES-256\), got 16 bytes/);
  await assert.rejects(
    decryptBundle(hex(vector.key), 7, 2, 5, new Uint8Array(155)),
    /a sealed bundle is 156 bytes, got 155 bytes/,
  );
  await assert.rejects(decryptBundle(hex(vector.key), 7, 2, 5, new Uint8Array(155)), ShareDecryptionError);
});

test("shares: reveal answers b for survivors, s_sk for the dropped, and never both", () => {
  const b = bundle();
  const bundles = new Map([[2, b]]);
  const [bShares, sShares] = reveal(bundles, [2], []);
  assert.equal(bShares.get(2), b.bShare);
  assert.equal(sShares.size, 0);
  assert.equal(reveal(bundles, [], [2])[1].get(2), b.sShare);
  assert.throws(() => reveal(bundles, [2], [2]), RevealRefused);
  assert.throws(() => reveal(bundles, [3], []), /expected only neighbours that sent this client shares, got \[3\]/);
});
