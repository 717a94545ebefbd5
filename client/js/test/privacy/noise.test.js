import assert from "node:assert/strict";
import { test } from "node:test";

import { privacy } from "../../src/index.js";

const { RandomWords, discreteGaussian, exactCoin, expNegBounds, quickCoin } = privacy;

/** A seeded stand-in for crypto (splitmix32): the same draws every run, so the statistics cannot flake. */
function seeded(seed) {
  let state = seed >>> 0;
  return {
    getRandomValues(array) {
      for (let i = 0; i < array.length; i++) {
        state = (state + 0x9e3779b9) >>> 0;
        let z = state;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        array[i] = (z ^ (z >>> 16)) >>> 0;
      }
      return array;
    },
  };
}

/** P(X = k) ∝ exp(−k²/2σ²) over the integers (the tail past 40σ is nil). */
function pmf(sigma) {
  const reach = Math.ceil(40 * sigma);
  let total = 0;
  for (let k = -reach; k <= reach; k++) total += Math.exp(-(k * k) / (2 * sigma * sigma));
  return (k) => Math.exp(-(k * k) / (2 * sigma * sigma)) / total;
}

/** The discrete Gaussian's variance, Σ k²·P(k). */
function discreteVariance(sigma) {
  const p = pmf(sigma);
  let sum = 0;
  for (let k = -Math.ceil(40 * sigma); k <= Math.ceil(40 * sigma); k++) sum += k * k * p(k);
  return sum;
}

const E_MINUS_1 = "367879441171442321595523770161460867445811131031767834507837"; // exp(−1), 60 digits
const E_MINUS_37_8 = "980365503582182831487924432139067064010066250360114360173159"; // exp(−37/8) × 100, 60 digits

test("noise: exp(−γ) is bracketed exactly enough, small γ and large, from the fraction alone", () => {
  const bits = 190n; // 60 digits hold 2^-190 and more
  for (const [num, den, decimals, shift] of [
    [1n, 1n, E_MINUS_1, 0n],
    [37n, 8n, E_MINUS_37_8, 2n],
  ]) {
    const [low, high] = expNegBounds(num, den, bits);
    const truth = (BigInt(decimals) << bits) / 10n ** (BigInt(decimals.length) + shift); // floor(exp(−γ)·2^bits)
    assert.ok(low <= truth && truth <= high + 1n, `${num}/${den}: ${low} ≤ ${truth} ≤ ${high}`);
    assert.ok(high - low <= 8n, `${num}/${den}: the bracket is ${high - low} units wide`);
  }
  const [low, high] = expNegBounds(0n, 1n, 64n);
  assert.deepEqual([low <= 1n << 64n, high >= 1n << 64n], [true, true], "exp(0) = 1");
  const [tiny, tinyHigh] = expNegBounds(2000n, 1n, 64n);
  assert.deepEqual([tiny, tinyHigh <= 1n], [0n, true], "exp(−2000) is below 2^-64");
  assert.throws(() => expNegBounds(-1n, 1n, 64n), /γ = num\/den ≥ 0/);
});

test("noise: a coin float64 cannot decide is decided by more bits, with the exact probability", () => {
  // the 53-bit digits that hold exp(−1): the coin is heads for the part of that interval below it
  const boundary = Number((BigInt(E_MINUS_1) << 53n) / 10n ** 60n);
  const random = new RandomWords(seeded(7));
  const draws = 20000;
  let heads = 0;
  for (let i = 0; i < draws; i++) heads += exactCoin(boundary, [1n, 1n], random) ? 1 : 0;
  const fraction = Number((((BigInt(E_MINUS_1) << 53n) % 10n ** 60n) * 10000n) / 10n ** 60n) / 10000;
  const sd = Math.sqrt((fraction * (1 - fraction)) / draws);
  assert.ok(Math.abs(heads / draws - fraction) < 5 * sd, `${heads / draws} ≈ ${fraction}`);
  assert.equal(exactCoin(boundary - 10, [1n, 1n], random), true, "clearly below exp(−1)");
  assert.equal(exactCoin(boundary + 10, [1n, 1n], random), false, "clearly above");
  assert.equal(exactCoin(2 ** 53 - 1, [0n, 1n], random), true, "exp(0) = 1: always heads");
});

test("noise: the float64 coin answers only outside its certified margin", () => {
  const stuck = (words) => new RandomWords({ getRandomValues: (a) => a.set(words.slice(0, a.length)) });
  const p = Math.exp(-1);
  const at = Math.floor(p * 2 ** 53); // digits right at exp(−1)
  const words = (d) => [Math.floor(d / 2 ** 32) << 11, d % 2 ** 32, ...new Array(16382).fill(0)];
  const near = stuck(words(at));
  assert.equal(quickCoin(1, near), null, "at the boundary float64 cannot tell");
  assert.equal(near.last, at);
  assert.equal(quickCoin(1, stuck(words(Math.floor(p * 0.9 * 2 ** 53)))), true);
  assert.equal(quickCoin(1, stuck(words(Math.floor(p * 1.1 * 2 ** 53)))), false);
});

test("noise: discrete Gaussian samples follow the pmf, value by value", () => {
  const sigma = 3;
  const n = 200_000;
  const samples = discreteGaussian(n, sigma, seeded(11));
  assert.ok(samples.every(Number.isInteger));
  const p = pmf(sigma);
  for (let k = -8; k <= 8; k++) {
    const count = samples.reduce((c, x) => c + (x === k ? 1 : 0), 0);
    const sd = Math.sqrt(n * p(k) * (1 - p(k)));
    assert.ok(Math.abs(count - n * p(k)) < 5 * sd, `P(${k}): ${count / n} vs ${p(k)}`);
  }
});

test("noise: mean 0 and the discrete Gaussian's variance at the smallest scale and a large one", () => {
  for (const [sigma, n, seed] of [
    [2, 200_000, 3],
    [1.5e6, 50_000, 5],
  ]) {
    const samples = discreteGaussian(n, sigma, seeded(seed));
    const mean = samples.reduce((a, b) => a + b, 0) / n;
    const variance = samples.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
    const exact = sigma < 50 ? discreteVariance(sigma) : sigma * sigma; // at a large scale: σ² to many digits
    assert.ok(Math.abs(mean) < (5 * sigma) / Math.sqrt(n), `σ = ${sigma}: mean ${mean}`);
    assert.ok(Math.abs(variance / exact - 1) < 5 * Math.sqrt(2 / n), `σ = ${sigma}: variance ${variance} vs ${exact}`);
  }
});

test("noise: bad scales and counts are refused", () => {
  for (const sigma of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "3"]) {
    assert.throws(() => discreteGaussian(1, sigma), /finite sigma > 0/);
  }
  assert.throws(() => discreteGaussian(1, 2 ** 41), /sigma ≤ 2\^40/);
  assert.throws(() => discreteGaussian(-1, 2), /count ≥ 0/);
  assert.equal(discreteGaussian(0, 2).length, 0);
});
