/**
 * Secure aggregation (SecAgg+) on WebCrypto: the same bytes as fedge.shared.secagg
 * (docs/secagg.md is the spec; tests/vectors/secagg/ holds the golden vectors both replay).
 *
 *     keys.js      X25519 key pairs as raw 32 bytes; agree() → 32-byte shared secret
 *     kdf.js       HKDF-SHA256, one label per purpose, info = label ‖ round ‖ pair
 *     shares.js    share bundles sealed with AES-256-GCM; reveal() answers the unmask stage
 *     shamir.js    Shamir sharing of 32-byte secrets over GF(2^521 − 1), in BigInt
 *     prg.js       AES-256-CTR keystream in 256 KiB segments → little-endian uint32 masks
 *     quantize.js  clip + stochastic rounding into uint32 so the cohort's sum cannot wrap
 *     masking.js   add / remove self and pairwise masks mod 2^32
 *     graph.js     the round's k-regular neighbour graph from a public seed
 *
 * Everything that touches WebCrypto is async. Errors: KeyAgreementError, ShareDecryptionError,
 * RevealRefused and ReconstructionError (NotEnoughShares, DuplicateShare); malformed inputs
 * throw TypeError or RangeError with the rule in the message.
 */

/**
 * The byte format a cohort masks with, in every SecAggPlan (fedge.shared.secagg.FORMAT): a client
 * that speaks another one declines the round, since masks made in two formats would not cancel.
 * 2: the keystream in 256 KiB segments (docs/secagg.md).
 */
export const FORMAT = 2;

export { neighbours } from "./graph.js";
export { LABELS, PAIRWISE_MASK, SALT, SHARE_ENCRYPTION, derive, info, pairwiseSeed, shareKey } from "./kdf.js";
export { KeyAgreementError, PrivateKey, PublicKey, agree } from "./keys.js";
export { mask, removePairMasks, removeSelfMasks, sign } from "./masking.js";
export { expand, keystream } from "./prg.js";
export { NOISE_TAILS, Quantizer, randomUniforms } from "./quantize.js";
export {
  DuplicateShare,
  NotEnoughShares,
  P,
  ReconstructionError,
  Share,
  combine,
  lagrangeAtZero,
  randomBytes,
  split,
} from "./shamir.js";
export {
  RevealRefused,
  ShareBundle,
  ShareDecryptionError,
  decryptBundle,
  encryptBundle,
  nonce,
  reveal,
} from "./shares.js";
export { fromHex, toHex } from "./bytes.js";
