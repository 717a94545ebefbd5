import "@tensorflow/tfjs-backend-wasm";

import { replayEngineVectors } from "./engine-vectors.js";

replayEngineVectors("wasm"); // with the Conv2DBackpropFilter shim, which selectBackend registers
