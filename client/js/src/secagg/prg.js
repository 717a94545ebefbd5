/**
 * Mask expansion: AES-256 in counter mode keyed by a 32-byte seed, read as little-endian uint32.
 *
 * The keystream is cut into segments of SEGMENT values (256 KiB). Segment s is the AES-256-CTR
 * keystream under the counter blocks
 *
 *     nonce(s) ‖ (2 + j)     nonce(s) = s as 12 bytes big-endian, j = 0, 1, … as 4 bytes big-endian
 *
 *     expand(seed, c)[m] = uint32 little-endian of bytes 4·(m mod SEGMENT) … +3 of segment m / SEGMENT
 *
 * (AES-256-GCM's keystream under the nonce s, which the Python side uses for speed.) WebCrypto
 * counts the last 32 bits of the block (length 32). A shorter expansion is a prefix of a longer one.
 */

import { checkBytes, describe, isInt, subtle } from "./bytes.js";

export const SEED_SIZE = 32;
export const SEGMENT = 1 << 16;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function checkCount(count, what) {
  if (!isInt(count) || count < 0) throw new RangeError(`${what} must be a non-negative int, got ${describe(count)}`);
  return count;
}

/** The counter block of segment `s`'s first AES block: s (12 bytes, big-endian) ‖ 00000002. */
function counterBlock(s) {
  const block = new Uint8Array(16);
  const view = new DataView(block.buffer);
  view.setUint32(4, Math.floor(s / 2 ** 32));
  view.setUint32(8, s >>> 0);
  view.setUint32(12, 2);
  return block;
}

const ZEROS = new Uint8Array(4 * SEGMENT); // what each segment encrypts (WebCrypto copies its input)

async function importSeed(seed) {
  return subtle().importKey("raw", checkBytes(seed, SEED_SIZE, "a PRG seed"), "AES-CTR", false, ["encrypt"]);
}

/** The keystream's segments up to `nbytes`, as ArrayBuffers (the last one cut short), made side by side. */
async function segments(seed, nbytes) {
  const key = await importSeed(seed);
  const size = 4 * SEGMENT;
  return Promise.all(
    Array.from({ length: Math.ceil(nbytes / size) }, (_, s) => {
      const algorithm = { name: "AES-CTR", counter: counterBlock(s), length: 32 };
      return subtle().encrypt(algorithm, key, ZEROS.subarray(0, Math.min(size, nbytes - s * size)));
    }),
  );
}

export async function keystream(seed, nbytes) {
  checkCount(nbytes, "nbytes");
  const out = new Uint8Array(nbytes);
  (await segments(seed, nbytes)).forEach((part, s) => out.set(new Uint8Array(part), s * 4 * SEGMENT));
  return out;
}

/**
 * `count` values, segment by segment: Uint32Arrays of SEGMENT values (the last one shorter), on a
 * little-endian machine views of WebCrypto's own buffers, so a mask is added without a copy.
 */
export async function expandSegments(seed, count) {
  checkCount(count, "count");
  const parts = await segments(seed, 4 * count);
  if (LITTLE_ENDIAN) return parts.map((part) => new Uint32Array(part));
  return parts.map((part) => {
    const view = new DataView(part);
    return Uint32Array.from({ length: part.byteLength / 4 }, (_, m) => view.getUint32(4 * m, true));
  });
}

/** `count` uint32 values (a fresh, writable array). */
export async function expand(seed, count) {
  const out = new Uint32Array(checkCount(count, "count"));
  (await expandSegments(seed, count)).forEach((part, s) => out.set(part, s * SEGMENT));
  return out;
}
