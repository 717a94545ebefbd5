/**
 * Client-level differential privacy on the device, as fedge.shared.privacy (docs/privacy.md):
 *
 *     clipping.js     clipNorm: per-update L2 clipping; quantisedSensitivity: that bound once quantised
 *     noise.js        discreteGaussian: exact samples, the noise added before masking
 *     distributed.js  checkNoise: validates a secure round's DP numbers, returns the multiplier they give
 */

export { clipNorm, quantisedSensitivity } from "./clipping.js";
export { NoisePlanError, checkNoise } from "./distributed.js";
export {
  MAX_SIGMA,
  MIN_CLIENT_SIGMA,
  RandomWords,
  discreteGaussian,
  exactCoin,
  expNegBounds,
  quickCoin,
} from "./noise.js";
