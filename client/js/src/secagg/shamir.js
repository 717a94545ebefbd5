/**
 * Shamir secret sharing of 32-byte secrets over the prime field p = 2^521 − 1, in BigInt.
 *
 *     secret s      = the 32 bytes read as a big-endian integer (< 2^256 < p)
 *     f(x)          = s + a_1·x + … + a_{t−1}·x^{t−1}  (mod p)
 *     share of x    = (x, f(x)),  x in 1 … 65535 (the holder's cohort index + 1)
 *     a_m, in order = 66 random bytes, big-endian, AND (2^521 − 1); the value p itself is drawn again
 *     encoding      = x (uint16 BE) ‖ y (66 bytes BE): 68 bytes
 */

import { bigIntToBytes, bytesToBigInt, concatBytes, describe, isInt, repr, u16 } from "./bytes.js";

export const P = 2n ** 521n - 1n;
export const SECRET_SIZE = 32;
export const Y_SIZE = 66;
export const SHARE_SIZE = 2 + Y_SIZE;
export const MAX_X = 0xffff;

/** The shares cannot give the secret back. */
export class ReconstructionError extends Error {
  name = "ReconstructionError";
}

/** Fewer shares than the threshold. */
export class NotEnoughShares extends ReconstructionError {
  name = "NotEnoughShares";
}

/** Two shares with the same x. */
export class DuplicateShare extends ReconstructionError {
  name = "DuplicateShare";
}

/** `n` bytes from the OS (crypto.getRandomValues); what split uses outside the test vectors. */
export function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function checkX(x) {
  if (!isInt(x) || x < 1 || x > MAX_X)
    throw new RangeError(`a share's x must be an int in 1..${MAX_X}, got ${repr(x)}`);
  return x;
}

function checkThreshold(threshold) {
  if (!isInt(threshold) || threshold < 2) {
    throw new RangeError(`the threshold must be an int of at least 2, got ${repr(threshold)}`);
  }
  return threshold;
}

function mod(value) {
  const r = value % P;
  return r < 0n ? r + P : r;
}

export class Share {
  constructor(x, y) {
    checkX(x);
    if (typeof y !== "bigint" || y < 0n || y >= P) {
      throw new RangeError(`a share's y must be a BigInt in 0..2^521-2, got ${describe(y)}`);
    }
    this.x = x;
    this.y = y;
    Object.freeze(this);
  }

  toBytes() {
    return concatBytes(u16(this.x), bigIntToBytes(this.y, Y_SIZE));
  }

  static fromBytes(data) {
    if (!(data instanceof Uint8Array) || data.length !== SHARE_SIZE) {
      throw new RangeError(
        `an encoded share is ${SHARE_SIZE} bytes (x uint16 BE, y 66 bytes BE), got ${describe(data)}`,
      );
    }
    return new Share((data[0] << 8) | data[1], bytesToBigInt(data.subarray(2)));
  }

  toString() {
    return `Share(x=${this.x})`; // shares are secret material
  }
}

function coefficient(rng) {
  for (;;) {
    const drawn = rng(Y_SIZE);
    if (!(drawn instanceof Uint8Array) || drawn.length !== Y_SIZE) {
      throw new RangeError(`rng(${Y_SIZE}) must return ${Y_SIZE} bytes, got ${describe(drawn)}`);
    }
    const value = bytesToBigInt(drawn) & P;
    if (value !== P) return value;
  }
}

function evaluate(coefficients, x) {
  const bx = BigInt(x);
  let y = 0n;
  for (let m = coefficients.length - 1; m >= 0; m--) y = (y * bx + coefficients[m]) % P;
  return y;
}

/** One share per x; `rng(n)` must return n uniformly random bytes (randomBytes in production). */
export function split(secret, threshold, xs, rng = randomBytes) {
  if (!(secret instanceof Uint8Array) || secret.length !== SECRET_SIZE) {
    throw new RangeError(`a secret must be exactly ${SECRET_SIZE} bytes, got ${describe(secret)}`);
  }
  checkThreshold(threshold);
  const points = Array.from(xs, checkX);
  if (new Set(points).size !== points.length) throw new RangeError(`the xs must be distinct, got [${points}]`);
  if (points.length < threshold) throw new RangeError(`need at least threshold=${threshold} xs, got ${points.length}`);
  const coefficients = [bytesToBigInt(secret)];
  for (let m = 1; m < threshold; m++) coefficients.push(coefficient(rng));
  return points.map((x) => new Share(x, evaluate(coefficients, x)));
}

/** a^-1 mod p by the extended Euclidean algorithm. */
function invert(a) {
  let [r0, r1, s0, s1] = [P, mod(a), 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0);
}

const lagrangeCache = new Map();

/** λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p, so that f(0) = Σ λ_i·f(x_i); cached per list of xs. */
export function lagrangeAtZero(xs) {
  const cacheKey = xs.join(",");
  let weights = lagrangeCache.get(cacheKey);
  if (weights === undefined) {
    weights = xs.map((xi, i) => {
      let [numerator, denominator] = [1n, 1n];
      xs.forEach((xj, j) => {
        if (j === i) return;
        numerator = (numerator * BigInt(xj)) % P;
        denominator = mod(denominator * BigInt(xj - xi));
      });
      return (numerator * invert(denominator)) % P;
    });
    if (lagrangeCache.size >= 4096) lagrangeCache.clear();
    lagrangeCache.set(cacheKey, weights);
  }
  return weights;
}

/** The secret from the first `threshold` shares; refuses fewer shares or a repeated x. */
export function combine(shares, threshold) {
  checkThreshold(threshold);
  for (const share of shares) {
    if (!(share instanceof Share)) throw new TypeError(`expected Share objects, got ${describe(share)}`);
  }
  if (shares.length < threshold) {
    throw new NotEnoughShares(`need at least threshold=${threshold} shares, got ${shares.length}`);
  }
  const xs = shares.map((s) => s.x);
  if (new Set(xs).size !== xs.length) {
    throw new DuplicateShare(`each share needs its own x, got [${[...xs].sort((a, b) => a - b)}]`);
  }
  const used = shares.slice(0, threshold);
  const weights = lagrangeAtZero(used.map((s) => s.x));
  const secret = used.reduce((sum, share, i) => (sum + weights[i] * share.y) % P, 0n);
  if (secret >= 1n << BigInt(8 * SECRET_SIZE)) {
    throw new ReconstructionError("the shares do not belong to one 32-byte secret (inconsistent or corrupt shares)");
  }
  return bigIntToBytes(secret, SECRET_SIZE);
}
