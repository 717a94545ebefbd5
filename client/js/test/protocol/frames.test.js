import assert from "node:assert/strict";
import { test } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";

import {
  AssignmentSchema,
  CheckInRequestSchema,
  CheckInResponseSchema,
  DownloadModelRequestSchema,
  ModelChunkSchema,
  UpdateChunkSchema,
  UploadUpdateResponseSchema,
  UpdateStatus,
} from "../../src/gen/fedge/v1/coordinator_pb.js";
import { GatewayFrameSchema } from "../../src/gen/fedge/v1/gateway_pb.js";
import { GatewayError, decodeFrame, decodeResponse, encodeRequest } from "../../src/protocol/index.js";

const gatewayFrame = (fields) => toBinary(GatewayFrameSchema, create(GatewayFrameSchema, fields));

test("frames: a unary request names its method, carries the request and ends the call", () => {
  const request = create(CheckInRequestSchema, { credential: "secret", platform: "browser-chromium" });
  const frame = decodeFrame(encodeRequest({ call: 3, method: "CheckIn", message: request }));
  assert.equal(frame.call, 3);
  assert.equal(frame.method, "CheckIn");
  assert.equal(frame.end, true);
  assert.deepEqual(frame.message, toBinary(CheckInRequestSchema, request));
});

test("frames: an upload is a header frame that names the method, then data frames, the last with end", () => {
  const header = create(UpdateChunkSchema, { part: { case: "header", value: { taskId: "har", roundId: 7n } } });
  const data = create(UpdateChunkSchema, { part: { case: "data", value: new Uint8Array([1, 2, 3]) } });
  const first = decodeFrame(encodeRequest({ call: 1, method: "UploadUpdate", message: header, end: false }));
  const last = decodeFrame(encodeRequest({ call: 1, method: "UploadUpdate", message: data, first: false, end: true }));
  assert.deepEqual([first.method, first.end, last.method, last.end], ["UploadUpdate", false, "", true]);
});

test("frames: a unary reply decodes to the method's response", () => {
  const reply = create(CheckInResponseSchema, {
    outcome: {
      case: "assignment",
      value: create(AssignmentSchema, { taskId: "har", roundId: 2n ** 63n + 5n, round: 4 }),
    },
  });
  const decoded = decodeResponse(
    gatewayFrame({ call: 3, message: toBinary(CheckInResponseSchema, reply), end: true }),
    "CheckIn",
  );
  assert.equal(decoded.call, 3);
  assert.equal(decoded.end, true);
  assert.equal(decoded.message.outcome.case, "assignment");
  assert.equal(decoded.message.outcome.value.roundId, 2n ** 63n + 5n, "uint64 round ids survive as BigInt");
});

test("frames: an empty reply is the default response, not a missing one", () => {
  const decoded = decodeResponse(gatewayFrame({ call: 2, end: true }), "UploadUpdate");
  assert.equal(decoded.message.$typeName, UploadUpdateResponseSchema.typeName);
  assert.equal(decoded.message.status, UpdateStatus.UNSPECIFIED);
});

test("frames: a download streams chunks, then an end frame without a message", () => {
  const chunk = create(ModelChunkSchema, { offset: 8n, data: new Uint8Array([9, 9]) });
  const middle = decodeResponse(gatewayFrame({ call: 5, message: toBinary(ModelChunkSchema, chunk) }), "DownloadModel");
  assert.equal(middle.end, false);
  assert.deepEqual(middle.message.data, new Uint8Array([9, 9]));
  const last = decodeResponse(gatewayFrame({ call: 5, end: true }), "DownloadModel");
  assert.deepEqual(last, { call: 5, end: true });
});

test("frames: a failed call's status comes back as a GatewayError with the gRPC code and sentence", () => {
  const decoded = decodeResponse(
    gatewayFrame({ call: 4, end: true, status: { code: 9, message: "round 3 is over" } }),
    "CheckIn",
  );
  assert.ok(decoded.error instanceof GatewayError);
  assert.equal(decoded.error.code, 9);
  assert.equal(decoded.error.message, "round 3 is over");
  assert.equal(decoded.message, undefined);
});

test("frames: the daemon away is worth another try, a refusal is not (as the Python TransportError says)", () => {
  assert.deepEqual(
    [14, 4, 13, 16, 9, 3].map((code) => new GatewayError(code, "").retryable),
    [true, true, true, false, false, false],
  );
});

test("frames: requests that do not fit their method are refused with the rule", () => {
  const download = create(DownloadModelRequestSchema, {});
  assert.throws(
    () => encodeRequest({ call: 1, method: "CheckIn", message: download }),
    /CheckIn expects a fedge.v1.CheckInRequest, got fedge.v1.DownloadModelRequest/,
  );
  assert.throws(
    () => encodeRequest({ call: 1, method: "Register", message: download }),
    /expected a Coordinator method .*, got "Register"/,
  );
  assert.throws(
    () => encodeRequest({ call: 0, method: "DownloadModel", message: download }),
    /call id must be an int in 1..2\^32-1, got 0/,
  );
  assert.throws(
    () => encodeRequest({ call: 1, method: "DownloadModel", message: download, end: false }),
    /takes one request frame/,
  );
});
