import assert from "node:assert/strict";
import { before, test } from "node:test";

import * as tf from "@tensorflow/tfjs";

import {
  Model,
  evaluate,
  fit,
  holdoutSplit,
  labelLogPrior,
  permutation,
  readPlan,
  seededRandom,
  selectBackend,
  trainUpdate,
} from "../../src/model/index.js";
import { engineVector, float32 } from "../helpers.js";

const seeded = seededRandom; // a test's shuffles are the same every run

/** Two well-separated clusters of (8, 3) windows: label 1 has mean +1, label 0 mean −1. */
function clusters(n, random) {
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  const x = Float32Array.from({ length: n * 24 }, (_, k) => (y[Math.floor(k / 24)] ? 1 : -1) + (random() - 0.5));
  return { x: tf.tensor(x, [n, 8, 3]), y: tf.tensor1d(y, "int32") };
}

before(async () => selectBackend({ order: ["cpu"] }));

test("trainer: the plan is read as the engine's TrainConfig reads it", () => {
  const plan = readPlan({ epochs: 2, batchSize: 16, lr: 0.05, optimizer: "sgd", momentum: 0.9, proximalMu: 0.01 });
  assert.deepEqual(plan, {
    epochs: 2,
    batchSize: 16,
    lr: 0.05,
    optimizer: "sgd",
    momentum: 0.9,
    proximalMu: 0.01,
    logitAdjustment: false,
    steps: 0,
    holdout: 0,
  });
  const snake = readPlan({ epochs: 1, batch_size: 4, lr: 0.1, optimizer: "adam", logit_adjustment: true });
  assert.equal(snake.batchSize, 4, "snake_case JSON too");
  assert.equal(snake.logitAdjustment, true);
  assert.throws(
    () => readPlan({ epochs: 0, batchSize: 4, lr: 0.1, optimizer: "sgd" }),
    /expected epochs >= 1 and batch_size >= 1, got 0 and 4/,
  );
  assert.throws(() => readPlan({ epochs: 1, batchSize: 4, lr: 0, optimizer: "sgd" }), /expected lr > 0, got 0/);
  assert.throws(
    () => readPlan({ epochs: 1, batchSize: 4, lr: 0.1, optimizer: "sgd", holdout: 0.9 }),
    /expected 0 <= holdout <= 0.5, got 0.9/,
  );
  assert.throws(
    () => readPlan({ epochs: 1, batchSize: 4, lr: 0.1, optimizer: "sgd", steps: -1 }),
    /expected steps >= 0 \(0: train for epochs\), got -1/,
  );
  assert.throws(
    () => readPlan({ epochs: 1, batchSize: 4, lr: 0.1, optimizer: "" }),
    /expected optimizer in \[adam,sgd\], got ""/,
  );
});

test("trainer: the label prior is the engine's smoothed log frequency", () => {
  const prior = labelLogPrior(Int32Array.from([0, 0, 0, 2]), 4);
  [4 / 8, 1 / 8, 2 / 8, 1 / 8].forEach((p, c) => assert.ok(Math.abs(Math.exp(prior[c]) - p) < 1e-6, `class ${c}`));
});

test("trainer: logit adjustment keeps a skewed device from pulling the classifier to its class", async () => {
  const biasAfter = async (logitAdjustment) => {
    const random = seeded(11);
    const x = tf.randomNormal([60, 8, 3], 0, 1, "float32", 5);
    const y = tf.tensor1d(Int32Array.from({ length: 60 }, (_, i) => (i < 57 ? 0 : 1)), "int32");
    const model = new Model(engineVector("mlp").spec);
    model.setWeights(engineVector("mlp").weights.map(float32));
    const plan = { epochs: 3, batchSize: 10, lr: 0.1, optimizer: "sgd", momentum: 0.9, logitAdjustment };
    await fit(model, x, y, plan, { random });
    const bias = (await model.getWeights()).at(-1);
    tf.dispose([x, y]);
    model.dispose();
    return bias[0] - bias[3]; // the device's class against one it never saw
  };
  const plain = await biasAfter(false);
  const adjusted = await biasAfter(true);
  assert.ok(plain > 1, `without: the bias learns the device's prior (${plain})`);
  assert.ok(Math.abs(adjusted) < 0.25 * plain, `with: it moves far less (${adjusted} vs ${plain})`);
  assert.equal(tf.memory().numTensors, 0, "the prior is disposed with the rest");
});

