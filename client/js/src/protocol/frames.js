/**
 * GatewayFrame (protos/fedge/v1/gateway.proto): how the browser carries the Coordinator's RPCs
 * over one WebSocket. Each binary frame is one GatewayFrame holding one serialised request or
 * response; a call is numbered by the client and named on its first frame.
 *
 *     unary          Enroll CheckIn AdvertiseKeys ShareKeys Unmask   client 1 (end)   gateway 1 (end)
 *     server stream  DownloadModel                                   client 1 (end)   gateway n, then an end frame
 *     client stream  UploadUpdate                                    client n, end    gateway 1 (end)
 *
 * A failed call's last frame carries a status: the gRPC code and its one sentence. The method
 * table is the generated Coordinator service, so it cannot drift from the proto.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { Coordinator } from "../gen/fedge/v1/coordinator_pb.js";
import { GatewayFrameSchema } from "../gen/fedge/v1/gateway_pb.js";

/** The gRPC status codes by number (grpc/doc/statuscodes.md): what `GatewayError.codeName` reads. */
export const STATUS_NAMES = Object.freeze([
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
]);

/** Failures worth another try: the coordinator away or restarting (client/transport.py's RETRYABLE). */
const RETRYABLE = new Set(["UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "ABORTED", "CANCELLED"]);

/** A call that ended with a non-OK gRPC status; `code` is the numeric gRPC code. */
export class GatewayError extends Error {
  name = "GatewayError";

  constructor(code, message) {
    super(message);
    this.code = code;
  }

  /** "UNAUTHENTICATED", "FAILED_PRECONDITION", ...: the name a Python agent's TransportError carries. */
  get codeName() {
    return STATUS_NAMES[this.code] ?? `CODE_${this.code}`;
  }

  /** Whether the same call may succeed later (as TransportError.retryable). */
  get retryable() {
    return RETRYABLE.has(this.codeName);
  }
}

/** The Coordinator's method descriptor for `name` ("CheckIn", ...); throws for another name. */
export function coordinatorMethod(name) {
  const method = Coordinator.methods.find((m) => m.name === name);
  if (!method) {
    throw new RangeError(
      `expected a Coordinator method (${Coordinator.methods.map((m) => m.name).join(", ")}), got ${JSON.stringify(name)}`,
    );
  }
  return method;
}

function checkCall(call) {
  if (!Number.isInteger(call) || call < 1 || call > 0xffffffff)
    throw new RangeError(`a call id must be an int in 1..2^32-1, got ${call}`);
  return call;
}

/**
 * One request frame for call `call` of Coordinator method `method`: `message` must be that
 * method's request (a protobuf-es message). `first` names the method (the call's first frame);
 * `end` marks the client's last frame of the call (always, but for UploadUpdate's data frames).
 */
export function encodeRequest({ call, method, message, first = true, end = true }) {
  const descriptor = coordinatorMethod(method);
  if (message?.$typeName !== descriptor.input.typeName) {
    throw new TypeError(
      `${method} expects a ${descriptor.input.typeName}, got ${message?.$typeName ?? typeof message}`,
    );
  }
  if (!end && descriptor.methodKind !== "client_streaming") {
    throw new RangeError(`${method} takes one request frame, with end set: got end = false`);
  }
  const frame = create(GatewayFrameSchema, {
    call: checkCall(call),
    method: first ? descriptor.name : "",
    message: toBinary(descriptor.input, message),
    end,
  });
  return toBinary(GatewayFrameSchema, frame);
}

/**
 * A gateway frame for a call of `method`, decoded: {call, end, message} with `message` the
 * method's response (absent on a server stream's closing frame), or a GatewayError as `error`.
 */
export function decodeResponse(data, method) {
  return readResponse(decodeFrame(data instanceof Uint8Array ? data : new Uint8Array(data)), method);
}

/** `decodeResponse` for a frame already decoded (a socket reads the call id first, to route it). */
export function readResponse(frame, method) {
  const descriptor = coordinatorMethod(method);
  const result = { call: frame.call, end: frame.end };
  if (frame.status && frame.status.code !== 0) {
    return { ...result, error: new GatewayError(frame.status.code, frame.status.message) };
  }
  if (frame.end && descriptor.methodKind === "server_streaming") return result;
  return { ...result, message: fromBinary(descriptor.output, frame.message) };
}

/** Any frame, as the gateway would parse it (for tests and fakes of the gateway). */
export function decodeFrame(data) {
  return fromBinary(GatewayFrameSchema, data);
}
