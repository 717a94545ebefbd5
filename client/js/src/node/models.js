/**
 * `fedge-node predict`: fetch a published model (a registry folder or the gateway's HTTP
 * /models/...), verify it with the coordinator's pinned public key, and run it on samples,
 * as `fedge models predict` does. A tampered file or manifest is refused and never run.
 */

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";

import { samplesOfShape } from "../data/datafiles.js";
import { readNpy } from "../data/npz.js";
import { describePrediction, predict } from "../registry/predict.js";
import { verifyModel } from "../registry/verify.js";
import { ClientError, loadFolder } from "./agent.js";

const FILES = ["model.onnx", "manifest.json", "manifest.sig"];

/** The three files of a published version: from a folder, or a URL such as http://HOST:8080/models/TASK/latest. */
export async function fetchPublished(source) {
  const remote = /^https?:\/\//.test(source);
  const read = remote ? (name) => download(`${source.replace(/\/$/, "")}/${name}`) : (name) => readLocal(join(source, name));
  const [model, manifest, signature] = await Promise.all(FILES.map(read));
  return { model, manifest, signature };
}

async function download(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ClientError(`cannot fetch ${url}: ${error.cause?.message ?? error.message}`);
  }
  if (!response.ok) throw new ClientError(`cannot fetch ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function readLocal(path) {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new ClientError(`cannot read ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
  }
}

/** Samples from a .npy file (N × shape, or one sample) or a .csv of flattened samples, one per row. */
export async function readSamples(path, shape) {
  const size = shape.reduce((a, b) => a * b, 1);
  let values;
  if (path.endsWith(".npy")) {
    const array = readNpy(await readLocal(path), path);
    const sample = array.shape.slice(array.shape.length === shape.length ? 0 : 1);
    if (sample.join(",") !== shape.join(",") || array.shape.length - shape.length > 1) {
      const got = `(${array.shape.join(", ")})`;
      throw new ClientError(`${path}: expected samples of shape (N, ${shape.join(", ")}), got ${got}`);
    }
    values = Float32Array.from(array.data, Number);
  } else if (path.endsWith(".csv")) {
    const rows = new TextDecoder().decode(await readLocal(path)).split(/\r?\n/).filter((line) => line.trim());
    const numbers = rows.map((row, i) => {
      const cells = row.split(",").map(Number);
      if (cells.length !== size) {
        throw new ClientError(`${path}: expected rows of ${size} numbers, got ${cells.length} on line ${i + 1}`);
      }
      return cells;
    });
    values = Float32Array.from(numbers.flat());
  } else {
    throw new ClientError(`${path}: expected a .npy or .csv file`);
  }
  if (!values.every(Number.isFinite)) throw new ClientError(`${path}: expected finite numbers, got NaN or Infinity`);
  return values;
}

/** Verify, then predict; returns the lines `fedge-node predict` prints. */
export async function predictCommand({ model: source, key, input, top = 3, normalised = false, json = false }) {
  if (!/^[0-9a-f]{64}$/i.test(key ?? "")) {
    throw new ClientError("--key must be the coordinator's public key, 64 hex characters (`fedge keys show`)");
  }
  const publicKey = Uint8Array.from(key.match(/../g), (h) => Number.parseInt(h, 16));
  const { model, manifest: manifestBytes, signature } = await fetchPublished(source);
  const manifest = await verifyModel(publicKey, manifestBytes, signature, model).catch((error) => {
    throw new ClientError(`refused, not run: ${error.message}`);
  });
  const folder = (await stat(input).catch(() => null))?.isDirectory();
  const samples = folder ? await folderSamples(input, manifest) : { x: await readSamples(input, manifest.input.shape) };
  const probabilities = await predict(manifest, model, samples.x, { normalised: samples.normalised ?? normalised });
  const accuracy = samples.y ? scored(probabilities, samples.y) : null;
  if (json) {
    const predictions = probabilities.map((p) => Object.fromEntries(manifest.labels.map((l, k) => [l, p[k]])));
    const score = samples.y ? { accuracy, labelled: samples.y.length } : {};
    return [JSON.stringify({ task: manifest.task, version: manifest.version, predictions, ...score }, null, 2)];
  }
  const lines = probabilities.map((p, i) => `${i}: ${describePrediction(manifest.labels, p, top)}`);
  if (samples.y) lines.push(`accuracy ${accuracy.toFixed(4)} on the ${samples.y.length} labelled samples of ${input}`);
  return lines;
}

/**
 * A data folder's samples for the model, as `fedge models predict` reads one: normalised as the
 * manifest says (used as they are) or raw (normalised by `predict`), refused otherwise; their
 * labels `y` when the folder's labels are the model's.
 */
async function folderSamples(path, manifest) {
  const { meta, batches } = await loadFolder(path).catch((error) => {
    throw new ClientError(`${path}: ${error.message}`);
  });
  const shape = manifest.input.shape;
  const found = samplesOfShape(batches, shape);
  if (!found) throw new ClientError(`${path}: expected samples of the model's shape [${shape.join(", ")}], got none`);
  const theirs = canonical(meta?.normalisation ?? {});
  const normalised = theirs === canonical(manifest.input.normalisation ?? {});
  if (!normalised && theirs !== "{}") {
    const wanted = JSON.stringify(manifest.input.normalisation);
    throw new ClientError(
      `${path}: expected samples raw or normalised as the model's manifest says (${wanted}), got samples normalised otherwise`,
    );
  }
  const sameLabels = canonical(meta?.labels ?? []) === canonical(manifest.labels);
  if (!sameLabels) console.error(`${path}: its labels are not the model's: predictions only, no accuracy`);
  return { x: found.x, y: sameLabels ? found.y : null, normalised };
}

/** JSON with sorted keys: two objects that say the same thing read the same. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function scored(probabilities, y) {
  const hits = probabilities.filter((p, i) => p.indexOf(Math.max(...p)) === y[i]).length;
  return hits / y.length;
}
