/**
 * A fake gateway behind a fake WebSocket, for the protocol and agent tests: it decodes every
 * frame the client sends and answers with whatever `handle(frame, reply)` decides, so a test
 * scripts the gateway's side call by call (or refuses to open, or closes mid-call).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { coordinatorMethod, decodeFrame } from "../../src/protocol/index.js";
import { GatewayFrameSchema } from "../../src/gen/fedge/v1/gateway_pb.js";

export class FakeGateway {
  sockets = [];
  frames = []; // every frame received, decoded, in order
  refuseOpen = false;

  /** `handle(frame, gateway)` is called for each client frame; it may call gateway.reply(...). */
  constructor(handle = () => {}) {
    this.handle = handle;
    const gateway = this;
    this.WebSocket = class FakeSocket {
      readyState = 0;
      bufferedAmount = 0;
      binaryType = "blob";
      constructor(url) {
        this.url = url;
        gateway.sockets.push(this);
        setTimeout(() => {
          if (gateway.refuseOpen) return this.#closeWith(1006, "");
          this.readyState = 1;
          this.onopen?.({});
        }, 0);
      }
      send(data) {
        if (this.readyState !== 1) throw new Error(`send on a socket in state ${this.readyState}`);
        const frame = decodeFrame(data);
        gateway.frames.push(frame);
        gateway.handle(frame, gateway, this);
      }
      close(code = 1000, reason = "") {
        if (this.readyState >= 2) return;
        this.readyState = 2;
        setTimeout(() => this.#closeWith(code, reason), 0);
      }
      #closeWith(code, reason) {
        this.readyState = 3;
        this.onclose?.({ code, reason });
      }
    };
  }

  get socket() {
    return this.sockets.at(-1);
  }

  /** Send the client a frame for `call` (asynchronously, as a network would). */
  reply(call, { method, message, end = true, status, socket = this.socket } = {}) {
    const bytes = message === undefined ? new Uint8Array() : toBinary(coordinatorMethod(method).output, message);
    const frame = toBinary(GatewayFrameSchema, create(GatewayFrameSchema, { call, message: bytes, end, status }));
    setTimeout(
      () => socket.onmessage?.({ data: frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.length) }),
      0,
    );
  }

  /** A request frame's message, parsed as `method`'s request. */
  static request(frame, method) {
    return fromBinary(coordinatorMethod(method).input, frame.message);
  }
}
