import assert from "node:assert/strict";
import { test } from "node:test";

import { ModelRefused, fingerprint, verifyModel } from "../../src/registry/verify.js";
import { hex, loadVector } from "../helpers.js";

const vector = loadVector("registry", "ed25519.json");

test("registry: the golden manifest verifies with the coordinator's key and reads back", async () => {
  const manifest = await verifyModel(
    hex(vector.public_key),
    hex(vector.manifest_json_hex),
    hex(vector.signature),
    hex(vector.model),
  );
  assert.deepEqual(manifest, vector.manifest);
  assert.equal(await fingerprint(hex(vector.public_key)), vector.fingerprint);
});

test("registry: RFC 8032's own Ed25519 vectors verify, and fail with a flipped bit", async () => {
  for (const case_ of vector.rfc8032) {
    const key = await crypto.subtle.importKey("raw", hex(case_.public_key), { name: "Ed25519" }, false, ["verify"]);
    const signature = hex(case_.signature);
    assert.ok(await crypto.subtle.verify({ name: "Ed25519" }, key, signature, hex(case_.message)), case_.name);
    signature[0] ^= 1;
    assert.ok(!(await crypto.subtle.verify({ name: "Ed25519" }, key, signature, hex(case_.message))), case_.name);
  }
});

test("registry: every tampered case of the vector is refused for the reason Python gives", async () => {
  assert.ok(vector.refused.length >= 5);
  for (const case_ of vector.refused) {
    await assert.rejects(
      verifyModel(hex(case_.public_key), hex(case_.manifest_json_hex), hex(case_.signature), hex(case_.model)),
      (error) => error instanceof ModelRefused && error.kind === case_.error,
      case_.name,
    );
  }
});
