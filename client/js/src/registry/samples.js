/**
 * What every way of running a published model shares: the samples made ready as the manifest
 * says (shape, normalisation, finite), and a prediction put in words.
 */

import { normalise } from "../data/datafiles.js";

export const BATCH = 256; // samples per run, as shared/onnx/runtime.py

/**
 * {values, count, shape}: `x` (N samples of manifest.input.shape, flattened) as a fresh
 * Float32Array, normalised as the manifest says unless `normalised`; wrong sizes and
 * non-finite values are refused.
 */
export function prepareSamples(manifest, x, { normalised = false } = {}) {
  const shape = manifest.input.shape;
  const size = shape.reduce((a, b) => a * b, 1);
  if (!x.length || x.length % size !== 0) {
    const expected = `samples of shape (${shape.join(", ")}): a multiple of ${size} values`;
    throw new RangeError(`expected ${expected}, got ${x.length}`);
  }
  const values = Float32Array.from(x);
  const norm = manifest.input.normalisation;
  if (!normalised && norm?.mean) {
    const channels = shape.at(-1);
    if (norm.mean.length !== channels) {
      throw new RangeError(`expected a normalisation of ${channels} channels, got ${norm.mean.length}`);
    }
    normalise(values, channels, norm);
  }
  if (!values.every(Number.isFinite)) throw new RangeError("expected finite numbers, got NaN or Infinity");
  return { values, count: values.length / size, shape };
}

/** "walk 0.912, sit 0.051, ...": the `top` likeliest labels of one sample, as `fedge models predict` prints them. */
export function describePrediction(labels, probabilities, top = 3) {
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]);
  return order
    .slice(0, Math.max(1, top))
    .map((k) => `${labels[k]} ${probabilities[k].toFixed(3)}`)
    .join(", ");
}
