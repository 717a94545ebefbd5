/**
 * Running a verified model with ONNX Runtime (onnxruntime-web: WebAssembly, in the browser and
 * in Node), as `fedge models predict` does with Python's onnxruntime: the manifest says the
 * input's shape and normalisation, the model's `probabilities` output gives each label's.
 */

import * as ort from "onnxruntime-web";

import { BATCH, prepareSamples } from "./samples.js";

export { describePrediction } from "./samples.js";

/**
 * Each sample's probabilities, one Float32Array per sample (labels in manifest.labels order).
 * `x` holds N samples of manifest.input.shape, flattened (raw values: the manifest's
 * normalisation is applied here unless `normalised`).
 */
export async function predict(manifest, modelBytes, x, { normalised = false } = {}) {
  const { values, count, shape } = prepareSamples(manifest, x, { normalised });
  const size = values.length / count;
  const session = await ort.InferenceSession.create(modelBytes);
  try {
    const out = [];
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
