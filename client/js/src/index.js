/**
 * fedge-client's core, the same in the browser and in Node:
 *
 *     secagg     SecAgg+ on WebCrypto, byte for byte the Python fedge.shared.secagg
 *     privacy    clipping, exact discrete Gaussian noise and the device's check of a DP plan
 *     model      the engine's model specs as TF.js models, its optimisers and local training loop
 *     protocol   the generated protobuf-es messages, the gateway's framing, its WebSocket client
 *     agent      the check-in loop: train when asked, SecAgg stages, progress events
 *     tf         the TF.js instance the models use (build input tensors with this one)
 */

export * as secagg from "./secagg/index.js";
export * as privacy from "./privacy/index.js";
export * from "./model/index.js";
export * from "./protocol/index.js";
export * from "./agent/index.js";
export * as tf from "@tensorflow/tfjs";
