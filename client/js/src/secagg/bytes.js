/**
 * Byte helpers shared by the SecAgg modules: checks that say "expected X, got Y", big-endian
 * integers, hex for the golden vectors.
 */

/** What a value is, for error messages: "31 bytes", "string", "null". */
export function describe(value) {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}

/** Returns `value` when it is a Uint8Array of exactly `size` bytes; throws otherwise. */
export function checkBytes(value, size, what) {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${what} must be ${size} bytes (a Uint8Array), got ${describe(value)}`);
  }
  if (value.length !== size) {
    throw new RangeError(`${what} must be exactly ${size} bytes, got ${value.length}`);
  }
  return value;
}

export function isInt(value) {
  return typeof value === "number" && Number.isInteger(value);
}

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function ascii(text) {
  return new TextEncoder().encode(text);
}

export function u16(value) {
  return new Uint8Array([(value >>> 8) & 0xff, value & 0xff]);
}

/** A uint64 big-endian; `value` is a BigInt already range-checked. */
export function u64(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, false);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(hex) {
  if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) {
    throw new TypeError(`expected an even-length hex string, got ${describe(hex)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The bytes read as one big-endian unsigned integer. */
export function bytesToBigInt(bytes) {
  return bytes.length ? BigInt(`0x${toHex(bytes)}`) : 0n;
}

/** `value` (0 ≤ value < 256^size) as `size` big-endian bytes. */
export function bigIntToBytes(value, size) {
  return fromHex(value.toString(16).padStart(2 * size, "0"));
}

/** WebCrypto, in the browser and in Node ≥ 20 alike. */
export function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error("WebCrypto (globalThis.crypto.subtle) is not available: a secure context is needed");
  return s;
}

/** A value as an error message shows it: numbers and strings as written, other things by kind. */
export function repr(value) {
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  return describe(value);
}
