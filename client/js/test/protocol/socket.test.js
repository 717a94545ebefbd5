import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";

import {
  CheckInResponseSchema,
  EnrollResponseSchema,
  ModelChunkSchema,
  UpdateStatus,
  UploadUpdateResponseSchema,
} from "../../src/gen/fedge/v1/coordinator_pb.js";
import { CoordinatorClient, GatewayError, GatewaySocket } from "../../src/protocol/index.js";
import { FakeGateway } from "./fake-gateway.js";

const URL = "ws://gateway.test/ws";

function clientOf(gateway, options = {}) {
  return new CoordinatorClient(URL, { WebSocket: gateway.WebSocket, ...options });
}

test("socket: a unary call is one frame naming the method, with end, and one reply", async () => {
  const gateway = new FakeGateway((frame, g) =>
    g.reply(frame.call, {
      method: "Enroll",
      message: create(EnrollResponseSchema, { clientId: "c-1", credential: "s" }),
    }),
  );
  const reply = await clientOf(gateway).enroll({ token: "t", platform: "browser-chromium/wasm" });
  assert.equal(reply.clientId, "c-1");
  const [frame] = gateway.frames;
  assert.deepEqual([frame.call, frame.method, frame.end], [1, "Enroll", true]);
  assert.equal(FakeGateway.request(frame, "Enroll").platform, "browser-chromium/wasm");
  assert.equal(gateway.socket.binaryType, "arraybuffer");
});

test("socket: a refusal throws GatewayError with the gRPC code and sentence, and the socket carries on", async () => {
  const gateway = new FakeGateway((frame, g) => {
    if (frame.call === 1) g.reply(1, { status: { code: 16, message: "unknown credential" } });
    else g.reply(frame.call, { method: "CheckIn", message: create(CheckInResponseSchema) });
  });
  const client = clientOf(gateway);
  const error = await client.checkIn({ credential: "forged" }).catch((e) => e);
  assert.ok(error instanceof GatewayError);
  assert.deepEqual([error.code, error.codeName, error.message], [16, "UNAUTHENTICATED", "unknown credential"]);
  await client.checkIn({ credential: "good" });
  assert.equal(gateway.sockets.length, 1, "no reconnect after a refused call");
});

test("socket: calls in flight together get their own replies, whatever the order", async () => {
  const pending = [];
  const gateway = new FakeGateway((frame) => pending.push(frame.call));
  const client = clientOf(gateway);
  const first = client.checkIn({ credential: "a" });
  const second = client.enroll({ token: "t" });
  while (pending.length < 2) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(pending, [1, 2]);
  gateway.reply(2, { method: "Enroll", message: create(EnrollResponseSchema, { clientId: "second" }) });
  gateway.reply(1, {
    method: "CheckIn",
    message: create(CheckInResponseSchema, { outcome: { case: "retry", value: { retryAfterMs: 7 } } }),
  });
  assert.equal((await second).clientId, "second");
  assert.equal((await first).outcome.value.retryAfterMs, 7);
  assert.equal(client.socket.openCalls, 0);
});

function streamChunks(chunks) {
  return (frame, g) => {
    for (const [offset, bytes] of chunks) {
      g.reply(frame.call, {
        method: "DownloadModel",
        message: create(ModelChunkSchema, { offset: BigInt(offset), data: new Uint8Array(bytes) }),
        end: false,
      });
    }
    g.reply(frame.call, { end: true });
  };
}

test("socket: a download assembles the chunks into the announced number of bytes", async () => {
  const gateway = new FakeGateway(
    streamChunks([
      [0, [1, 2, 3]],
      [3, [4, 5]],
    ]),
  );
  const seen = [];
  const data = await clientOf(gateway).downloadModel({ credential: "c", taskId: "t", roundId: 9n }, 5n, {
    onProgress: (n, total) => seen.push(`${n}/${total}`),
  });
  assert.deepEqual([...data], [1, 2, 3, 4, 5]);
  assert.deepEqual(seen, ["3/5", "5/5"]);
  assert.equal(FakeGateway.request(gateway.frames[0], "DownloadModel").roundId, 9n);
});

