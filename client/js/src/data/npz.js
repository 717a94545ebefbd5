/**
 * Reading NumPy's `.npy` and `.npz` files in a browser, for the sample files of a
 * `fedge data split` folder (docs/client-data.md): `np.savez` writes a zip of `.npy` arrays,
 * stored (or deflated by `np.savez_compressed`), with ZIP64 local headers.
 *
 *     zip   sizes and offsets from the central directory (the local headers say 0xFFFFFFFF),
 *           the data after each local header; deflate through DecompressionStream
 *     npy   "\x93NUMPY", version, header length, a dict literal {'descr', 'fortran_order', 'shape'}
 */

export class DataFileError extends Error {
  name = "DataFileError";
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const ZIP64_EXTRA = 0x0001;
const MAX32 = 0xffffffff;

/** The arrays of an `.npz` file, by name without ".npy": {x: {dtype, shape, data}, ...}. */
export async function readNpz(bytes, name = "file.npz") {
  const arrays = {};
  for (const entry of zipEntries(bytes, name)) {
    if (!entry.name.endsWith(".npy")) continue;
    arrays[entry.name.slice(0, -4)] = readNpy(await entryData(bytes, entry, name), `${name}:${entry.name}`);
  }
  return arrays;
}

function zipEntries(bytes, name) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = bytes.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== EOCD) end--;
  if (end < 0) throw new DataFileError(`${name}: expected a zip archive (an .npz), got no zip directory`);
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const entries = [];
  for (let n = 0; n < count; n++) {
    if (view.getUint32(at, true) !== CENTRAL) throw new DataFileError(`${name}: the zip directory is damaged`);
    const entry = {
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      offset: view.getUint32(at + 42, true),
    };
    const [nameLength, extraLength, commentLength] = [28, 30, 32].map((o) => view.getUint16(at + o, true));
    entry.name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    readZip64(view, at + 46 + nameLength, extraLength, entry);
    entries.push(entry);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** ZIP64's extra field carries, in this order, whichever of the three 32-bit values overflowed. */
function readZip64(view, start, length, entry) {
  for (let at = start; at + 4 <= start + length;) {
    const [id, size] = [view.getUint16(at, true), view.getUint16(at + 2, true)];
    if (id === ZIP64_EXTRA) {
      let field = at + 4;
      for (const key of ["size", "compressedSize", "offset"]) {
        if (entry[key] !== MAX32) continue;
        entry[key] = Number(view.getBigUint64(field, true));
        field += 8;
      }
    }
    at += 4 + size;
  }
}

async function entryData(bytes, entry, name) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(entry.offset, true) !== LOCAL) throw new DataFileError(`${name}: ${entry.name} is damaged`);
  const start = entry.offset + 30 + view.getUint16(entry.offset + 26, true) + view.getUint16(entry.offset + 28, true);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method !== 8) {
    throw new DataFileError(`${name}: expected stored or deflated arrays, got zip method ${entry.method}`);
  }
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** NumPy's type codes: the typed array that holds each, and its name as NumPy prints it. */
const TYPES = {
  f4: [Float32Array, "float32"],
  f8: [Float64Array, "float64"],
  i1: [Int8Array, "int8"],
  i2: [Int16Array, "int16"],
  i4: [Int32Array, "int32"],
  i8: [BigInt64Array, "int64"],
  u1: [Uint8Array, "uint8"],
  u2: [Uint16Array, "uint16"],
  u4: [Uint32Array, "uint32"],
  u8: [BigUint64Array, "uint64"],
};

/** One `.npy` array: {dtype ("float32", "int64", ...), shape, data (a typed array)}; little-endian, C order. */
export function readNpy(bytes, name = "file.npy") {
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") throw new DataFileError(`${name}: expected a NumPy .npy array`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const [headerLength, headerStart] = major === 1 ? [view.getUint16(8, true), 10] : [view.getUint32(8, true), 12];
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([<>|=])([a-z]\d+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) throw new DataFileError(`${name}: the .npy header is not one NumPy writes`);
  if (/'fortran_order':\s*True/.test(header)) throw new DataFileError(`${name}: expected C order, got Fortran order`);
  const [, order, code] = descr;
  const [Type, dtype] = TYPES[code] ?? [];
  if (!Type || (order === ">" && Type.BYTES_PER_ELEMENT > 1)) {
    throw new DataFileError(`${name}: expected little-endian numbers (float32, int64, ...), got '${order}${code}'`);
  }
  const dims = shape[1]
    .split(",")
    .filter((s) => s.trim())
    .map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const start = bytes.byteOffset + headerStart + headerLength;
  if (start - bytes.byteOffset + count * Type.BYTES_PER_ELEMENT > bytes.length) {
    throw new DataFileError(`${name}: expected ${count} values of ${dtype}, got a shorter file`);
  }
  const data = new Type(bytes.buffer.slice(start, start + count * Type.BYTES_PER_ELEMENT));
  return { dtype, shape: dims, data };
}
