import assert from "node:assert/strict";
import { test } from "node:test";

import { privacy, secagg } from "../../src/index.js";

const { NoisePlanError, checkNoise, quantisedSensitivity } = privacy;
const DIM = 1000;

/** A plan whose noise gives multiplier z over m of n clients, as the coordinator sizes it (σ_c a hair up). */
function plan(z, { n = 10, m = 5, clip = 1, dpClip = 0.5, ...changes } = {}) {
  const scale = new secagg.Quantizer(clip, n).scale;
  const dpNoiseStddev = ((z * quantisedSensitivity(dpClip, scale, DIM)) / Math.sqrt(m)) * (1 + 1e-7);
  return { clip, maxClients: n, dpClip, dpNoiseStddev, dpMinClients: m, dpNoiseMultiplier: z, ...changes };
}

test("distributed: a consistent plan passes and returns the multiplier its noise gives", () => {
  const z = checkNoise(plan(0.8), DIM);
  assert.ok(z >= 0.8 && z < 0.8 * (1 + 1e-6), `${z}`);
  assert.equal(checkNoise(plan(0.8), DIM, 0.8), z, "a floor the plan meets");
  assert.equal(checkNoise({ clip: 1, maxClients: 10 }, DIM), 0, "no noise, no floor: nothing to check");
});

test("distributed: the multiplier is σ_c·√m over the quantised sensitivity, so more coordinates need more noise", () => {
  const p = plan(0.8);
  const scale = new secagg.Quantizer(p.clip, p.maxClients).scale;
  const expected = (p.dpNoiseStddev * Math.sqrt(p.dpMinClients)) / (p.dpClip * scale + 2 * Math.sqrt(DIM));
  assert.equal(checkNoise(p, DIM), expected);
  assert.throws(() => checkNoise(p, 100 * DIM), /states noise multiplier 0.8, but its noise gives 0\.7\d+ over 5 clients/);
});

test("distributed: plans that state more than their noise gives, or less than the device's floor, are refused", () => {
  const cases = [
    [{ ...plan(0.8), dpNoiseMultiplier: 0.9 }, 0, /states noise multiplier 0.9, but its noise gives 0\.8000/],
    [plan(0.8), 1, /gives noise multiplier 0\.8000\d+ over 5 clients; this device requires ≥ 1/],
    [{ clip: 1, maxClients: 10 }, 0.5, /adds no noise on this device; it requires a noise multiplier ≥ 0.5/],
    [{ clip: 1, maxClients: 10, dpNoiseMultiplier: 1 }, 0, /states noise multiplier 1 but adds no noise/],
    [{ ...plan(0.8), dpClip: 0 }, 0, /adds noise without a dpClip/],
    [{ ...plan(0.8), dpNoiseStddev: 1.5 }, 0, /dpNoiseStddev must lie in \[2, 2\^40\] integer units, got 1.5/],
    [{ ...plan(0.8), dpMinClients: 11 }, 0, /dpMinClients must lie in 1..maxClients=10, got 11/],
    [{ ...plan(0.8), dpNoiseMultiplier: Number.NaN }, 0, /dpNoiseMultiplier must be a finite number ≥ 0, got NaN/],
    [{ ...plan(0.8), dpClip: -1 }, 0, /dpClip must be a finite number ≥ 0, got -1/],
    [{ ...plan(0.8), clip: 0 }, 0, /the plan's quantiser is invalid: clip must be a finite number > 0/],
  ];
  for (const [p, floor, message] of cases) {
    assert.throws(() => checkNoise(p, DIM, floor), (e) => e instanceof NoisePlanError && message.test(e.message));
  }
});

test("distributed: noise that could wrap the 32-bit sum is refused; the quantiser says how much room there is", () => {
  const tight = plan(0.8, { clip: 0.5, dpClip: 0.5, n: 1000, m: 2 }); // full-range values fill the 32 bits
  assert.throws(() => checkNoise(tight, DIM), /leaves no room for the noise: 1000 devices at σ_c/);
  const quantizer = new secagg.Quantizer(4, 10);
  const room = quantizer.noiseRoom(0.5);
  assert.equal(room, 2 ** 31 - 1 - 10 * (0.5 * (1 + 2 ** -20) * quantizer.scale + 2));
  const fits = room / (secagg.NOISE_TAILS * Math.sqrt(10));
  assert.deepEqual([quantizer.toleratesNoise(fits, 0.5), quantizer.toleratesNoise(fits * 1.001, 0.5)], [true, false]);
  assert.throws(() => quantizer.noiseRoom(0), /bound must be a finite number > 0/);
  assert.throws(() => quantizer.toleratesNoise(-1, 0.5), /clientStddev must be a finite number >= 0/);
});