test("trainer: a permutation holds every index once", () => {
  const order = permutation(50, seeded(1));
  assert.deepEqual(
    Array.from(order).sort((a, b) => a - b),
    [...Array(50).keys()],
  );
  assert.notDeepEqual(Array.from(order), [...Array(50).keys()]);
});

test("trainer: fit walks every batch of every epoch and learns separable data", async () => {
  const random = seeded(7);
  const { x, y } = clusters(40, random);
  const model = new Model(engineVector("mlp").spec);
  const batches = [];
  const plan = { epochs: 3, batchSize: 16, lr: 0.05, optimizer: "sgd", momentum: 0.9 };
  const result = await fit(model, x, y, plan, { random, onBatch: (b) => batches.push(b) });
  assert.deepEqual(
    batches.map((b) => [b.epoch, b.seen]),
    [
      [0, 16],
      [0, 32],
      [0, 40],
      [1, 56],
      [1, 72],
      [1, 80],
      [2, 96],
      [2, 112],
      [2, 120],
    ],
  );
  assert.equal(result.numExamples, 40);
  assert.ok(result.accuracy > 0.7, `accuracy ${result.accuracy}`);
  assert.ok(batches.at(-1).loss < batches[0].loss, "the loss went down");
  tf.dispose([x, y]);
  model.dispose();
  assert.equal(tf.memory().numTensors, 0, "no tensor is left behind");
});

test("trainer: with steps, fit takes exactly that many, cutting a pass or passing the data again", async () => {
  const { x, y } = clusters(40, seeded(8));
  const model = new Model(engineVector("mlp").spec);
  const walk = async (steps) => {
    const seen = [];
    const plan = { epochs: 5, batchSize: 16, lr: 0.05, optimizer: "sgd", steps };
    await fit(model, x, y, plan, { random: seeded(9), onBatch: (b) => seen.push([b.epoch, b.seen]) });
    return seen;
  };
  assert.deepEqual(await walk(2), [
    [0, 16],
    [0, 32],
  ]);
  assert.deepEqual(await walk(5), [
    [0, 16],
    [0, 32],
    [0, 40],
    [1, 56],
    [1, 72],
  ]);
  tf.dispose([x, y]);
  model.dispose();
});

test("trainer: the update is the trained weights minus the start, and the start is not changed", async () => {
  const { x, y } = clusters(12, seeded(3));
  const model = new Model(engineVector("mlp").spec);
  const start = engineVector("mlp").weights.map(float32);
  const copy = start.map((w) => w.slice());
  const plan = { epochs: 2, batchSize: 5, lr: 0.1, optimizer: "adam", proximalMu: 0.1 };
  const { update, numExamples, metrics } = await trainUpdate(model, start, x, y, plan, { random: seeded(4) });
  assert.deepEqual(start, copy);
  const trained = await model.getWeights();
  update.forEach((u, i) => u.forEach((v, m) => assert.equal(v, Math.fround(trained[i][m] - start[i][m]))));
  assert.ok(
    update.some((u) => u.some((v) => v !== 0)),
    "training moved the weights",
  );
  assert.equal(numExamples, 12);
  assert.deepEqual(Object.keys(metrics), ["train_loss", "train_accuracy"]);
  tf.dispose([x, y]);
  model.dispose();
});

test("trainer: fine-tuning trains and reports only the named parameters", async () => {
  const { x, y } = clusters(12, seeded(5));
  const model = new Model(engineVector("mlp").spec);
  const start = engineVector("mlp").weights.map(float32);
  const plan = { epochs: 1, batchSize: 4, lr: 0.1, optimizer: "sgd", momentum: 0.9, proximalMu: 0.1 };
  const trainable = ["logits/bias", "logits/kernel"];
  const { update, names } = await trainUpdate(model, start, x, y, plan, { trainable, random: seeded(6) });
  assert.deepEqual(names, ["logits/kernel", "logits/bias"], "in model order");
  assert.deepEqual(
    update.map((u) => u.length),
    [256, 4],
  );
  assert.ok(update[0].some((v) => v !== 0));
  assert.deepEqual(
    (await model.getWeights()).slice(0, 4),
    start.slice(0, 4),
    "the frozen parameters kept their values",
  );
  await assert.rejects(
    trainUpdate(model, start, x, y, plan, { trainable: ["head/kernel"] }),
    /mlp: expected parameter names of the model, got head\/kernel/,
  );
  const all = await trainUpdate(model, start, x, y, plan, { random: seeded(6) });
  assert.equal(all.names.length, 6, "no names: every parameter trains again");
  tf.dispose([x, y]);
  model.dispose();
});

