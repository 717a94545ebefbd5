/**
 * Weights and updates on the wire (docs/protocol.md): raw little-endian bytes, tensor after
 * tensor in the order of their TensorSpecs, each C-ordered. Only float32 weights come down;
 * updates go up as float32, or as one uint32 vector when they are masked.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The TensorSpecs as {name, dtype, shape: number[], size}. */
export function readSpecs(tensors) {
  return tensors.map((t) => {
    const shape = Array.from(t.shape, Number);
    return { name: t.name, dtype: t.dtype, shape, size: shape.reduce((a, b) => a * b, 1) };
  });
}

/** The downloaded bytes cut into one Float32Array per spec; refuses another dtype or size. */
export function decodeWeights(specs, bytes) {
  checkHost();
  const expected = specs.reduce((n, s) => n + 4 * s.size, 0);
  if (bytes.length !== expected) {
    throw new RangeError(`expected ${expected} bytes for ${specs.length} float32 tensors, got ${bytes.length}`);
  }
  let offset = 0;
  return specs.map((spec) => {
    if (spec.dtype !== "float32") throw new TypeError(`expected float32 weights, got ${spec.dtype} for ${spec.name}`);
    const start = bytes.byteOffset + offset;
    offset += 4 * spec.size;
    return new Float32Array(bytes.buffer.slice(start, start + 4 * spec.size)); // a copy: aligned, and ours
  });
}

/** Typed arrays (Float32Array or Uint32Array) as their little-endian bytes, one after another. */
export function encodeArrays(arrays) {
  checkHost();
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.byteLength, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += a.byteLength;
  }
  return out;
}

/** Float arrays joined into one Float32Array (the order SecAgg quantises them in). */
export function flatten(arrays) {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

function checkHost() {
  if (!LITTLE_ENDIAN) throw new Error("this client reads and writes tensors on little-endian hosts only");
}
