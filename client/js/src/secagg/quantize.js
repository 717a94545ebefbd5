/**
 * Fixed-point quantisation into uint32, sized so that a cohort's sum cannot wrap mod 2^32.
 *
 *     bits   = 32 − ceil(log2 nClients)          (= 32 − bit length of nClients − 1)
 *     L      = 2^bits − 1,  H = L / 2            L the largest quantised value; H exact in binary64
 *     scaled = min(max(x · (L / (2·clip)), −H), H) + H      in binary64, in this order: 0 … L
 *     q      = floor(scaled + u·(1 − 2^-20)),    u uniform in [0, 1)
 *
 * u is scaled below 1 − 2^-20 so that the sum never rounds up to the next integer in binary64:
 * q ≤ L even at the clip.
 *
 * JavaScript numbers are binary64, so the same operations in the same order give the same q as
 * the Python quantiser for the same u. Dequantising a sum of `count` values: read the uint32
 * total as the integer r ≡ total (mod 2^32) in [c − 2^31, c + 2^31), c = ⌈count·L/2⌉, then
 * r·(2·clip / L) − count·clip in binary64, then float32 (a sum without noise is r = total).
 *
 * Distributed DP noise (docs/privacy.md) is added to q on devices and may take the sum below 0 or
 * past 2^32; `noiseRoom` and `toleratesNoise` are fedge.shared.secagg.quantize's checks that
 * NOISE_TAILS standard deviations of it still read back.
 */

import { describe, isInt, repr } from "./bytes.js";

export const MAX_CLIENTS = 0xffff;
/** Noise on a sum reads back while within this many of its standard deviations (≈1e-31 to stray). */
export const NOISE_TAILS = 12;
const TWO_TO_53 = 2 ** 53;
const HALF = 2 ** 31;
const COORDINATE_SLACK = 2 ** -20; // an update clipped to norm C in float32 may exceed C by a relative ~1e-7
const SPAN = 1 - 2 ** -20; // the draws' reach: scaled + u·SPAN stays below the next integer

/** `count` uniforms in [0, 1) with 53 random bits each, from crypto.getRandomValues. */
export function randomUniforms(count) {
  const out = new Float64Array(count);
  const words = new Uint32Array(2 * Math.min(count, 8192)); // getRandomValues takes 64 KiB at most
  for (let start = 0; start < count; start += words.length / 2) {
    globalThis.crypto.getRandomValues(words);
    const end = Math.min(count, start + words.length / 2);
    for (let i = start; i < end; i++) {
      const k = 2 * (i - start);
      out[i] = ((words[k] >>> 5) * 2 ** 26 + (words[k + 1] >>> 6)) / TWO_TO_53;
    }
  }
  return out;
}

function finite(values) {
  if (values == null || typeof values.length !== "number" || typeof values === "string") {
    throw new TypeError(`values to quantise must be an array of numbers, got ${describe(values)}`);
  }
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError("values to quantise must be finite numbers (no NaN or infinity)");
    }
  }
  return values;
}

export class Quantizer {
  constructor(clip, nClients) {
    if (typeof clip !== "number" || !Number.isFinite(clip) || clip <= 0) {
      throw new RangeError(`clip must be a finite number > 0, got ${repr(clip)}`);
    }
    if (!isInt(nClients) || nClients < 1 || nClients > MAX_CLIENTS) {
      throw new RangeError(`nClients must be an int in 1..${MAX_CLIENTS}, got ${repr(nClients)}`);
    }
    this.clip = clip;
    this.nClients = nClients;
    this.bits = Math.clz32(nClients - 1); // 32 − the bit length of nClients − 1
    this.levels = 2 ** this.bits - 1;
    Object.freeze(this);
  }

  get step() {
    return (2 * this.clip) / this.levels;
  }

  /** Integer units per 1.0 of input: levels / (2·clip). */
  get scale() {
    return this.levels / (2 * this.clip);
  }

  /**
   * How far noise may move a sum of up to nClients quantised values, each of whose coordinates
   * lies in [−bound, bound], without being misread. Negative: no room at all.
   */
  noiseRoom(bound) {
    if (typeof bound !== "number" || !Number.isFinite(bound) || bound <= 0) {
      throw new RangeError(`bound must be a finite number > 0, got ${repr(bound)}`);
    }
    const reach = Math.min(bound * (1 + COORDINATE_SLACK), this.clip) * this.scale + 2;
    return HALF - 1 - this.nClients * reach;
  }

  /** Whether NOISE_TAILS standard deviations of nClients devices' noise of `clientStddev` fit in noiseRoom(bound). */
  toleratesNoise(clientStddev, bound) {
    if (typeof clientStddev !== "number" || !Number.isFinite(clientStddev) || clientStddev < 0) {
      throw new RangeError(`clientStddev must be a finite number >= 0, got ${repr(clientStddev)}`);
    }
    return NOISE_TAILS * clientStddev * Math.sqrt(this.nClients) <= this.noiseRoom(bound);
  }

  /** The largest possible |dequantised sum − sum of clipped values| for `count` clients. */
  errorBound(count) {
    return count * (this.step + this.clip * 2 ** -24);
  }

  /** `rng(n)` gives n uniforms in [0, 1): secure ones by default. */
  quantize(values, rng = randomUniforms) {
    return this.quantizeWith(values, rng(finite(values).length));
  }

  /** `quantize` with the rounding draws given: what the golden vectors replay. */
  quantizeWith(values, uniforms) {
    finite(values);
    if (uniforms == null || uniforms.length !== values.length) {
      throw new RangeError(
        `expected one uniform per value (${values.length}), got ${uniforms?.length ?? describe(uniforms)}`,
      );
    }
    const scale = this.scale;
    const half = this.levels / 2;
    const out = new Uint32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const u = uniforms[i];
      if (!(u >= 0 && u < 1)) throw new RangeError(`uniforms must lie in [0, 1), got ${repr(u)}`);
      out[i] = Math.floor(Math.min(Math.max(values[i] * scale, -half), half) + half + u * SPAN);
    }
    return out;
  }

  /** The float32 sum of the `count` clipped values whose quantisations add up to `total`. */
  dequantizeSum(total, count) {
    if (!(total instanceof Uint32Array)) throw new TypeError(`total must be a Uint32Array, got ${describe(total)}`);
    if (!isInt(count) || count < 1 || count > this.nClients) {
      throw new RangeError(`count must be an int in 1..nClients=${this.nClients}, got ${repr(count)}`);
    }
    const scale = (2 * this.clip) / this.levels;
    const below = Math.floor((count * this.levels + 1) / 2) - HALF; // the window's start, c − 2^31
    return Float32Array.from(total, (t) => (((t - below) >>> 0) + below) * scale - count * this.clip);
  }

  toString() {
    return `Quantizer(clip=${this.clip}, nClients=${this.nClients}, bits=${this.bits})`;
  }
}
