import { replayEngineVectors } from "./engine-vectors.js";

replayEngineVectors("cpu");
