/**
 * Samples from files the device owner picks: the formats of a `fedge data split` folder
 * (docs/client-data.md) and a JSON export, checked as the Python reader checks them, with the
 * file (and line) named in every refusal.
 *
 *     meta.json      {"format": "fedge-client-data", labels, sample_shape, normalisation, ...}
 *     *.npz          x float32 (N, ...sample_shape), y integer (N,)
 *     *.csv          per row: the sample's values flattened, then the label (a name or a class id)
 *     *.json         {"format": "fedge-samples", labels, sample_shape, x: [[...], ...], y: [...]}
 *
 * A CSV needs the sample shape from a meta.json picked with it, or from the task's model.
 */

import { DataFileError, readNpz } from "./npz.js";

export { DataFileError };

const size = (shape) => shape.reduce((a, b) => a * b, 1);
const shapeText = (shape) => `(${shape.join(", ")})`;

/**
 * The samples of `inputShape` among `batches`, joined: {x, y}, or null when there are none.
 * What the trainer calls each round, so new samples count from the next round on.
 */
export function samplesOfShape(batches, inputShape) {
  const key = JSON.stringify(inputShape);
  const matching = batches.filter((b) => JSON.stringify(b.sampleShape) === key);
  if (!matching.length) return null;
  const x = new Float32Array(matching.reduce((n, b) => n + b.x.length, 0));
  const y = new Int32Array(matching.reduce((n, b) => n + b.y.length, 0));
  let [xo, yo] = [0, 0];
  for (const b of matching) {
    x.set(b.x, xo);
    y.set(b.y, yo);
    [xo, yo] = [xo + b.x.length, yo + b.y.length];
  }
  return { x, y };
}

/** (x − mean) / std per channel (the last axis), in place, when `normalisation` fits; returns x. */
export function normalise(x, channels, normalisation) {
  const { mean, std } = normalisation ?? {};
  if (!Array.isArray(mean) || mean.length !== channels || std?.length !== channels) return x;
  for (let i = 0; i < x.length; i++) x[i] = (x[i] - mean[i % channels]) / std[i % channels];
  return x;
}

/**
 * `files`: [{name, bytes: Uint8Array}]; `known`: {sampleShape, labels} when the page knows the
 * task's. Returns {meta, batches: [{source, sampleShape, x: Float32Array, y: Int32Array}]}.
 */
export async function readDataFiles(files, known = {}) {
  const parsed = files
    .filter((file) => !file.name.startsWith(".")) // hidden: e.g. the Python agent's state, as its reader skips
    .map((file) => ({ ...file, json: file.name.endsWith(".json") ? parseJson(file) : null }));
  const metaFile = parsed.find((f) => f.json?.format === "fedge-client-data");
  const meta = metaFile ? readMeta(metaFile.json, metaFile.name) : null;
  const context = { sampleShape: meta?.sampleShape ?? known.sampleShape, labels: meta?.labels ?? known.labels };
  const batches = [];
  for (const file of parsed) {
    if (file === metaFile) continue;
    if (file.name.endsWith(".npz")) batches.push(await readNpzSamples(file, context));
    else if (file.name.endsWith(".csv")) batches.push(readCsv(file, context));
    else if (file.name.endsWith(".json")) batches.push(readJsonSamples(file.json, file.name));
    else throw new DataFileError(`${file.name}: expected a .npz, .csv or .json file`);
  }
  if (!batches.length) throw new DataFileError("expected at least one sample file (.npz, .csv or .json), got none");
  return { meta, batches };
}

function parseJson({ name, bytes }) {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new DataFileError(`${name}: expected JSON, got ${error.message}`);
  }
}

/** meta.json as {dataset, labels, sampleShape, normalisation}. */
export function readMeta(json, name = "meta.json") {
  if (json.version !== 1) throw new DataFileError(`${name}: expected version 1, got ${json.version}`);
  const labels = json.labels;
  if (!Array.isArray(labels) || !labels.length || !labels.every((l) => typeof l === "string" && l)) {
    throw new DataFileError(`${name}: expected labels to be a non-empty list of names`);
  }
  return {
    dataset: String(json.dataset ?? ""),
    labels,
    sampleShape: checkShape(json.sample_shape, name),
    normalisation: json.normalisation ?? {},
  };
}

