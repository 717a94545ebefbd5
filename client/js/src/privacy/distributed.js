/**
 * A device's check of a secure round's distributed-DP numbers, as fedge.shared.privacy.distributed
 * `check_noise` makes it (docs/privacy.md). The plan carries the quantiser's clip and maxClients
 * (n), dpClip (C), dpNoiseStddev (σ_c, integer units), dpMinClients (m) and the multiplier z the
 * coordinator states; the device knows its update's length d, so it checks on its own that
 *
 *     z_device = σ_c · √m / (C·s + 2√d) ≥ z,    s = the quantiser's scale, levels / (2·clip)
 *
 * and that n devices' noise fits the quantiser's 32 bits. A coordinator cannot talk it into
 * less noise than it states.
 */

import { Quantizer } from "../secagg/quantize.js";
import { quantisedSensitivity } from "./clipping.js";
import { MAX_SIGMA, MIN_CLIENT_SIGMA } from "./noise.js";

const RELATIVE_SLACK = 1e-9; // float64 recomputation of z_device may differ from the coordinator's by a few ulps

/** A plan whose differential-privacy numbers are invalid, inconsistent, or below what is required. */
export class NoisePlanError extends Error {
  name = "NoisePlanError";
}

/**
 * The noise multiplier this device's noise gives (0 with none), or NoisePlanError saying why the
 * plan is refused. `plan` is the assignment's SecAggPlan; `dim` the update's length; `floor`
 * the least multiplier the device accepts (0: none).
 */
export function checkNoise(plan, dim, floor = 0) {
  // proto3: a field left out reads 0
  const { clip, maxClients, dpClip = 0 } = plan;
  const { dpNoiseStddev: stddev = 0, dpMinClients: m = 0, dpNoiseMultiplier: z = 0 } = plan;
  const numbers = { dpClip, dpNoiseStddev: stddev, dpNoiseMultiplier: z };
  for (const [name, value] of Object.entries(numbers)) {
    if (!(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
      throw new NoisePlanError(`the plan's ${name} must be a finite number ≥ 0, got ${value}`);
    }
  }
  let quantizer;
  try {
    quantizer = new Quantizer(clip, maxClients);
  } catch (error) {
    throw new NoisePlanError(`the plan's quantiser is invalid: ${error.message}`);
  }
  if (!stddev) {
    if (z) throw new NoisePlanError(`the plan states noise multiplier ${z} but adds no noise on devices`);
    if (floor) {
      throw new NoisePlanError(`the plan adds no noise on this device; it requires a noise multiplier ≥ ${floor}`);
    }
    return 0;
  }
  if (!dpClip) throw new NoisePlanError("the plan adds noise without a dpClip: the noise then bounds nothing");
  if (!(stddev >= MIN_CLIENT_SIGMA && stddev <= MAX_SIGMA)) {
    throw new NoisePlanError(
      `the plan's dpNoiseStddev must lie in [${MIN_CLIENT_SIGMA}, 2^40] integer units, got ${stddev}`,
    );
  }
  if (!(Number.isSafeInteger(m) && m >= 1 && m <= maxClients)) {
    throw new NoisePlanError(`the plan's dpMinClients must lie in 1..maxClients=${maxClients}, got ${m}`);
  }
  if (!(Number.isSafeInteger(dim) && dim >= 1)) {
    throw new NoisePlanError(`noise needs an update of ≥ 1 coordinate, got ${dim}`);
  }
  if (!quantizer.toleratesNoise(stddev, dpClip)) {
    throw new NoisePlanError(
      `the plan leaves no room for the noise: ${maxClients} devices at σ_c = ${stddev} could wrap the 32-bit sum ` +
        `with clip ${clip}, dpClip ${dpClip}`,
    );
  }
  const given = (stddev * Math.sqrt(m)) / quantisedSensitivity(dpClip, quantizer.scale, dim);
  if (given < z * (1 - RELATIVE_SLACK)) {
    throw new NoisePlanError(
      `the plan states noise multiplier ${z}, but its noise gives ${given.toPrecision(6)} ` +
        `over ${m} clients for ${dim} coordinates`,
    );
  }
  if (given < floor * (1 - RELATIVE_SLACK)) {
    throw new NoisePlanError(
      `the plan's noise gives noise multiplier ${given.toPrecision(6)} over ${m} clients; ` +
        `this device requires ≥ ${floor}`,
    );
  }
  return given;
}
