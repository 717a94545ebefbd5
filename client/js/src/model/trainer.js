/**
 * Local training, as the engine's `training.fit` and the Python agent's LocalTrainer do it:
 * for each epoch a fresh shuffle, then per batch the mean softmax cross-entropy, its gradient,
 * and one optimiser step. The update sent back is the trained weights minus the weights the
 * round started from; the metrics are the mean loss and accuracy over every sample seen.
 */

import * as tf from "@tensorflow/tfjs";

import { checkTrainable } from "./backend.js";
import { OPTIMIZERS, Adam, SGD, proximalTerm } from "./optimizers.js";

export const MAX_HOLDOUT = 0.5;
const HOLDOUT_SEED = 0x4d0e; // one fixed shuffle: a device holds out the same samples every round

/**
 * A TrainingPlan (protos/fedge/v1/coordinator.proto, as protobuf-es or plain JSON gives it)
 * checked as the engine's TrainConfig checks it:
 * {epochs, batchSize, lr, optimizer, momentum, proximalMu, logitAdjustment, steps, holdout}.
 */
export function readPlan(plan) {
  const get = (camel, snake) => plan?.[camel] ?? plan?.[snake];
  const config = {
    epochs: Number(get("epochs", "epochs")),
    batchSize: Number(get("batchSize", "batch_size")),
    lr: Number(get("lr", "lr")),
    optimizer: String(get("optimizer", "optimizer") ?? ""),
    momentum: Number(get("momentum", "momentum") ?? 0),
    proximalMu: Number(get("proximalMu", "proximal_mu") ?? 0),
    logitAdjustment: Boolean(get("logitAdjustment", "logit_adjustment") ?? false),
    steps: Number(get("steps", "steps") ?? 0),
    holdout: Number(get("holdout", "holdout") ?? 0),
  };
  if (!(config.epochs >= 1) || !(config.batchSize >= 1)) {
    throw new RangeError(`expected epochs >= 1 and batch_size >= 1, got ${config.epochs} and ${config.batchSize}`);
  }
  if (!(Number.isInteger(config.steps) && config.steps >= 0)) {
    throw new RangeError(`expected steps >= 0 (0: train for epochs), got ${config.steps}`);
  }
  if (!(config.holdout >= 0 && config.holdout <= MAX_HOLDOUT)) {
    throw new RangeError(`expected 0 <= holdout <= ${MAX_HOLDOUT}, got ${config.holdout}`);
  }
  if (!(config.lr > 0)) throw new RangeError(`expected lr > 0, got ${config.lr}`);
  if (!(config.optimizer in OPTIMIZERS)) {
    throw new RangeError(
      `expected optimizer in [${Object.keys(OPTIMIZERS).sort()}], got ${JSON.stringify(config.optimizer)}`,
    );
  }
  return config;
}

/** The engine's make_optimizer: the proximal hook (anchored at what trains, as it starts) when mu > 0. */
export function makeOptimizer(model, config) {
  const anchor = () => model.trainable.map((v) => v.clone());
  const hooks = config.proximalMu ? [proximalTerm(config.proximalMu, anchor())] : [];
  if (config.optimizer === "adam") return new Adam({ lr: config.lr, hooks });
  return new SGD({ lr: config.lr, momentum: config.momentum, hooks });
}

/** Mean softmax cross-entropy of logits against integer labels (int32 tensor). */
export function softmaxCrossEntropy(logits, labels) {
  return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, logits.shape[1]), logits);
}

/**
 * The engine's label_log_prior: log((count + 1) / (n + classes)) of the device's labels (a
 * Float32Array), added to the logits while training when the plan asks for logit adjustment.
 */
export function labelLogPrior(labels, classes) {
  const counts = new Float32Array(classes);
  for (const label of labels) if (label >= 0 && label < classes) counts[label] += 1;
  return counts.map((count) => Math.log((count + 1) / (labels.length + classes)));
}

