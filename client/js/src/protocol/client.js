/**
 * The Coordinator service over the gateway, one method per RPC, as the Python agent's
 * Transport has them (client/transport.py): requests are protobuf-es messages or their plain
 * init objects, replies are messages, and a refusal throws GatewayError with the gRPC code
 * and the coordinator's sentence.
 *
 * Weights come down as ModelChunks and are assembled here into one buffer of the announced
 * size; an update goes up as an UpdateHeader chunk and then data chunks of at most
 * UPLOAD_CHUNK_BYTES, well under the gateway's 4 MiB frame limit.
 */

import { create, isMessage } from "@bufbuild/protobuf";

import {
  AdvertiseKeysRequestSchema,
  CheckInRequestSchema,
  DownloadModelRequestSchema,
  EnrollRequestSchema,
  ShareKeysRequestSchema,
  UnmaskRequestSchema,
  UpdateChunkSchema,
  UpdateHeaderSchema,
} from "../gen/fedge/v1/coordinator_pb.js";
import { GatewayError } from "./frames.js";
import { GatewaySocket } from "./socket.js";

export const UPLOAD_CHUNK_BYTES = 512 * 1024; // what the Python agent sends
const DATA_LOSS = 15;

export const message = (schema, value) => (isMessage(value, schema) ? value : create(schema, value));

export class CoordinatorClient {
  /** `socket`: a GatewaySocket, or the gateway's WebSocket URL (ws://HOST:PORT/ws). */
  constructor(socket, options = {}) {
    this.socket = socket instanceof GatewaySocket ? socket : new GatewaySocket(socket, options);
  }

  enroll(request) {
    return this.socket.unary("Enroll", message(EnrollRequestSchema, request));
  }

  checkIn(request) {
    return this.socket.unary("CheckIn", message(CheckInRequestSchema, request));
  }

  advertiseKeys(request) {
    return this.socket.unary("AdvertiseKeys", message(AdvertiseKeysRequestSchema, request));
  }

  shareKeys(request) {
    return this.socket.unary("ShareKeys", message(ShareKeysRequestSchema, request));
  }

  unmask(request) {
    return this.socket.unary("Unmask", message(UnmaskRequestSchema, request));
  }

  /** The weights an assignment names, as one Uint8Array of `size` bytes (its model_bytes): see assemble. */
  downloadModel(request, size, { onProgress } = {}) {
    const chunks = this.socket.stream("DownloadModel", message(DownloadModelRequestSchema, request));
    return assemble(chunks, size, onProgress);
  }

  /** Streams `header` (an UpdateHeader), then `data` (a Uint8Array) in chunks; the UploadUpdateResponse. */
  uploadUpdate(header, data, { chunkBytes = UPLOAD_CHUNK_BYTES } = {}) {
    return this.socket.upload("UploadUpdate", updateChunks(message(UpdateHeaderSchema, header), data, chunkBytes));
  }

  close() {
    this.socket.close();
  }
}

/**
 * ModelChunks (an async iterable) assembled into one buffer of `size` bytes. Chunks must arrive
 * in order and fill the buffer exactly; anything else is DATA_LOSS, which an agent retries like
 * a broken connection.
 */
export async function assemble(chunks, size, onProgress) {
  const total = Number(size);
  const data = new Uint8Array(total);
  let filled = 0;
  for await (const chunk of chunks) {
    const offset = Number(chunk.offset);
    if (offset !== filled || filled + chunk.data.length > total) {
      throw new GatewayError(
        DATA_LOSS,
        `expected a chunk at offset ${filled} within ${total} bytes, got ${chunk.data.length} bytes at ${offset}`,
      );
    }
    data.set(chunk.data, filled);
    filled += chunk.data.length;
    onProgress?.(filled, total);
  }
  if (filled !== total) throw new GatewayError(DATA_LOSS, `expected ${total} bytes of weights, got ${filled}`);
  return data;
}

/** An UpdateHeader chunk, then `data` in chunks of at most `chunkBytes`: an UploadUpdate stream. */
export function* updateChunks(header, data, chunkBytes = UPLOAD_CHUNK_BYTES) {
  yield create(UpdateChunkSchema, { part: { case: "header", value: header } });
  for (let start = 0; start < data.length; start += chunkBytes) {
    yield create(UpdateChunkSchema, { part: { case: "data", value: data.subarray(start, start + chunkBytes) } });
  }
}
