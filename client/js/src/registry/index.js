/**
 * Published models on the device (docs/registry.md):
 *
 *     verify.js   verifyModel: the coordinator's Ed25519 signature, the manifest, the model's digest
 *     predict.js  predict: ONNX Runtime (onnxruntime-web) on verified bytes, the manifest's normalisation
 *     engine.js   predictWithEngine: the same with the TF.js engine (the page: no ONNX Runtime to ship)
 *     onnx.js     readOnnxModel: the spec and weights fedge's export stores in the ONNX file
 *     samples.js  what both share: samples made ready as the manifest says, a prediction in words
 */

export { ModelRefused, fingerprint, verifyModel } from "./verify.js";
export { describePrediction, predict } from "./predict.js";
export { modelFromOnnx, predictWithEngine } from "./engine.js";
export { readOnnxModel } from "./onnx.js";
export { prepareSamples } from "./samples.js";
