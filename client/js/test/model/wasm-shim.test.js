import assert from "node:assert/strict";
import { before, test } from "node:test";

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

import { registerWasmConv2DBackpropFilter, selectBackend } from "../../src/model/index.js";

const filterGradient = (strides, pad) =>
  tf.tidy(() => {
    const x = tf
      .range(0, 2 * 6 * 6 * 2)
      .reshape([2, 6, 6, 2])
      .div(50);
    const w = tf
      .range(0, 3 * 3 * 2 * 4)
      .reshape([3, 3, 2, 4])
      .div(-40);
    return tf
      .grad((filter) => tf.conv2d(x, filter, strides, pad).square().sum())(w)
      .dataSync();
  });

before(async () => assert.equal(await selectBackend({ order: ["wasm"] }), "wasm"));

test("wasm shim: the filter gradient matches the cpu backend's, for 'valid' and 'same' padding", async () => {
  assert.equal(registerWasmConv2DBackpropFilter(tf), false, "selectBackend registered it already");
  for (const pad of ["valid", "same"]) {
    const wasm = filterGradient(1, pad);
    await tf.setBackend("cpu");
    const cpu = filterGradient(1, pad);
    await tf.setBackend("wasm");
    wasm.forEach((v, i) =>
      assert.ok(Math.abs(v - cpu[i]) <= 1e-4 * Math.max(1, Math.abs(cpu[i])), `${pad} [${i}]: ${v} vs ${cpu[i]}`),
    );
  }
});

test("wasm shim: a strided convolution's gradient is refused, not computed wrongly", () => {
  assert.throws(
    () => filterGradient(2, "valid"),
    /stride 1, dilation 1, .*: got strides \[2,2\]; train this model on the cpu, webgl or webgpu backend/,
  );
});