test("trainer: dropout is on while training and off otherwise", () => {
  const v = engineVector("squeezenet-mini");
  const model = new Model(v.spec);
  const x = tf.tensor(float32(v.x.data), v.x.shape);
  const run = (training) => tf.tidy(() => model.apply(x, { training }).dataSync());
  assert.deepEqual(run(false), run(false));
  assert.notDeepEqual(run(true), run(true));
  x.dispose();
  model.dispose();
});

test("trainer: data that cannot be trained on is refused", async () => {
  const model = new Model(engineVector("mlp").spec);
  const plan = { epochs: 1, batchSize: 4, lr: 0.1, optimizer: "sgd" };
  const [x, y] = [tf.zeros([0, 8, 3]), tf.zeros([0], "int32")];
  await assert.rejects(fit(model, x, y, plan), /cannot train on an empty dataset/);
  const [x2, y2] = [tf.zeros([3, 8, 3]), tf.zeros([2], "int32")];
  await assert.rejects(fit(model, x2, y2, plan), /expected one label per sample \(3\), got 2/);
  tf.dispose([x, y, x2, y2]);
  model.dispose();
});

test("trainer: a holdout split is fixed, disjoint, and keeps a sample on each side", () => {
  const { train, held } = holdoutSplit(20, 0.25);
  assert.equal(held.length, 5);
  assert.deepEqual([...train, ...held].sort((a, b) => a - b), [...Array(20).keys()]);
  assert.deepEqual(holdoutSplit(20, 0.25), { train, held }, "the same samples every round");
  assert.notDeepEqual(Array.from(held), [0, 1, 2, 3, 4], "a shuffle, not the first samples");
  assert.equal(holdoutSplit(2, 0.5).train.length, 1);
  assert.equal(holdoutSplit(3, 0.01).held.length, 1, "at least one held out");
  assert.equal(holdoutSplit(1, 0.5).held.length, 0, "one sample trains");
  assert.equal(holdoutSplit(10, 0).held.length, 0);
});

test("trainer: with a holdout the device scores the model it received on samples it never trains on", async () => {
  const { x, y } = clusters(40, seeded(12));
  const model = new Model(engineVector("mlp").spec);
  const start = engineVector("mlp").weights.map(float32);
  model.setWeights(start);
  const { held } = holdoutSplit(40, 0.25);
  const index = tf.tensor1d(held, "int32");
  const [xh, yh] = [tf.gather(x, index), tf.gather(y, index)];
  const received = await evaluate(model, xh, yh);
  const plan = { epochs: 2, batchSize: 8, lr: 0.05, optimizer: "sgd", holdout: 0.25 };
  const { numExamples, metrics } = await trainUpdate(model, start, x, y, plan, { random: seeded(13) });
  assert.equal(numExamples, 30, "the update weighs what trained");
  assert.equal(metrics.eval_loss, received.loss, "scored before training");
  assert.equal(metrics.eval_accuracy, received.accuracy);
  const after = await evaluate(model, xh, yh);
  assert.ok(after.loss < received.loss, `training moved it on the held-out samples (${after.loss} < ${received.loss})`);
  const plain = await trainUpdate(model, start, x, y, { ...plan, holdout: 0 }, { random: seeded(13) });
  assert.deepEqual(Object.keys(plain.metrics), ["train_loss", "train_accuracy"]);
  assert.equal(plain.numExamples, 40);
  tf.dispose([x, y, index, xh, yh]);
  model.dispose();
  assert.equal(tf.memory().numTensors, 0, "the split's tensors are disposed");
});
