/**
 * The words the page shows: sizes, counts, and what left the device in a round. Plain
 * functions of plain data, so they are tested without a DOM.
 */

const number = new Intl.NumberFormat("en-US");

export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export const formatCount = (n) => number.format(n);

/**
 * One line of "what leaves this device" for an upload event (Agent's `upload` detail). It
 * names everything this client sent for the round, so the list is the whole truth: with
 * secure aggregation, the masked vector plus two public keys, the sealed key shares (only the
 * neighbour they are for can open one), the example count and the local loss and accuracy
 * (with a task's holdout, also the received model's on the samples held out).
 */
export function describeUpload(u) {
  const head = `round ${u.round}: `;
  if (!u.values && u.metrics && !("train_loss" in u.metrics)) {
    const count = formatCount(u.numExamples);
    return `${head}no update (a scoring round): the received model's loss and accuracy on ${count} held-out samples, and that count`;
  }
  const scored = u.metrics && "eval_accuracy" in u.metrics;
  const figures = scored
    ? "this device's training loss and accuracy and the received model's on its held-out samples"
    : "this device's training loss and accuracy";
  const extras = `the example count (${formatCount(u.numExamples)}) and ${figures}`;
  if (!u.secure) {
    return `${head}${formatCount(u.values)} float32 update values (${formatBytes(u.bytes)}) in the clear, ${extras}`;
  }
  const noise = u.noiseMultiplier ? `, with on-device DP noise (multiplier ${u.noiseMultiplier.toFixed(2)})` : "";
  return (
    `${head}${formatCount(u.values)} masked uint32 values (${formatBytes(u.bytes)})${noise}, ` +
    `2 public keys, ${u.sealedShares} sealed key shares, ${extras}; nothing else`
  );
}

/** "96 samples of (50, 6): motion-0 24, motion-1 24, ..." for each sample shape held. */
export function describeSamples(batches, labels = []) {
  const byShape = new Map();
  for (const b of batches) {
    const key = `(${b.sampleShape.join(", ")})`;
    const counts = byShape.get(key) ?? new Map();
    for (const y of b.y) counts.set(y, (counts.get(y) ?? 0) + 1);
    byShape.set(key, counts);
  }
  return [...byShape].map(([shape, counts]) => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const parts = [...counts].sort((a, b) => a[0] - b[0]).map(([y, n]) => `${labels[y] ?? `class ${y}`} ${n}`);
    return `${formatCount(total)} samples of ${shape}: ${parts.join(", ")}`;
  });
}

/** The browser engine for the platform string: chromium, firefox, webkit (Safari) or unknown. */
export function browserEngine(navigator = globalThis.navigator) {
  const brands = navigator?.userAgentData?.brands?.map((b) => b.brand) ?? [];
  if (brands.includes("Chromium")) return "chromium";
  const agent = navigator?.userAgent ?? "";
  if (/Firefox\//.test(agent)) return "firefox";
  if (/Chrom(e|ium)\//.test(agent)) return "chromium";
  if (/Safari\//.test(agent)) return "webkit";
  return "unknown";
}
