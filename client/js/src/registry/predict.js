/**
 * Running a verified model with ONNX Runtime (onnxruntime-web: WebAssembly, in the browser and
 * in Node), as `fedge models predict` does with Python's onnxruntime: the manifest says the
 * input's shape and normalisation, the model's `probabilities` output gives each label's.
 */

import * as ort from "onnxruntime-web";

import { normalise } from "../data/datafiles.js";

const BATCH = 256; // samples per run, as shared/onnx/runtime.py

/**
 * Each sample's probabilities, one Float32Array per sample (labels in manifest.labels order).
 * `x` holds N samples of manifest.input.shape, flattened (raw values: the manifest's
 * normalisation is applied here unless `normalised`).
 */
export async function predict(manifest, modelBytes, x, { normalised = false } = {}) {
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
  const session = await ort.InferenceSession.create(modelBytes);
  try {
    const out = [];
    const count = values.length / size;
    for (let start = 0; start < count; start += BATCH) {
      const n = Math.min(BATCH, count - start);
      const input = new ort.Tensor("float32", values.subarray(start * size, (start + n) * size), [n, ...shape]);
      const { probabilities } = await session.run({ input }, ["probabilities"]);
      const classes = probabilities.dims[1];
      for (let i = 0; i < n; i++) out.push(probabilities.data.slice(i * classes, (i + 1) * classes));
    }
    return out;
  } finally {
    await session.release();
  }
}

/** "walk 0.912, sit 0.051, ...": the `top` likeliest labels of one sample, as `fedge models predict` prints them. */
export function describePrediction(labels, probabilities, top = 3) {
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]);
  return order
    .slice(0, Math.max(1, top))
    .map((k) => `${labels[k]} ${probabilities[k].toFixed(3)}`)
    .join(", ");
}
