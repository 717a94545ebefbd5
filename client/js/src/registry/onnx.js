/**
 * The part of a published ONNX file the page needs to run it with its own engine: the spec
 * `export` stores in the metadata (`fedge.spec`) and the initializers (shared/onnx/weights.py
 * reads the same in Python). A small reader of onnx.proto's wire format: ModelProto, GraphProto,
 * TensorProto and StringStringEntryProto, nothing else; fields it does not need are skipped.
 */

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

const MODEL = { graph: 7, metadata: 14 };
const GRAPH = { initializer: 5 };
const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9 };
const ENTRY = { key: 1, value: 2 };
const FLOAT = 1; // TensorProto.DataType.FLOAT

/**
 * {spec, metadata, tensors}: the model's spec (parsed), its metadata as an object, and its float
 * initializers by name as {dims, values}. A file fedge did not export, or an int8 one, is refused.
 */
export function readOnnxModel(bytes) {
  const metadata = {};
  const tensors = new Map();
  let graph = null;
  walk(bytes, "model", (field, reader) => {
    if (field === MODEL.graph) graph = reader.bytes();
    else if (field === MODEL.metadata) {
      const entry = {};
      walk(reader.bytes(), "metadata", (f, r) => f in ENTRY_FIELDS && ((entry[ENTRY_FIELDS[f]] = r.string()), true));
      metadata[entry.key] = entry.value;
    } else return false;
    return true;
  });
  if (!("fedge.spec" in metadata)) {
    throw new RangeError("expected a model exported by fedge (with fedge.spec metadata), got another ONNX file");
  }
  if ((metadata["fedge.quantization"] ?? "fp32") !== "fp32") {
    throw new RangeError(`expected an fp32 model, got a ${metadata["fedge.quantization"]} one`);
  }
  if (graph === null) throw new RangeError("expected an ONNX model with a graph, got none");
  walk(graph, "graph", (field, reader) => {
    if (field !== GRAPH.initializer) return false;
    const tensor = readTensor(reader.bytes());
    if (tensor.dataType === FLOAT) tensors.set(tensor.name, { dims: tensor.dims, values: tensor.values });
    return true;
  });
  return { spec: JSON.parse(metadata["fedge.spec"]), metadata, tensors };
}

const ENTRY_FIELDS = { [ENTRY.key]: "key", [ENTRY.value]: "value" };

function readTensor(bytes) {
  const tensor = { name: "", dims: [], dataType: 0, values: null };
  const floats = [];
  walk(bytes, "tensor", (field, reader, wire) => {
    if (field === TENSOR.name) tensor.name = reader.string();
    else if (field === TENSOR.dataType) tensor.dataType = reader.int32();
    else if (field === TENSOR.dims) repeated(reader, wire, () => tensor.dims.push(Number(reader.int64())));
    else if (field === TENSOR.floatData) repeated(reader, wire, () => floats.push(reader.float()));
    else if (field === TENSOR.rawData) tensor.values = littleEndianFloats(reader.bytes());
    else return false;
    return true;
  });
  tensor.values ??= Float32Array.from(floats);
  const size = tensor.dims.reduce((a, b) => a * b, 1);
  if (tensor.dataType === FLOAT && tensor.values.length !== size) {
    throw new RangeError(`initializer ${tensor.name}: expected ${size} values for (${tensor.dims}), got ${tensor.values.length}`);
  }
  return tensor;
}

/** Calls `visit(field, reader, wireType)` for each field; a visit that returns false has the field skipped. */
function walk(bytes, what, visit) {
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [field, wire] = reader.tag();
      if (!visit(field, reader, wire)) reader.skip(wire, field);
    }
  } catch (error) {
    if (error instanceof RangeError && error.message.startsWith("expected")) throw error;
    throw new RangeError(`expected an ONNX model, got bytes that do not parse as one (${what}: ${error.message})`);
  }
}

/** A repeated scalar, packed (one length-delimited run) or not (one value per tag). */
function repeated(reader, wire, readOne) {
  if (wire !== WireType.LengthDelimited) return readOne();
  const end = reader.uint32() + reader.pos;
  while (reader.pos < end) readOne();
}

function littleEndianFloats(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength >> 2 }, (_, i) => view.getFloat32(i * 4, true));
}
