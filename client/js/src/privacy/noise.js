/**
 * Exact samples of the discrete Gaussian on the integers, P(x) ∝ exp(−x² / 2σ²): the noise a
 * device adds to its quantised update before masking (distributed DP, docs/privacy.md), drawn as
 * fedge.shared.privacy.noise draws it.
 *
 * Canonne, Kamath & Steinke 2020, Algorithms 2 and 3: a discrete Laplace proposal of scale
 * t = ⌊σ⌋ + 1, kept with probability exp(−(|y| − σ²/t)² / 2σ²). Each coin Bernoulli(exp(−γ))
 * compares a 53-bit uniform number with Math.exp(−γ) when a certified margin makes the answer
 * sure, and otherwise (about once in 10⁹ coins) reads more random bits and compares them with
 * bounds on exp(−γ) computed in BigInt from γ as an exact fraction. No float rounding can bias
 * the distribution. The random bits come from crypto.getRandomValues.
 */

export const MIN_CLIENT_SIGMA = 2; // integer units; below it the sum of clients' noise drifts from a discrete Gaussian
export const MAX_SIGMA = 2 ** 40; // keeps every proposal and float64 intermediate exact
const FLOAT_MARGIN = 1e-9; // relative error allowed for Math.exp(−γ) (true error: ~1e-15·(1 + γ))
const TINY = 1e-300; // absolute margin for exp(−γ) that underflows
const ULP = 2 ** -53; // the uniform number's first 53 bits, drawn as an integer
const POOL_WORDS = 16384; // getRandomValues fills at most 64 KiB at a time
const ONE = [1n, 1n];

/** Random 32-bit words from `source.getRandomValues` (crypto, or a seeded stand-in in tests), a pool at a time. */
export class RandomWords {
  constructor(source = globalThis.crypto) {
    this.source = source;
    this.pool = new Uint32Array(POOL_WORDS);
    this.next = POOL_WORDS;
    this.last = 0; // the uniform digits of the last coin that float64 could not decide
  }

  word() {
    if (this.next === POOL_WORDS) {
      this.source.getRandomValues(this.pool);
      this.next = 0;
    }
    return this.pool[this.next++];
  }

  /** A uniform integer in [0, 2^53). */
  digits() {
    return (this.word() >>> 11) * 2 ** 32 + this.word();
  }

  /** A uniform integer in [0, n) for 1 ≤ n ≤ 2^53; `limit` is the largest multiple of n ≤ 2^53 (no modulo bias). */
  below(n, limit) {
    for (;;) {
      const d = this.digits();
      if (d < limit) return d % n;
    }
  }

  /** 64 more random bits. */
  bits64() {
    return (BigInt(this.word()) << 32n) | BigInt(this.word());
  }
}

/** `count` samples of the discrete Gaussian of scale `sigma` (integer units), as integer-valued float64s. */
export function discreteGaussian(count, sigma, source = globalThis.crypto) {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`expected a count ≥ 0, got ${count}`);
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma <= 0) {
    throw new RangeError(`expected a finite sigma > 0, got ${sigma}`);
  }
  if (sigma > MAX_SIGMA) throw new RangeError(`expected sigma ≤ 2^40 (integer units), got ${sigma}`);
  const random = new RandomWords(source);
  const t = Math.floor(sigma) + 1;
  const limit = Number((2n ** 53n / BigInt(t)) * BigInt(t));
  const variance = sigma * sigma;
  const [sn, sd] = fraction(sigma);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    for (;;) {
      const y = discreteLaplace(t, limit, random);
      if (y === null) continue;
      const a = Math.abs(y);
      const gamma = (a - variance / t) ** 2 / (2 * variance);
      if (quickCoin(gamma, random) ?? exactCoin(random.last, gaussianGamma(a, sn, sd, t), random)) {
        out[i] = y;
        break;
      }
    }
  }
  return out;
}

