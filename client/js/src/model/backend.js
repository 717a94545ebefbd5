/**
 * Picking the TF.js backend: the fastest that starts, WebGPU → WebGL → WASM → CPU, unless the
 * caller names its own order. Only backends whose package was imported are tried (the browser
 * entry imports webgpu and wasm; tfjs itself brings webgl in a browser and cpu everywhere).
 * Before wasm, the Conv2DBackpropFilter shim is registered so conv layers can train there.
 */

import * as tf from "@tensorflow/tfjs";

import { registerWasmConv2DBackpropFilter } from "./wasm-shim.js";

export const BACKEND_ORDER = Object.freeze(["webgpu", "webgl", "wasm", "cpu"]);

/** Sets and returns the first backend in `order` that is registered and initialises. */
export async function selectBackend({ order = BACKEND_ORDER } = {}) {
  const failures = [];
  for (const name of order) {
    if (!tf.findBackendFactory(name)) {
      failures.push(`${name}: not loaded`);
      continue;
    }
    if (name === "wasm") registerWasmConv2DBackpropFilter(tf);
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
      failures.push(`${name}: did not initialise`);
    } catch (error) {
      failures.push(`${name}: ${error.message}`);
    }
  }
  throw new Error(`expected one of the backends [${order}] to start, got none (${failures.join("; ")})`);
}

/** Refuses, before any step, a model the current backend cannot train (wasm: stride 1 convs only). */
export function checkTrainable(model, backend = tf.getBackend()) {
  if (backend !== "wasm") return;
  for (const layer of model.spec.layers) {
    const strides = [layer.strides ?? 1].flat();
    if (layer.type.startsWith("conv") && strides.some((s) => s !== 1)) {
      throw new Error(
        `layer '${layer.name}': the wasm backend trains convolutions with stride 1 only, ` +
          `got strides ${JSON.stringify(layer.strides)}; use cpu, webgl or webgpu`,
      );
    }
  }
}