/**
 * One step on a batch: returns {loss, correct} as numbers. `training` runs dropout (what fit
 * does); the engine fixtures step with it off, since two engines cannot draw the same masks.
 * `prior` (a [classes] tensor) is added to the logits the loss and the accuracy see.
 */
export async function trainStep(model, optimizer, x, y, { training = true, prior = null } = {}) {
  let correct;
  const { value, grads: named } = tf.variableGrads(() => {
    const raw = model.apply(x, { training });
    const logits = prior ? raw.add(prior) : raw;
    correct = tf.keep(tf.tidy(() => logits.argMax(1).equal(y).sum()));
    return softmaxCrossEntropy(logits, y);
  }, model.trainable);
  const grads = model.trainable.map((v) => named[v.name]);
  optimizer.step(model.trainable, grads);
  const [loss, hits] = await Promise.all([value.data(), correct.data()]);
  tf.dispose([value, correct, ...grads]);
  return { loss: loss[0], correct: hits[0] };
}

/**
 * The engine's `batches`: the sample indices of each step, `epochs` shuffled passes or exactly
 * `steps` batches (a pass cut where the steps run out; a small dataset passed again). Yields
 * {epoch, batch} with batch a subarray of the pass's permutation.
 */
export function* batches(n, config, random = Math.random) {
  let taken = 0;
  for (let epoch = 0; config.steps || epoch < config.epochs; epoch++) {
    const order = permutation(n, random);
    for (let start = 0; start < n; start += config.batchSize) {
      if (config.steps && taken === config.steps) return;
      taken += 1;
      yield { epoch, batch: order.subarray(start, start + config.batchSize) };
    }
  }
}

/** A small seeded generator (mulberry32): the same stream for the same seed, in [0, 1). */
export function seededRandom(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * The engine's `holdout_split`: {train, held} (sorted Int32Arrays) of n samples, the held ones
 * kept aside to score each model the device receives. One fixed shuffle, so the split holds from
 * round to round; at least one sample on each side once `fraction` > 0 and n >= 2.
 */
export function holdoutSplit(n, fraction) {
  if (!(fraction > 0) || n < 2) return { train: Int32Array.from({ length: n }, (_, i) => i), held: new Int32Array() };
  const order = permutation(n, seededRandom(HOLDOUT_SEED));
  const kept = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  return { train: order.slice(kept).sort(), held: order.slice(0, kept).sort() };
}

/** The engine's `evaluate`: mean loss and accuracy of the model (as it is, no dropout) on x, y. */
export async function evaluate(model, x, y, { batchSize = 512 } = {}) {
  const n = x.shape[0];
  if (!n) throw new RangeError("cannot evaluate on an empty dataset");
  let [totalLoss, correct] = [0, 0];
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const [loss, hits] = tf.tidy(() => {
      const [xb, yb] = [x.slice(start, size), y.slice(start, size)];
      const logits = model.apply(xb, { training: false });
      return [softmaxCrossEntropy(logits, yb), logits.argMax(1).equal(yb).sum()];
    });
    totalLoss += (await loss.data())[0] * size;
    correct += (await hits.data())[0];
    tf.dispose([loss, hits]);
  }
  return { loss: totalLoss / n, accuracy: correct / n, numExamples: n };
}

