/**
 * The TF.js side of the engine (fedge.shared.nn): models built from the same JSON specs with
 * weights in the same order and layout, the same optimisers, the same local training loop.
 *
 *     spec.js        reading a spec, SpecError
 *     layers.js      one TF.js layer per spec layer
 *     model.js       Model: build, apply, getWeights / setWeights as flat float32 arrays
 *     optimizers.js  SGD (momentum), Adam, FedProx's proximal term, as the engine steps them
 *     trainer.js     readPlan, fit, trainUpdate (the update and metrics a round asks for)
 *     backend.js     selectBackend: WebGPU → WebGL → WASM → CPU; checkTrainable
 *     wasm-shim.js   the Conv2DBackpropFilter kernel the wasm backend lacks (stride 1)
 */

export { BACKEND_ORDER, checkTrainable, selectBackend } from "./backend.js";
export { Model, checkWeights } from "./model.js";
export { Adam, OPTIMIZERS, Optimizer, SGD, proximalTerm } from "./optimizers.js";
export { LAYER_KINDS, SpecError, readSpec } from "./spec.js";
export {
  evaluate,
  fit,
  holdoutSplit,
  labelLogPrior,
  makeOptimizer,
  permutation,
  readPlan,
  scoreModel,
  seededRandom,
  softmaxCrossEntropy,
  trainStep,
  trainUpdate,
} from "./trainer.js";
export { registerWasmConv2DBackpropFilter } from "./wasm-shim.js";
