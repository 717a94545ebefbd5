/**
 * Mask expansion: the AES-256-CTR keystream of a 32-byte seed, read as little-endian uint32.
 *
 *     keystream(seed, n) = AES-256-CTR(key = seed, counter block = 16 zero bytes).encrypt(n zero bytes)
 *     expand(seed, c)[m] = uint32 little-endian of keystream bytes 4m … 4m+3
 *
 * The counter is the whole 128-bit block (length 128), as OpenSSL and `cryptography` count.
 * A shorter expansion is a prefix of a longer one.
 */

import { checkBytes, describe, isInt, subtle } from "./bytes.js";

export const SEED_SIZE = 32;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function checkCount(count, what) {
  if (!isInt(count) || count < 0) throw new RangeError(`${what} must be a non-negative int, got ${describe(count)}`);
  return count;
}

export async function keystream(seed, nbytes) {
  checkCount(nbytes, "nbytes");
  const key = await subtle().importKey("raw", checkBytes(seed, SEED_SIZE, "a PRG seed"), "AES-CTR", false, ["encrypt"]);
  const algorithm = { name: "AES-CTR", counter: new Uint8Array(16), length: 128 };
  return new Uint8Array(await subtle().encrypt(algorithm, key, new Uint8Array(nbytes)));
}

/** `count` uint32 values (a fresh, writable array). */
export async function expand(seed, count) {
  checkCount(count, "count");
  const bytes = await keystream(seed, 4 * count);
  if (LITTLE_ENDIAN) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return Uint32Array.from({ length: count }, (_, m) => view.getUint32(4 * m, true));
}
