import assert from "node:assert/strict";
import { test } from "node:test";

import { Quantizer } from "../../src/secagg/index.js";
import { secaggVector } from "../helpers.js";

const vector = secaggVector("quantize.json");
const quantizer = new Quantizer(vector.clip, vector.n_clients);

test("quantize: bits and levels are the vector's", () => {
  assert.equal(quantizer.bits, vector.bits);
  assert.equal(quantizer.levels, vector.levels);
  assert.deepEqual(
    [1, 2, 5, 100, 65535].map((n) => new Quantizer(1, n).bits),
    [32, 31, 29, 25, 16],
  );
});

test("quantize: values with their uniforms give the vector's integers (clipping both ends)", () => {
  const { x, uniforms, q } = vector.values;
  assert.deepEqual(Array.from(quantizer.quantizeWith(Float32Array.from(x), uniforms)), q);
});

test("quantize: three clients' updates sum and dequantise to the vector's values", () => {
  const s = vector.sum;
  const quantized = s.updates.map((u, i) => quantizer.quantizeWith(Float32Array.from(u), s.uniforms[i]));
  assert.deepEqual(
    quantized.map((q) => Array.from(q)),
    s.quantized,
  );
  const total = new Uint32Array(quantized[0].length);
  for (const q of quantized) q.forEach((v, m) => (total[m] += v));
  assert.deepEqual(Array.from(total), s.total);
  const sum = quantizer.dequantizeSum(total, s.count);
  assert.deepEqual(Array.from(sum), s.dequantized);
  assert.equal(quantizer.errorBound(s.count), s.error_bound);
  sum.forEach((v, m) => assert.ok(Math.abs(v - s.clipped_sum[m]) < s.error_bound));
});

test("quantize: secure random rounding stays within one step", () => {
  const x = Float64Array.from({ length: 1000 }, (_, i) => Math.sin(i));
  const q = quantizer.quantize(x);
  const back = quantizer.dequantizeSum(q, 1);
  back.forEach((v, m) => assert.ok(Math.abs(v - x[m]) <= quantizer.step + 2 ** -23, `value ${m}`));
});

test("quantize: malformed inputs are refused with the rule", () => {
  assert.throws(() => new Quantizer(0, 3), /clip must be a finite number > 0, got 0/);
  assert.throws(() => new Quantizer(1, 0), /nClients must be an int in 1..65535, got 0/);
  assert.throws(() => quantizer.quantizeWith([NaN], [0.5]), /finite/);
  assert.throws(() => quantizer.quantizeWith([1, 2], [0.5]), /expected one uniform per value \(2\), got 1/);
  assert.throws(() => quantizer.quantizeWith([1], [1]), /uniforms must lie in \[0, 1\), got 1/);
  assert.throws(() => quantizer.dequantizeSum([1, 2], 1), /total must be a Uint32Array, got Array/);
  assert.throws(() => quantizer.dequantizeSum(new Uint32Array(2), 4), /count must be an int in 1..nClients=3, got 4/);
});

test("quantize: a noisy sum that wrapped below 0 reads back as the Python dequantiser reads it", () => {
  const q = new Quantizer(1, 4);
  const zero = q.quantizeWith([0], [0])[0]; // L/2, rounded up: one reporting client of 4
  const noise = [-(2 ** 30), -zero - 1, -5, 7, 2 ** 31 - zero - 2]; // the first two wrap past 0; the window reaches c + 2^31
  const total = Uint32Array.from(noise, (e) => zero + e); // a Uint32Array wraps mod 2^32
  assert.ok(total[0] > 2 ** 31 && total[1] === 2 ** 32 - 1, "wrapped");
  const back = q.dequantizeSum(total, 1);
  noise.forEach((e, m) => {
    const expected = Math.fround((zero + e) * q.step - 1); // the integer the noise made, not its wrap
    assert.equal(back[m], expected, `noise ${e}`);
  });
});
