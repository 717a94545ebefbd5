import assert from "node:assert/strict";
import { before, test } from "node:test";

import * as tf from "@tensorflow/tfjs";

import { Model, SpecError, checkTrainable, selectBackend } from "../../src/model/index.js";
import { engineVector } from "../helpers.js";

const spec = (layers, input_shape = [8, 3]) => ({ name: "t", input_shape, layers });

before(async () => selectBackend({ order: ["cpu"] }));

test("model: a squeezenet fire module is a DAG joined on channels, then group-normalised", () => {
  const model = new Model(engineVector("squeezenet-mini").spec);
  assert.deepEqual(model.outputShape, [5]);
  const concat = model.tfModel.getLayer("fire2_concat");
  assert.deepEqual(
    concat.inboundNodes[0].inboundLayers.map((l) => l.name),
    ["fire2_expand1", "fire2_expand3"],
  );
  assert.deepEqual(model.tfModel.getLayer("fire2").outputShape, [null, 6, 6, 64]);
  assert.deepEqual(model.parameterNames.slice(0, 3), ["conv1/kernel", "conv1_norm/gamma", "conv1_norm/beta"]);
  model.dispose();
});

test("model: a group norm normalises each group of channels per sample, then scales and shifts", async () => {
  const spec = {
    name: "norm",
    input_shape: [3, 4],
    layers: [{ type: "groupnorm", name: "norm", groups: 2 }, { type: "flatten" }],
  };
  const model = new Model(spec);
  const gamma = Float32Array.from([1, 2, 3, 4]);
  const beta = Float32Array.from([0, 0, 1, 1]);
  model.setWeights([gamma, beta]);
  const x = tf.tensor3d([[[1, 2, 5, 6], [3, 4, 7, 8], [5, 6, 9, 20]]]);
  const y = (await model.apply(x).data()).slice();
  // group 0 is channels 0-1 over 3 positions: values 1..6, mean 3.5, variance 35/12
  const sd = Math.sqrt(35 / 12 + 1e-5);
  assert.ok(Math.abs(y[0] - (1 - 3.5) / sd) < 1e-5);
  assert.ok(Math.abs(y[1] - (2 * (2 - 3.5)) / sd) < 1e-5);
  // group 1 (channels 2-3) has its own statistics: the outlier 20 moves only it
  const g1 = [5, 6, 7, 8, 9, 20];
  const mean = g1.reduce((a, b) => a + b) / 6;
  const variance = g1.reduce((a, b) => a + (b - mean) ** 2, 0) / 6;
  assert.ok(Math.abs(y[11] - (4 * (20 - mean)) / Math.sqrt(variance + 1e-5) - 1) < 1e-4);
  assert.throws(
    () => new Model({ ...spec, layers: [{ type: "groupnorm", name: "norm", groups: 3 }] }),
    /groupnorm\): expected groups dividing the channels/,
  );
  model.dispose();
});

test("model: weights of the wrong count, shape or type are refused, naming what was expected", async () => {
  const model = new Model(engineVector("mlp").spec);
  const weights = await model.getWeights();
  assert.throws(() => model.setWeights(weights.slice(1)), /mlp: expected 6 tensors, got 5/);
  const short = [...weights];
  short[0] = new Float32Array(3);
  assert.throws(() => model.setWeights(short), /mlp: tensor 0: expected 1536 values for shape \(24, 64\), got 3/);
  short[0] = Array.from(weights[0]);
  assert.throws(() => model.setWeights(short), /tensor 0: expected a Float32Array or a tf.Tensor, got Array/);
  short[0] = tf.zeros([64, 24]);
  assert.throws(() => model.setWeights(short), /tensor 0: expected shape \(24, 64\), got \(64, 24\)/);
  short[0].dispose();
  model.dispose();
});

