/**
 * One WebSocket to the gateway, shared by every call (docs/gateway.md, "Framing"):
 *
 *     unary      send one frame (end)                 read one frame
 *     stream     send one frame (end)                 read frames until one with end (DownloadModel)
 *     upload     send frames, the last with end       read one frame (UploadUpdate)
 *
 * Calls are numbered here and routed by number, so a check-in can run beside a download. The
 * socket opens on the first call and again on the first call after it closed (the gateway
 * closes idle sockets): a client that waits for its retry_after holds nothing open. When the
 * socket closes, every open call fails with UNAVAILABLE, which an agent treats like a lost
 * coordinator: back off and retry.
 */

import { create } from "@bufbuild/protobuf";

import { GatewayError, coordinatorMethod, decodeFrame, encodeRequest, readResponse } from "./frames.js";

export const UNAVAILABLE = 14;
const OPEN = 1;
const MAX_CALL = 0xffffffff;

/** Frames of one call, in order, for whoever awaits them; or the error that ended the call. */
class CallQueue {
  frames = [];
  ws;
  waiting = null;
  error = null;

  push(frame) {
    if (this.waiting) {
      this.waiting.resolve(frame);
      this.waiting = null;
    } else this.frames.push(frame);
  }

  fail(error) {
    this.error = error;
    this.waiting?.reject(error);
    this.waiting = null;
  }

  /** True when a frame is ready to read (an upload checks this to stop on an early refusal). */
  get ready() {
    return this.frames.length > 0 || this.error !== null;
  }

  next() {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }
}

/**
 * The gateway's WebSocket. `WebSocket` is the constructor to use (the browser's by default; a
 * fake in tests). Uploads wait while more than `highWaterBytes` are buffered, so a large
 * update streams at the network's pace instead of piling up in memory.
 */
export class GatewaySocket {
  #url;
  #WebSocket;
  #connectTimeoutMs;
  #highWaterBytes;
  #ws = null;
  #opening = null;
  #calls = new Map();
  #lastCall = 0;

  constructor(url, { WebSocket = globalThis.WebSocket, connectTimeoutMs = 10_000, highWaterBytes = 1 << 20 } = {}) {
    if (typeof WebSocket !== "function") throw new TypeError("expected a WebSocket constructor, got none");
    this.#url = String(url);
    this.#WebSocket = WebSocket;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#highWaterBytes = highWaterBytes;
  }

  get url() {
    return this.#url;
  }

  /** Calls open now (for tests and progress displays). */
  get openCalls() {
    return this.#calls.size;
  }

  /** One request, one response (Enroll, CheckIn and the SecAgg stages). */
  async unary(method, request) {
    const { id, queue } = await this.#begin(method);
    try {
      queue.ws.send(encodeRequest({ call: id, method, message: request }));
      return this.#message(await queue.next(), method);
    } finally {
      this.#calls.delete(id);
    }
  }

  /** One request, then the responses as they come (DownloadModel). */
  async *stream(method, request) {
    const { id, queue } = await this.#begin(method);
    try {
      queue.ws.send(encodeRequest({ call: id, method, message: request }));
      for (;;) {
        const frame = await queue.next();
        const reply = readResponse(frame, method);
        if (reply.error) throw reply.error;
        if (reply.end) return;
        yield reply.message;
      }
    } finally {
      this.#calls.delete(id);
    }
  }

  /**
   * The `requests` (an iterable or async iterable of the method's request messages, the
   * UpdateHeader chunk first), then the one response (UploadUpdate). A refusal that arrives
   * while frames are still going out stops the sending.
   */
  async upload(method, requests) {
    const { id, queue } = await this.#begin(method);
    try {
      const ended = await this.#sendAll(id, method, requests, queue);
      if (!ended && !queue.error) queue.ws.send(this.#emptyEnd(id, method)); // the gateway drops frames up to it
      return this.#message(await queue.next(), method);
    } finally {
      this.#calls.delete(id);
    }
  }

  /** Close the socket; open calls fail with UNAVAILABLE. */
  close(code = 1000, reason = "client closed") {
    this.#ws?.close(code, reason);
  }

  /** Sends each request, holding one back so the last goes out with end; false when cut short. */
  async #sendAll(id, method, requests, queue) {
    let held = null;
    let first = true;
    for await (const request of requests) {
      if (held !== null) {
        await this.#send(encodeRequest({ call: id, method, message: held, first, end: false }), queue);
        first = false;
        if (queue.ready) return false;
      }
      held = request;
    }
    if (held === null) throw new RangeError(`${method} needs at least one request message, got none`);
    await this.#send(encodeRequest({ call: id, method, message: held, first, end: true }), queue);
    return true;
  }

  async #send(data, queue) {
    while (queue.ws.bufferedAmount > this.#highWaterBytes && !queue.ready) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (queue.error) throw queue.error;
    queue.ws.send(data);
  }

  #emptyEnd(id, method) {
    const empty = create(coordinatorMethod(method).input);
    return encodeRequest({ call: id, method, message: empty, first: false, end: true });
  }

  #message(frame, method) {
    const reply = readResponse(frame, method);
    if (reply.error) throw reply.error;
    return reply.message;
  }

  async #begin(method) {
    coordinatorMethod(method); // refuse an unknown method before touching the network
    const queue = new CallQueue();
    queue.ws = await this.#socket();
    const id = this.#freshId();
    this.#calls.set(id, queue);
    return { id, queue };
  }

  #freshId() {
    do this.#lastCall = this.#lastCall >= MAX_CALL ? 1 : this.#lastCall + 1;
    while (this.#calls.has(this.#lastCall));
    return this.#lastCall;
  }

  async #socket() {
    if (this.#ws?.readyState === OPEN) return this.#ws;
    this.#opening ??= this.#open().finally(() => (this.#opening = null));
    return this.#opening;
  }

  #open() {
    return new Promise((resolve, reject) => {
      const ws = new this.#WebSocket(this.#url);
      ws.binaryType = "arraybuffer";
      const unreachable = (why) => {
        clearTimeout(timer);
        ws.onopen = ws.onclose = ws.onerror = null;
        reject(new GatewayError(UNAVAILABLE, `cannot reach the gateway at ${this.#url}: ${why}`));
      };
      const timer = setTimeout(() => {
        unreachable(`no answer within ${this.#connectTimeoutMs} ms`);
        ws.close();
      }, this.#connectTimeoutMs);
      ws.onerror = () => {}; // the close event that follows says more
      ws.onclose = (event) => unreachable(describeClose(event));
      ws.onopen = () => {
        clearTimeout(timer);
        this.#ws = ws;
        ws.onmessage = (event) => this.#receive(event.data);
        ws.onclose = (event) => this.#closed(ws, event);
        resolve(ws);
      };
    });
  }

  #receive(data) {
    if (typeof data === "string") return; // the gateway sends binary frames only
    const frame = decodeFrame(new Uint8Array(data));
    this.#calls.get(frame.call)?.push(frame); // a frame for a call given up on is dropped
  }

  #closed(ws, event) {
    if (this.#ws === ws) this.#ws = null;
    const error = new GatewayError(UNAVAILABLE, `the gateway closed the socket (${describeClose(event)})`);
    for (const queue of this.#calls.values()) if (queue.ws === ws) queue.fail(error);
  }
}

function describeClose(event) {
  const code = event?.code ?? "no code";
  return event?.reason ? `${code}: ${event.reason}` : `${code}`;
}
