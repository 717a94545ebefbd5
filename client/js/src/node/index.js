/**
 * The Node desktop client's entry (`fedge-client/node`), beside the browser's:
 *
 *     grpc.js   GrpcCoordinatorClient: the Coordinator RPCs over gRPC, CoordinatorClient's methods
 *     agent.js   runClient (what `fedge-node run` runs), loadFolder, enrollWithRetry, the state file
 *     models.js  predictCommand (`fedge-node predict`): fetch, verify, run a published model
 */

export * from "../index.js";
export { ClientError, STATE_FILE, enrollWithRetry, loadFolder, nodePlatform, runClient } from "./agent.js";
export { GrpcCoordinatorClient } from "./grpc.js";
export { fetchPublished, predictCommand, readSamples } from "./models.js";
export * as registry from "../registry/index.js";
