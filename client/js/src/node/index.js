/**
 * The Node desktop client's entry (`fedge-client/node`), beside the browser's:
 *
 *     grpc.js   GrpcCoordinatorClient: the Coordinator RPCs over gRPC, CoordinatorClient's methods
 *     agent.js  runClient (what bin/fedge-node.js runs), loadFolder, enrollWithRetry, the state file
 */

export * from "../index.js";
export { ClientError, STATE_FILE, enrollWithRetry, loadFolder, nodePlatform, runClient } from "./agent.js";
export { GrpcCoordinatorClient } from "./grpc.js";
