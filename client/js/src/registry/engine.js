/**
 * Running a verified published model with the TF.js engine the device trains with: the page
 * does, so it needs no ONNX Runtime (15 MB of wasm). The ONNX file carries its spec and weights
 * (registry/onnx.js); the outputs are the ONNX graph's within float32 rounding, as the engine's
 * are (docs/onnx.md). Node's `fedge-node predict` runs ONNX Runtime itself (registry/predict.js).
 */

import * as tf from "@tensorflow/tfjs";

import { Model } from "../model/index.js";
import { readOnnxModel } from "./onnx.js";
import { BATCH, prepareSamples } from "./samples.js";

/** The engine's Model with the weights of an fp32 model fedge exported (the caller disposes it). */
export function modelFromOnnx(modelBytes) {
  const { spec, tensors } = readOnnxModel(modelBytes);
  const model = new Model(spec);
  try {
    const weights = model.parameterNames.map((name, i) => engineWeight(name, tensors.get(name), model.parameterShapes[i]));
    model.setWeights(weights);
    weights.forEach((w) => w.dispose());
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

/**
 * One initializer in the engine's layout, as shared/onnx/weights.py's engine_layout moves it: a
 * conv kernel from ONNX's (O, C, *K) to (*K, C, O); a group norm's (C, 1, 1) scale to (C).
 */
function engineWeight(name, tensor, shape) {
  if (!tensor) throw new RangeError(`expected an initializer ${name} in the model, got none`);
  const { dims, values } = tensor;
  const key = (d) => d.join(",");
  const squeezed = (d) => key(d.filter((n) => n !== 1));
  if (key(dims) === key(shape)) return tf.tensor(values, shape);
  if (dims.length >= 3 && dims.length === shape.length) {
    const order = [...Array(dims.length - 2).keys()].map((k) => k + 2).concat([1, 0]);
    const moved = tf.tidy(() => tf.tensor(values, dims).transpose(order));
    if (key(moved.shape) === key(shape)) return moved;
    moved.dispose();
  } else if (squeezed(dims) === squeezed(shape)) return tf.tensor(values, shape);
  throw new RangeError(`expected ${name} of shape (${shape.join(", ")}), got (${dims.join(", ")})`);
}

/**
 * Each sample's probabilities, one Float32Array per sample (labels in manifest.labels order), as
 * registry/predict.js gives them; `x` holds N samples of manifest.input.shape, flattened (raw
 * values: the manifest's normalisation is applied here unless `normalised`).
 */
export async function predictWithEngine(manifest, modelBytes, x, { normalised = false } = {}) {
  const { values, count, shape } = prepareSamples(manifest, x, { normalised });
  const model = modelFromOnnx(modelBytes);
  try {
    if (model.inputShape.join(",") !== shape.join(",")) {
      throw new RangeError(`the manifest says input (${shape.join(", ")}), the model takes (${model.inputShape.join(", ")})`);
    }
    const size = values.length / count;
    const out = [];
    for (let start = 0; start < count; start += BATCH) {
      const n = Math.min(BATCH, count - start);
      const probabilities = tf.tidy(() =>
        tf.softmax(model.apply(tf.tensor(values.subarray(start * size, (start + n) * size), [n, ...shape]))),
      );
      const data = await probabilities.data();
      probabilities.dispose();
      const classes = data.length / n;
      for (let i = 0; i < n; i++) out.push(data.slice(i * classes, (i + 1) * classes));
    }
    return out;
  } finally {
    model.dispose();
  }
}
