/**
 * Fixed-point quantisation into uint32, sized so that a cohort's sum cannot wrap mod 2^32.
 *
 *     bits   = 32 − ceil(log2 nClients)          (= 32 − bit length of nClients − 1)
 *     L      = 2^bits − 1                        the largest quantised value
 *     scaled = ((min(max(x, −clip), clip) + clip) / (2·clip)) · L      in binary64, in this order
 *     q      = floor(scaled) + (u < scaled − floor(scaled) ? 1 : 0),   u uniform in [0, 1)
 *
 * JavaScript numbers are binary64, so the same operations in the same order give the same q as
 * the Python quantiser for the same u. Dequantising a sum of `count` values:
 * total·(2·clip / L) − count·clip in binary64, then float32.
 */

import { describe, isInt, repr } from "./bytes.js";

export const MAX_CLIENTS = 0xffff;
const TWO_TO_53 = 2 ** 53;

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
    const { clip, levels } = this;
    const out = new Uint32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const u = uniforms[i];
      if (!(u >= 0 && u < 1)) throw new RangeError(`uniforms must lie in [0, 1), got ${repr(u)}`);
      const scaled = ((Math.min(Math.max(values[i], -clip), clip) + clip) / (2 * clip)) * levels;
      const low = Math.floor(scaled);
      out[i] = low + (u < scaled - low ? 1 : 0);
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
    return Float32Array.from(total, (t) => t * scale - count * this.clip);
  }

  toString() {
    return `Quantizer(clip=${this.clip}, nClients=${this.nClients}, bits=${this.bits})`;
  }
}
