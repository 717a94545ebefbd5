/**
 * The Coordinator service over gRPC (HTTP/2, @connectrpc/connect-node): what the Node desktop
 * client talks to the daemon with, straight to its gRPC port, no gateway. The methods are
 * CoordinatorClient's, so the Agent runs on either: requests are protobuf-es messages or their
 * init objects, a refusal throws GatewayError with the gRPC code and the coordinator's sentence.
 */

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  AdvertiseKeysRequestSchema,
  CheckInRequestSchema,
  Coordinator,
  DownloadModelRequestSchema,
  EnrollRequestSchema,
  ShareKeysRequestSchema,
  UnmaskRequestSchema,
  UpdateHeaderSchema,
} from "../gen/fedge/v1/coordinator_pb.js";
import { UPLOAD_CHUNK_BYTES, assemble, message, updateChunks } from "../protocol/client.js";
import { GatewayError } from "../protocol/frames.js";

export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024; // the Python agent's default (max_message_mb)

export class GrpcCoordinatorClient {
  /**
   * `address`: the daemon's gRPC HOST:PORT. `tls`: false (plaintext), true (TLS trusting Node's CA
   * roots), or `{ ca, identity }`: PEM text to trust instead of the roots, and this client's
   * certificate and key in one PEM text for a daemon that asks for them, as `fedge client --tls` /
   * `--tls-ca` / `--tls-identity`.
   */
  constructor(address, { timeoutMs = 60_000, tls = false } = {}) {
    const nodeOptions = {
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls?.identity ? { cert: tls.identity, key: tls.identity } : {}), // Node reads each block it needs
    };
    this.transport = createGrpcTransport({
      baseUrl: `${tls ? "https" : "http"}://${address}`,
      readMaxBytes: MAX_MESSAGE_BYTES,
      writeMaxBytes: MAX_MESSAGE_BYTES,
      ...(Object.keys(nodeOptions).length ? { nodeOptions } : {}),
    });
    this.stub = createClient(Coordinator, this.transport);
    this.options = { timeoutMs };
  }

  enroll(request) {
    return this.#call(() => this.stub.enroll(message(EnrollRequestSchema, request), this.options));
  }

  checkIn(request) {
    return this.#call(() => this.stub.checkIn(message(CheckInRequestSchema, request), this.options));
  }

  advertiseKeys(request) {
    return this.#call(() => this.stub.advertiseKeys(message(AdvertiseKeysRequestSchema, request), this.options));
  }

  shareKeys(request) {
    return this.#call(() => this.stub.shareKeys(message(ShareKeysRequestSchema, request), this.options));
  }

  unmask(request) {
    return this.#call(() => this.stub.unmask(message(UnmaskRequestSchema, request), this.options));
  }

  downloadModel(request, size, { onProgress } = {}) {
    return this.#call(() => {
      const chunks = this.stub.downloadModel(message(DownloadModelRequestSchema, request), this.options);
      return assemble(chunks, size, onProgress);
    });
  }

  uploadUpdate(header, data, { chunkBytes = UPLOAD_CHUNK_BYTES } = {}) {
    const chunks = asAsync(updateChunks(message(UpdateHeaderSchema, header), data, chunkBytes));
    return this.#call(() => this.stub.uploadUpdate(chunks, this.options));
  }

  close() {} // HTTP/2 sessions close when idle

  async #call(call) {
    try {
      return await call();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      const refused = ConnectError.from(error);
      throw new GatewayError(refused.code ?? Code.Unknown, refused.rawMessage);
    }
  }
}

async function* asAsync(iterable) {
  yield* iterable;
}
