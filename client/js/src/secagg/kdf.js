/**
 * HKDF-SHA256 key derivation: one label per purpose, bound to the round and the pair.
 *
 *     okm  = HKDF-SHA256(ikm = X25519 shared secret, salt = SALT, info = info(...), length = 32)
 *     info = label ‖ roundId (uint64 BE) ‖ min(i, j) (uint16 BE) ‖ max(i, j) (uint16 BE)
 *
 * The pair is ordered so that both ends derive the same key. Client indices are positions in the
 * round's cohort, 0 … 65534 (the Shamir x of index i is i + 1).
 */

import { ascii, checkBytes, concatBytes, describe, isInt, subtle, u16, u64 } from "./bytes.js";

export const SALT = ascii("fedge/secagg/v1");
export const SHARE_ENCRYPTION = "fedge/secagg/v1/share-encryption";
export const PAIRWISE_MASK = "fedge/secagg/v1/pairwise-mask";
export const LABELS = Object.freeze([SHARE_ENCRYPTION, PAIRWISE_MASK]);

export const SECRET_SIZE = 32;
export const OUTPUT_SIZE = 32;
export const MAX_INDEX = 0xffff - 1;
export const MAX_ROUND_ID = 2n ** 64n - 1n;

export function checkIndex(value, what = "a client index") {
  if (!isInt(value)) throw new TypeError(`${what} must be an int in 0..${MAX_INDEX}, got ${describe(value)}`);
  if (value < 0 || value > MAX_INDEX) throw new RangeError(`${what} must be in 0..${MAX_INDEX}, got ${value}`);
  return value;
}

/** The round id as a BigInt: a uint64, given as a safe integer Number or a BigInt. */
export function checkRoundId(value) {
  if (typeof value !== "bigint" && !isInt(value)) {
    throw new TypeError(`roundId must be an int in 0..2^64-1, got ${describe(value)}`);
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new RangeError(`roundId above 2^53 must be a BigInt, got ${value}`);
  }
  const id = BigInt(value);
  if (id < 0n || id > MAX_ROUND_ID) throw new RangeError(`roundId must be in 0..2^64-1, got ${value}`);
  return id;
}

export function info(label, roundId, i, j) {
  if (!LABELS.includes(label)) throw new RangeError(`label must be one of ${LABELS.join(", ")}, got ${String(label)}`);
  const id = checkRoundId(roundId);
  if (checkIndex(i, "i") === checkIndex(j, "j"))
    throw new RangeError(`a pair needs two different clients, got ${i} twice`);
  return concatBytes(ascii(label), u64(id), u16(Math.min(i, j)), u16(Math.max(i, j)));
}

export async function derive(sharedSecret, label, roundId, i, j) {
  checkBytes(sharedSecret, SECRET_SIZE, "the shared secret");
  const parameters = { name: "HKDF", hash: "SHA-256", salt: SALT, info: info(label, roundId, i, j) };
  const ikm = await subtle().importKey("raw", sharedSecret, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle().deriveBits(parameters, ikm, 8 * OUTPUT_SIZE));
}

/** The AES-256-GCM key for share bundles between i and j (from their c keys). */
export function shareKey(sharedSecret, roundId, i, j) {
  return derive(sharedSecret, SHARE_ENCRYPTION, roundId, i, j);
}

/** The PRG seed of the mask that i and j add with opposite signs (from their s keys). */
export function pairwiseSeed(sharedSecret, roundId, i, j) {
  return derive(sharedSecret, PAIRWISE_MASK, roundId, i, j);
}
