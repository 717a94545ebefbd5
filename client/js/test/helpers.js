/** What every test reads: the golden vectors shared with the Python suite, and hex. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { fromHex, keystream, toHex } from "../src/secagg/index.js";

export const REPO = fileURLToPath(new URL("../../../", import.meta.url));

export function loadVector(folder, name) {
  return JSON.parse(readFileSync(`${REPO}tests/vectors/${folder}/${name}`, "utf8"));
}

export const secaggVector = (name) => loadVector("secagg", name);
export const hex = fromHex;
export { toHex };

/**
 * The vectors' KeystreamRng (tests/vectors/secagg/generate.py): `rng(n)` reads the AES-CTR
 * keystream of `seed` in order. WebCrypto is async and split() wants a synchronous rng, so the
 * first `nbytes` are drawn up front; reading past them fails the test.
 */
export async function keystreamRng(seed, nbytes) {
  const stream = await keystream(seed, nbytes);
  let offset = 0;
  return (n) => {
    if (offset + n > stream.length) throw new Error(`keystreamRng: ${nbytes} bytes drawn, asked for more`);
    offset += n;
    return stream.slice(offset - n, offset);
  };
}

export const engineVector = (model) => loadVector("engine", `${model}.json`);
export const ENGINE_MODELS = ["mlp", "har-cnn1d", "digits-cnn", "squeezenet-mini"];

/** A base64 string of little-endian float32 (the engine fixtures' tensors) as a Float32Array. */
export function float32(base64) {
  const bytes = Buffer.from(base64, "base64");
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** The largest |a[i] − b[i]| over two lists of arrays of equal shapes. */
export function maxAbsDiff(as, bs) {
  assert.equal(as.length, bs.length, "as many tensors");
  let worst = 0;
  as.forEach((a, i) => {
    assert.equal(a.length, bs[i].length, `tensor ${i}: as many values`);
    a.forEach((v, m) => (worst = Math.max(worst, Math.abs(v - bs[i][m]))));
  });
  return worst;
}
