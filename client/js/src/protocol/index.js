/** The wire: generated protobuf-es messages and the WebSocket framing of the Coordinator's RPCs. */

export {
  GatewayError,
  STATUS_NAMES,
  coordinatorMethod,
  decodeFrame,
  decodeResponse,
  encodeRequest,
  readResponse,
} from "./frames.js";
export { CoordinatorClient, UPLOAD_CHUNK_BYTES } from "./client.js";
export { GatewaySocket, UNAVAILABLE } from "./socket.js";
export * as coordinator from "../gen/fedge/v1/coordinator_pb.js";
export * as gateway from "../gen/fedge/v1/gateway_pb.js";