/** A uniformly random permutation of 0 … n−1 (Fisher–Yates); `random()` gives [0, 1). */
export function permutation(n, random = Math.random) {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Trains `model` in place on samples `x` (tf.Tensor [N, ...inputShape]) with labels `y` (int32
 * tensor [N]) for the plan's epochs or steps; returns {loss, accuracy, numExamples} over everything seen.
 * `onBatch({epoch, seen, loss, accuracy})` is called after each step (the batch's), e.g. for live charts.
 */
export async function fit(model, x, y, plan, { random = Math.random, onBatch } = {}) {
  const n = x.shape[0];
  if (!n) throw new RangeError("cannot train on an empty dataset");
  if (y.shape[0] !== n) throw new RangeError(`expected one label per sample (${n}), got ${y.shape[0]}`);
  const config = readPlan(plan);
  checkTrainable(model);
  const optimizer = makeOptimizer(model, config);
  const classes = model.outputShape[model.outputShape.length - 1];
  const prior = config.logitAdjustment ? tf.tensor1d(labelLogPrior(await y.data(), classes)) : null;
  let [totalLoss, correct, seen] = [0, 0, 0];
  try {
    for (const { epoch, batch: indices } of batches(n, config, random)) {
      const batch = tf.tensor1d(indices, "int32");
      const [xb, yb] = [tf.gather(x, batch), tf.gather(y, batch)];
      const step = await trainStep(model, optimizer, xb, yb, { prior });
      tf.dispose([batch, xb, yb]);
      totalLoss += step.loss * batch.shape[0];
      correct += step.correct;
      seen += batch.shape[0];
      onBatch?.({ epoch, seen, loss: step.loss, accuracy: step.correct / batch.shape[0] });
    }
  } finally {
    optimizer.dispose();
    prior?.dispose();
  }
  return { loss: totalLoss / seen, accuracy: correct / seen, numExamples: n };
}

/**
 * What a client sends for a round (the Python agent's LocalTrainer): start from `start` (the
 * downloaded weights, flat float32 arrays in spec order), train, and return the update
 * (trained − start, same order and layout), the number of examples and the metrics.
 * `trainable` (the assignment's parameter names, for fine-tuning) trains only those; the update
 * then holds only those, in model order, named by `names`.
 */
export async function trainUpdate(model, start, x, y, plan, { trainable = [], ...options } = {}) {
  model.setWeights(start);
  model.trainOnly(trainable);
  const parts = splitSamples(x, y, readPlan(plan).holdout);
  try {
    const scored = parts.held && (await evaluate(model, ...parts.held)); // the model as received
    const result = await fit(model, ...parts.train, plan, options);
    const trained = await model.getWeights();
    const update = model.trainableNames.map((name) => {
      const i = model.parameterNames.indexOf(name);
      return trained[i].map((v, m) => v - start[i][m]);
    });
    const metrics = { train_loss: result.loss, train_accuracy: result.accuracy };
    if (scored) Object.assign(metrics, { eval_loss: scored.loss, eval_accuracy: scored.accuracy });
    return { update, names: model.trainableNames.slice(), numExamples: result.numExamples, metrics };
  } finally {
    parts.dispose();
  }
}

/**
 * What a client sends for a scoring round (the Python agent's LocalTrainer.score): `start`'s
 * figures on the samples the plan's holdout keeps aside, {numExamples (those samples), metrics:
 * {eval_loss, eval_accuracy}}; null when none are held out. Nothing is trained.
 */
export async function scoreModel(model, start, x, y, plan) {
  model.setWeights(start);
  const parts = splitSamples(x, y, readPlan(plan).holdout);
  try {
    if (!parts.held) return null;
    const scored = await evaluate(model, ...parts.held);
    const metrics = { eval_loss: scored.loss, eval_accuracy: scored.accuracy };
    return { numExamples: parts.held[1].shape[0], metrics };
  } finally {
    parts.dispose();
  }
}

/** x, y split by `holdoutSplit`: {train: [x, y], held: [x, y] or null, dispose()} (of what it made). */
function splitSamples(x, y, fraction) {
  const { train, held } = holdoutSplit(x.shape[0], fraction);
  if (!held.length) return { train: [x, y], held: null, dispose() {} };
  const pick = (indices) =>
    tf.tidy(() => {
      const index = tf.tensor1d(indices, "int32");
      return [tf.gather(x, index), tf.gather(y, index)];
    });
  const parts = { train: pick(train), held: pick(held) };
  return { ...parts, dispose: () => tf.dispose([...parts.train, ...parts.held]) };
}
