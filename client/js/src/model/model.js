/**
 * A model built from the engine's JSON spec as a TF.js functional model whose weights travel as
 * the engine's: one float32 array per parameter, named `layer/param`, in spec order (a layer's
 * kernel, then its bias), in the engine's layout (which is TF.js's: nothing is transposed).
 */

import * as tf from "@tensorflow/tfjs";

import { makeLayer } from "./layers.js";
import { LAYER_KINDS, SpecError, readSpec } from "./spec.js";

function describeShape(shape) {
  return `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;
}

export class Model {
  /** @param {object} spec the engine's model spec (parsed JSON) */
  constructor(spec) {
    this.spec = structuredClone(spec);
    this.name = String(spec.name ?? "model");
    const layers = readSpec(spec);
    this.inputShape = readInputShape(spec);
    const input = tf.input({ shape: this.inputShape });
    const outputs = { input };
    this.owners = []; // [TF.js layer, its parameters' names] for the layers with parameters, in spec order
    for (const layer of layers) {
      const sources = layer.sources.map((s) => outputs[s]);
      const tfLayer = makeLayer(
        layer,
        sources.map((s) => s.shape.slice(1)),
      );
      outputs[layer.name] = tfLayer.apply(sources.length === 1 ? sources[0] : sources);
      if (LAYER_KINDS[layer.kind].params) this.owners.push([tfLayer, LAYER_KINDS[layer.kind].params]);
    }
    this.tfModel = tf.model({
      inputs: input,
      outputs: outputs[layers.at(-1).name],
      name: this.name.replace(/[^\w.-]/g, "_"),
    });
    this.variables = this.owners.flatMap(([l]) => l.trainableWeights.map((w) => w.read()));
    this.parameterNames = this.owners.flatMap(([l, names]) => l.trainableWeights.map((_, i) => `${l.name}/${names[i]}`));
    this.parameterShapes = this.variables.map((v) => v.shape.slice());
    this.outputShape = this.tfModel.outputs[0].shape.slice(1);
    this.trainOnly();
  }

  /**
   * Train only the named parameters (every one when none are named), as the engine's
   * train_only does for fine-tuning; the others keep their values.
   */
  trainOnly(names = []) {
    const unknown = names.filter((n) => !this.parameterNames.includes(n)).sort();
    if (unknown.length)
      throw new RangeError(`${this.name}: expected parameter names of the model, got ${unknown.join(", ")}`);
    this.trainableNames = names.length
      ? this.parameterNames.filter((n) => names.includes(n))
      : this.parameterNames.slice();
    this.trainable = this.trainableNames.map((n) => this.variables[this.parameterNames.indexOf(n)]);
  }

  static fromJson(text) {
    return new Model(JSON.parse(text));
  }

  get numParameters() {
    return this.parameterShapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  }

  /** Logits for a batch (a tf.Tensor of shape [N, ...inputShape]); `training` turns dropout on. */
  apply(x, { training = false } = {}) {
    const expected = JSON.stringify(this.inputShape);
    if (JSON.stringify(x.shape.slice(1)) !== expected) {
      throw new RangeError(
        `${this.name}: expected input (N, ${this.inputShape.join(", ")}), got (${x.shape.join(", ")})`,
      );
    }
    return this.tfModel.apply(x, { training });
  }

  /**
   * Copies of every parameter as flat float32 arrays (C order), in spec order. Async because
   * GPU backends read back asynchronously (WebGPU's synchronous read goes through a canvas and
   * can lose the device).
   */
  async getWeights() {
    return Promise.all(this.variables.map(async (v) => (await v.data()).slice()));
  }

  /** Sets every parameter from flat float32 arrays (or tensors) in spec order; refuses what does not fit. */
  setWeights(weights) {
    checkWeights(weights, this.parameterShapes, this.name);
    tf.tidy(() => {
      this.variables.forEach((v, i) => {
        const w = weights[i];
        v.assign(w instanceof tf.Tensor ? w.reshape(v.shape).toFloat() : tf.tensor(w, v.shape, "float32"));
      });
    });
  }

  dispose() {
    this.tfModel.dispose();
  }
}

function readInputShape(spec) {
  const shape = spec?.input_shape;
  if (!Array.isArray(shape) || !shape.length || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new SpecError(`model spec: expected input_shape as positive ints, got ${JSON.stringify(shape)}`);
  }
  return shape.slice();
}

/** Refuse weights that do not fit, saying what was expected (the engine's check_weights). */
export function checkWeights(weights, shapes, owner = "model") {
  if (!Array.isArray(weights) || weights.length !== shapes.length) {
    throw new RangeError(
      `${owner}: expected ${shapes.length} tensors, got ${Array.isArray(weights) ? weights.length : typeof weights}`,
    );
  }
  weights.forEach((w, i) => {
    const size = shapes[i].reduce((a, b) => a * b, 1);
    if (w instanceof tf.Tensor) {
      if (JSON.stringify(w.shape) !== JSON.stringify(shapes[i])) {
        throw new RangeError(
          `${owner}: tensor ${i}: expected shape ${describeShape(shapes[i])}, got ${describeShape(w.shape)}`,
        );
      }
    } else if (!(w instanceof Float32Array)) {
      throw new TypeError(
        `${owner}: tensor ${i}: expected a Float32Array or a tf.Tensor, got ${w?.constructor?.name ?? typeof w}`,
      );
    } else if (w.length !== size) {
      throw new RangeError(
        `${owner}: tensor ${i}: expected ${size} values for shape ${describeShape(shapes[i])}, got ${w.length}`,
      );
    }
  });
}