test("model: weights set as tensors read back as flat arrays", async () => {
  const model = new Model(engineVector("mlp").spec);
  const tensors = model.parameterShapes.map((shape, i) => tf.fill(shape, i + 0.5));
  model.setWeights(tensors);
  assert.deepEqual(
    (await model.getWeights()).map((w) => w[0]),
    [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
  );
  tf.dispose(tensors);
  model.dispose();
});

test("model: an input of the wrong shape is refused", () => {
  const model = new Model(engineVector("mlp").spec);
  const x = tf.zeros([2, 3, 8]);
  assert.throws(() => model.apply(x), /mlp: expected input \(N, 8, 3\), got \(2, 3, 8\)/);
  x.dispose();
  model.dispose();
});

test("model: specs the engine refuses are refused with the layer and the rule", () => {
  const cases = [
    [{ name: "x" }, /expected key 'input_shape'/],
    [spec([]), /expected at least one layer, got none/],
    [spec([{ type: "lstm" }]), /layer 0: expected type in \[.*\], got "lstm"/],
    [
      spec([
        { type: "flatten", name: "a" },
        { type: "flatten", name: "a" },
      ]),
      /layer 1: name 'a' is already used/,
    ],
    [spec([{ type: "dense", units: 4, inputs: ["nowhere"] }]), /inputs \[nowhere\] are not earlier layers/],
    [spec([{ type: "dense", name: "d", units: 4, kernel: 3 }]), /layer 'd' \(dense\): unknown option\(s\) \[kernel\]/],
    [
      spec([{ type: "flatten", name: "f" }, { type: "dense", name: "d", units: 4, kernel_initializer: "ones" }]),
      /layer 'd': expected kernel_initializer in \[glorot_uniform,he_uniform\], got "ones"/,
    ],
    [
      spec([{ type: "dense", name: "d", units: 4 }]),
      /layer 'd' \(dense\): expected a flat input \(add a flatten layer\), got shape \[8,3\]/,
    ],
    [
      spec([{ type: "conv1d", name: "c", filters: 4, kernel_size: 3, activation: "tanh" }]),
      /expected activation 'linear' or 'relu', got "tanh"/,
    ],
    [spec([{ type: "conv2d", name: "c", filters: 4, kernel_size: 3 }]), /layer 'c' \(conv2d\): expected a 3-d input/],
    [spec([{ type: "conv1d", name: "c", filters: 0, kernel_size: 3 }]), /expected filters >= 1, got 0/],
    [spec([{ type: "dropout", name: "d", rate: 1 }]), /expected 0 <= rate < 1, got 1/],
    [
      spec([
        { type: "flatten", name: "f" },
        { type: "concat", name: "j", inputs: ["f"] },
      ]),
      /expected >= 2 inputs equal but for channels/,
    ],
  ];
  for (const [bad, message] of cases)
    assert.throws(
      () => new Model(bad),
      (e) => e instanceof SpecError && message.test(e.message),
      JSON.stringify(bad),
    );
});

test("model: on wasm, a strided convolution is refused before training, on other backends it is not", () => {
  const strided = new Model(
    spec([{ type: "conv2d", name: "c", filters: 2, kernel_size: 3, strides: 2 }, { type: "flatten" }], [9, 9, 1]),
  );
  assert.throws(
    () => checkTrainable(strided, "wasm"),
    /layer 'c': the wasm backend trains convolutions with stride 1 only, got strides 2/,
  );
  checkTrainable(strided, "cpu");
  checkTrainable(new Model(engineVector("digits-cnn").spec), "wasm");
  strided.dispose();
});

test("backend: the first backend of the order that is loaded starts; none is an error that lists why", async () => {
  assert.equal(await selectBackend({ order: ["webgpu", "webgl", "cpu"] }), "cpu");
  await assert.rejects(
    selectBackend({ order: ["webgpu", "webgl"] }),
    /expected one of the backends \[webgpu,webgl\] to start, got none \(webgpu: not loaded; webgl: not loaded\)/,
  );
});