test("socket: a download with a gap or too few bytes is DATA_LOSS", async () => {
  for (const chunks of [
    [
      [0, [1, 2]],
      [3, [4, 5]],
    ],
    [[0, [1, 2, 3]]],
    [[0, [1, 2, 3, 4, 5, 6]]],
  ]) {
    const client = clientOf(new FakeGateway(streamChunks(chunks)));
    const error = await client.downloadModel({}, 5).catch((e) => e);
    assert.equal(error.codeName, "DATA_LOSS", error.message);
  }
});

test("socket: an upload is the header frame naming the method, data frames, the last with end", async () => {
  const gateway = new FakeGateway((frame, g) => {
    if (frame.end)
      g.reply(frame.call, {
        method: "UploadUpdate",
        message: create(UploadUpdateResponseSchema, { status: UpdateStatus.ACCEPTED }),
      });
  });
  const data = Uint8Array.from({ length: 10 }, (_, i) => i);
  const reply = await clientOf(gateway).uploadUpdate({ credential: "c", taskId: "t", numExamples: 4n }, data, {
    chunkBytes: 4,
  });
  assert.equal(reply.status, UpdateStatus.ACCEPTED);
  const frames = gateway.frames;
  assert.deepEqual(
    frames.map((f) => [f.method, f.end]),
    [
      ["UploadUpdate", false],
      ["", false],
      ["", false],
      ["", true],
    ],
  );
  const chunks = frames.map((f) => FakeGateway.request(f, "UploadUpdate").part);
  assert.equal(chunks[0].case, "header");
  assert.equal(chunks[0].value.numExamples, 4n);
  assert.deepEqual(
    chunks.slice(1).map((c) => [...c.value]),
    [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ],
  );
});

test("socket: an upload refused at its header stops sending and ends the call with an empty frame", async () => {
  const gateway = new FakeGateway((frame, g, socket) => {
    if (!frame.method) return;
    socket.bufferedAmount = 8 << 20; // a slow network: the next data frame waits, and the refusal wins
    g.reply(frame.call, { status: { code: 9, message: "round 3 is closed" } });
  });
  const client = clientOf(gateway);
  const error = await client.uploadUpdate({ credential: "c" }, new Uint8Array(64), { chunkBytes: 4 }).catch((e) => e);
  assert.equal(error.codeName, "FAILED_PRECONDITION");
  const last = gateway.frames.at(-1);
  assert.ok(gateway.frames.length < 17, `stopped early, sent ${gateway.frames.length} frames`);
  assert.deepEqual([last.method, last.end, last.message.length], ["", true, 0]);
});

test("socket: a socket that closes fails its open calls with UNAVAILABLE; the next call reconnects", async () => {
  const gateway = new FakeGateway((frame, g, socket) => {
    if (g.sockets.length === 1) socket.close(1001, "going away");
    else g.reply(frame.call, { method: "CheckIn", message: create(CheckInResponseSchema) });
  });
  const client = clientOf(gateway);
  const error = await client.checkIn({}).catch((e) => e);
  assert.equal(error.codeName, "UNAVAILABLE");
  assert.match(error.message, /1001: going away/);
  await client.checkIn({});
  assert.equal(gateway.sockets.length, 2);
});

test("socket: a gateway that cannot be reached is UNAVAILABLE, not a hang", async () => {
  const gateway = new FakeGateway();
  gateway.refuseOpen = true;
  const error = await clientOf(gateway)
    .checkIn({})
    .catch((e) => e);
  assert.equal(error.codeName, "UNAVAILABLE");
  assert.match(error.message, /cannot reach the gateway at ws:\/\/gateway.test\/ws/);
});

test("socket: an unknown method is refused before anything is sent", async () => {
  const gateway = new FakeGateway();
  const socket = new GatewaySocket(URL, { WebSocket: gateway.WebSocket });
  await assert.rejects(socket.unary("Train", {}), /expected a Coordinator method/);
  assert.equal(gateway.sockets.length, 0);
});
