/**
 * Local training for the agent, as the Python agent's LocalTrainer: build the task's model
 * from its spec (kept while the spec stays the same), start from the downloaded weights, fit
 * on the device's samples, and return the update (trained − downloaded) with the metrics.
 *
 * Samples come from `samples(inputShape)`, called each round, so samples recorded or loaded
 * between rounds are trained on at the next one. It returns {x: Float32Array, y: Int32Array}
 * holding only the samples of that shape (the page may keep samples of several shapes).
 */

import * as tf from "@tensorflow/tfjs";

import { Model, scoreModel, trainUpdate } from "../model/index.js";
import { AgentStopped } from "./errors.js";

const shapeText = (shape) => `(${shape.join(", ")})`;

export class LocalTrainer {
  #model = null; // [specJson, Model]

  constructor(samples) {
    if (typeof samples !== "function") throw new TypeError("expected samples(inputShape) → {x, y}, got none");
    this.samples = samples;
  }

  /** The model for `specJson` (cached); what the page reads the input shape and classes from. */
  model(specJson) {
    if (this.#model?.[0] !== specJson) {
      this.#model?.[1].dispose?.();
      this.#model = [specJson, Model.fromJson(specJson)];
    }
    return this.#model[1];
  }

  /**
   * {update, names, numExamples, metrics}: `start` is one Float32Array per parameter, in model
   * order, and `names` (the assignment's tensor names) must be that order.
   */
  async train({ specJson, start, names, plan, trainable = [], onBatch }) {
    return this.#withSamples(specJson, names, (model, xs, ys) =>
      trainUpdate(model, start, xs, ys, plan, { trainable, onBatch }),
    );
  }

  /** A scoring round: {numExamples, metrics: {eval_loss, eval_accuracy}} of `start` on the held-out samples, or null. */
  async score({ specJson, start, names, plan }) {
    return this.#withSamples(specJson, names, (model, xs, ys) => scoreModel(model, start, xs, ys, plan));
  }

  async #withSamples(specJson, names, use) {
    const model = this.model(specJson);
    if (names && names.join("\n") !== model.parameterNames.join("\n")) {
      throw new AgentStopped(
        `expected the weights of ${model.parameterNames.join(", ")} in this order, got ${names.join(", ")}`,
      );
    }
    const { x, y } = this.#checkedSamples(model);
    const xs = tf.tensor(x, [y.length, ...model.inputShape]);
    const ys = tf.tensor1d(y, "int32");
    try {
      return await use(model, xs, ys);
    } finally {
      tf.dispose([xs, ys]);
    }
  }

  #checkedSamples(model) {
    const data = this.samples(model.inputShape);
    const count = data?.y?.length ?? 0;
    if (!count) {
      throw new AgentStopped(
        `no samples of shape ${shapeText(model.inputShape)} on this device: the task's model needs them; ` +
          "load or record some, then resume",
      );
    }
    const classes = model.outputShape.at(-1);
    const bad = data.y.find((label) => !(label >= 0 && label < classes));
    if (bad !== undefined) {
      throw new AgentStopped(`expected class ids below ${classes} (the task's labels), got ${bad} in the samples`);
    }
    return data;
  }
}