function checkShape(shape, name) {
  if (!Array.isArray(shape) || !shape.length || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new DataFileError(
      `${name}: expected sample_shape to be a list of positive integers, got ${JSON.stringify(shape)}`,
    );
  }
  return shape;
}

function batch(source, sampleShape, x, y, labels) {
  if (x.length !== y.length * size(sampleShape)) {
    const expected = `${y.length} samples of ${shapeText(sampleShape)} (${y.length * size(sampleShape)} values)`;
    throw new DataFileError(`${source}: expected ${expected}, got ${x.length} values`);
  }
  const badValue = x.findIndex((v) => !Number.isFinite(v));
  if (badValue >= 0) throw new DataFileError(`${source}: expected finite values in x, got ${x[badValue]}`);
  const classes = labels?.length ?? Infinity;
  const badLabel = y.find((v) => !(v >= 0 && v < classes));
  if (badLabel !== undefined)
    throw new DataFileError(`${source}: expected class ids below ${classes}, got ${badLabel}`);
  return { source, sampleShape: sampleShape.slice(), x, y };
}

async function readNpzSamples({ name, bytes }, { sampleShape, labels }) {
  const { x, y } = await readNpz(bytes, name);
  if (!x || !y) throw new DataFileError(`${name}: expected arrays x and y, got ${x ? "no y" : "no x"}`);
  if (x.dtype !== "float32") throw new DataFileError(`${name}: expected x float32, got x ${x.dtype}`);
  if (!/^u?int/.test(y.dtype))
    throw new DataFileError(`${name}: expected y int64 (or another integer type), got y ${y.dtype}`);
  const shape = x.shape.slice(1);
  if (sampleShape && shapeText(shape) !== shapeText(sampleShape)) {
    throw new DataFileError(`${name}: expected samples of ${shapeText(sampleShape)}, got ${shapeText(shape)}`);
  }
  return batch(name, shape, x.data, Int32Array.from(y.data, Number), labels);
}

function readCsv({ name, bytes }, { sampleShape, labels }) {
  if (!sampleShape) {
    throw new DataFileError(`${name}: a CSV needs the sample shape: pick the folder's meta.json with it`);
  }
  const width = size(sampleShape);
  const x = [];
  const y = [];
  new TextDecoder()
    .decode(bytes)
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim() || line.startsWith("#")) return;
      const cells = line.split(",");
      const where = `${name}, line ${i + 1}`;
      if (cells.length !== width + 1) {
        throw new DataFileError(
          `${where}: expected ${width + 1} columns (${width} values, then the label), got ${cells.length} columns`,
        );
      }
      const values = cells.slice(0, width).map(Number);
      const bad = cells.findIndex((c, k) => k < width && (c.trim() === "" || Number.isNaN(values[k])));
      if (bad >= 0) throw new DataFileError(`${where}: expected a number in column ${bad + 1}, got '${cells[bad]}'`);
      x.push(...values);
      y.push(readLabel(cells[width].trim(), labels, where));
    });
  return batch(name, sampleShape, Float32Array.from(x), Int32Array.from(y), labels);
}

function readLabel(cell, labels, where) {
  const named = labels?.indexOf(cell) ?? -1;
  if (named >= 0) return named;
  if (/^\d+$/.test(cell)) return Number(cell);
  throw new DataFileError(
    `${where}: expected a label among ${labels?.join(", ") ?? "(none known)"} (or a class id), got '${cell}'`,
  );
}

/** The JSON export: its own labels and sample shape; x nested or flat per sample; y ids or names. */
function readJsonSamples(json, name) {
  const format = json !== null && typeof json === "object" && !Array.isArray(json) ? json.format : undefined;
  if (format !== "fedge-samples") {
    const got = format === undefined ? 'no "format"' : `"format": ${JSON.stringify(format)}`;
    throw new DataFileError(`${name}: expected "format": "fedge-samples" (or a meta.json), got ${got}`);
  }
  const sampleShape = checkShape(json.sample_shape, name);
  const labels = Array.isArray(json.labels) ? json.labels : undefined;
  if (!Array.isArray(json.x) || !Array.isArray(json.y) || json.x.length !== json.y.length) {
    throw new DataFileError(`${name}: expected lists x and y of equal length`);
  }
  const x = Float32Array.from(json.x.flat(Infinity), Number);
  const y = Int32Array.from(json.y, (v) => (typeof v === "string" ? readLabel(v, labels, name) : v));
  return { ...batch(name, sampleShape, x, y, labels), labels };
}
