/**
 * The browser entry, bundled by `npm run build` into dist/ (which the gateway serves): the core,
 * plus the WebGPU and WASM backends so selectBackend() can pick WebGPU → WebGL → WASM → CPU.
 * The .wasm files are copied next to the bundle and loaded from there: nothing from a CDN.
 */

import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

setWasmPaths(new URL("./", import.meta.url).href);

export * from "./index.js";