/** One attempt of CKS Algorithm 2, P(y) ∝ exp(−|y| / t); null when it rejects. */
function discreteLaplace(t, limit, random) {
  const u = random.below(t, limit);
  if (!(quickCoin(u / t, random) ?? exactCoin(random.last, [BigInt(u), BigInt(t)], random))) return null;
  let v = 0;
  while (quickCoin(1, random) ?? exactCoin(random.last, ONE, random)) v++;
  const x = u + t * v;
  const negative = (random.word() & 1) === 1;
  if (negative && x === 0) return null; // +0 and −0 would count zero twice
  return negative ? -x : x;
}

/** (|y| − σ²/t)² / 2σ² as a fraction [numerator, denominator], σ = sn / sd exactly. */
function gaussianGamma(a, sn, sd, t) {
  const bt = BigInt(t);
  const d = BigInt(a) * sd * sd * bt - sn * sn;
  return [d * d, 2n * sn * sn * sd * sd * bt * bt];
}

/**
 * Bernoulli(exp(−γ)) as float64 can decide it: true, false, or null when the uniform number lies
 * within the margin of exp(−γ) (its digits are then in random.last, for exactCoin).
 */
export function quickCoin(gamma, random) {
  const p = Math.exp(-gamma);
  const margin = FLOAT_MARGIN * (1 + gamma) * p + TINY;
  const digits = random.digits();
  const low = digits * ULP; // the uniform number lies in [low, low + 2^-53)
  if (low + ULP <= p - margin) return true;
  if (low >= p + margin) return false;
  random.last = digits;
  return null;
}

/** Whether the uniform number that starts with the 53-bit `digits` lies below exp(−num/den): more bits until sure. */
export function exactCoin(digits, [num, den], random) {
  if (num === 0n) return true;
  let d = BigInt(digits);
  let bits = 53n;
  for (let guard = 64n; ; guard += 64n) {
    const [low, high] = expNegBounds(num, den, bits + guard); // × 2^(bits + guard)
    if ((d + 1n) << guard <= low) return true;
    if (d << guard >= high) return false;
    d = (d << 64n) | random.bits64();
    bits += 64n;
  }
}

/**
 * Integers [low, high] with low ≤ exp(−num/den)·2^bits ≤ high, high − low a few units: the
 * alternating Taylor series of exp(−x) at x = γ/2^r ≤ 1/2 in fixed point, each term's floor
 * counted in the error, then squared r times with floors below and ceilings above.
 */
export function expNegBounds(num, den, bits) {
  if (num < 0n || den <= 0n) throw new RangeError(`expected γ = num/den ≥ 0, got ${num}/${den}`);
  const r = num === 0n ? 0n : max(0n, bitLength(num) - bitLength(den) + 2n);
  const precision = bits + r + 64n;
  const one = 1n << precision;
  const step = den << r; // x = num / step ≤ 1/2
  let term = one;
  let sum = one;
  let k = 0n;
  while (term > 0n) {
    k += 1n;
    term = (term * num) / (step * k);
    sum += k % 2n === 1n ? -term : term;
  }
  const error = k * k + k + 1n; // each floor loses < 1 unit, compounding to < k by term k, plus the tail
  let low = max(0n, sum - error);
  let high = sum + error;
  for (let i = 0n; i < r; i++) {
    low = (low * low) >> precision;
    high = (high * high + one - 1n) >> precision;
  }
  const shift = precision - bits;
  return [low >> shift, (high + (1n << shift) - 1n) >> shift];
}

/** A finite double > 0 as the exact fraction [numerator, denominator] (doubling is exact). */
function fraction(x) {
  let den = 1n;
  while (!Number.isInteger(x)) {
    x *= 2;
    den *= 2n;
  }
  return [BigInt(x), den];
}

function bitLength(n) {
  return BigInt(n.toString(2).length);
}

function max(a, b) {
  return a > b ? a : b;
}
