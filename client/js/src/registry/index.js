/**
 * Published models on the device (docs/registry.md):
 *
 *     verify.js   verifyModel: the coordinator's Ed25519 signature, the manifest, the model's digest
 *     predict.js  predict: ONNX Runtime (onnxruntime-web) on verified bytes, the manifest's normalisation
 */

export { ModelRefused, fingerprint, verifyModel } from "./verify.js";
export { describePrediction, predict } from "./predict.js";
