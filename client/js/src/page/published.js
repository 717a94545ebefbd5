/**
 * The page runs the model its federation published, on this device's own samples: the newest
 * fp32 version of the task from the gateway's /models, its signature checked against the
 * key the owner pinned (`fedge keys show`), then the TF.js engine (registry/engine.js). The
 * samples stay on the device; a tampered file or manifest is refused and never run.
 */

import { predictWithEngine } from "../registry/engine.js";
import { describePrediction } from "../registry/samples.js";
import { verifyModel } from "../registry/verify.js";

const FILES = ["model.onnx", "manifest.json", "manifest.sig"];
export const SHOWN = 5; // samples whose prediction is printed

/** The newest fp32 manifest in a /models listing, of `taskId` when given; null when none. */
export function latestManifest(listing, taskId = null) {
  const candidates = (listing?.models ?? []).filter(
    (m) => (m.quantization ?? "fp32") === "fp32" && (!taskId || m.task === taskId),
  );
  return candidates.reduce((best, m) => (!best || m.version > best.version ? m : best), null);
}

/**
 * Fetch, verify and run; returns {manifest, shown: [lines], accuracy, count}. `samples` is
 * ({shape}) => {x, y} or null (the page's stored samples, already normalised).
 */
export async function runPublished({ publicKey, taskId, samples, base = "", fetch = globalThis.fetch }) {
  const get = async (path) => {
    const response = await fetch(`${base}${path}`);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
    return new Uint8Array(await response.arrayBuffer());
  };
  const listing = JSON.parse(new TextDecoder().decode(await get("/models")));
  const newest = latestManifest(listing, taskId);
  if (!newest) throw new Error(taskId ? `no model of task ${taskId} is published yet` : "no model is published yet");
  const folder = `/models/${encodeURIComponent(newest.task)}/${newest.version}`;
  const [model, manifestBytes, signature] = await Promise.all(FILES.map((name) => get(`${folder}/${name}`)));
  const manifest = await verifyModel(publicKey, manifestBytes, signature, model);
  const data = samples(manifest.input.shape);
  if (!data) throw new Error(`no samples of shape (${manifest.input.shape.join(", ")}) on this device`);
  const probabilities = await predictWithEngine(manifest, model, data.x, { normalised: true });
  const predicted = probabilities.map((p) => p.indexOf(Math.max(...p)));
  const correct = predicted.filter((k, i) => k === data.y[i]).length;
  const shown = probabilities
    .slice(0, SHOWN)
    .map((p, i) => `${manifest.labels[data.y[i]] ?? "?"} → ${describePrediction(manifest.labels, p)}`);
  return { manifest, shown, accuracy: correct / probabilities.length, count: probabilities.length };
}
