import assert from "node:assert/strict";
import { test } from "node:test";

import { WindowBuilder, motionReading, pixelsToSample } from "../../src/page/recorder.js";
import { normalise, samplesOfShape } from "../../src/data/datafiles.js";
import {
  enrolmentNonce,
  loadCredential,
  loadModelKey,
  loadNoiseFloor,
  saveCredential,
  saveModelKey,
  saveNoiseFloor,
} from "../../src/page/store.js";
import { LineChart } from "../../src/page/chart.js";
import { latestManifest } from "../../src/page/published.js";
import { browserEngine, describeSamples, describeUpload, formatBytes } from "../../src/page/view.js";

test("recorder: a motion reading is the accelerometer, then the gyroscope in rad/s about x, y, z", () => {
  const event = {
    accelerationIncludingGravity: { x: 1, y: 2, z: 9.8 },
    rotationRate: { alpha: 180, beta: 90, gamma: 0 },
  };
  assert.deepEqual(motionReading(event, 3), [1, 2, 9.8]);
  const [, , , gx, gy, gz] = motionReading(event, 6);
  assert.deepEqual(
    [gx, gy, gz].map((v) => +v.toFixed(6)),
    [+(Math.PI / 2).toFixed(6), 0, +Math.PI.toFixed(6)],
  );
  assert.deepEqual(motionReading({}, 3), [0, 0, 0], "a device without sensors reads zeros");
  assert.throws(() => motionReading(event, 4), /3 or 6 channels/);
});

test("recorder: readings become non-overlapping windows of steps × channels", () => {
  const builder = new WindowBuilder(2, 3);
  assert.equal(builder.push([1, 2, 3]), null);
  assert.deepEqual([...builder.push([4, 5, 6])], [1, 2, 3, 4, 5, 6]);
  assert.equal(builder.push([7, 8, 9]), null, "the next window starts afresh");
});

test("recorder: pixels become grey or RGB values in [0, 1], channels last", () => {
  const rgba = Uint8Array.from([255, 255, 255, 255, 255, 0, 0, 255]); // white, red
  assert.deepEqual([...pixelsToSample(rgba, 1, 2, 3)], [1, 1, 1, 1, 0, 0]);
  const grey = pixelsToSample(rgba, 1, 2, 1);
  assert.deepEqual([+grey[0].toFixed(3), +grey[1].toFixed(3)], [1, 0.299]);
});

test("recorder: the data's normalisation applies per channel, and only when it fits", () => {
  const norm = { mean: [1, 10], std: [2, 5] };
  assert.deepEqual([...normalise(Float32Array.from([3, 20, 1, 10]), 2, norm)], [1, 2, 0, 0]);
  assert.deepEqual([...normalise(Float32Array.from([3, 20]), 3, norm)], [3, 20], "another channel count: untouched");
});

test("data: the trainer gets only the samples of the model's shape, joined", () => {
  const batches = [
    { sampleShape: [2], x: Float32Array.from([1, 2]), y: Int32Array.from([0]) },
    { sampleShape: [3], x: Float32Array.from([9, 9, 9]), y: Int32Array.from([1]) },
    { sampleShape: [2], x: Float32Array.from([3, 4, 5, 6]), y: Int32Array.from([1, 1]) },
  ];
  const { x, y } = samplesOfShape(batches, [2]);
  assert.deepEqual(
    [[...x], [...y]],
    [
      [1, 2, 3, 4, 5, 6],
      [0, 1, 1],
    ],
  );
  assert.equal(samplesOfShape(batches, [5]), null);
});

test("view: what leaves the device is said in full, masked or not", () => {
  const upload = { round: 3, secure: true, values: 22234, bytes: 88936, numExamples: 96, sealedShares: 2 };
  assert.equal(
    describeUpload(upload),
    "round 3: 22,234 masked uint32 values (88.9 KB), 2 public keys, 2 sealed key shares, " +
      "the example count (96) and this device's training loss and accuracy; nothing else",
  );
  assert.match(
    describeUpload({ ...upload, noiseMultiplier: 0.3 }),
    /88.9 KB\), with on-device DP noise \(multiplier 0.30\), 2 public keys/,
  );
  assert.match(
    describeUpload({ ...upload, metrics: { train_loss: 1, train_accuracy: 0.5, eval_loss: 1, eval_accuracy: 0.4 } }),
    /training loss and accuracy and the received model's on its held-out samples; nothing else$/,
  );
  assert.match(
    describeUpload({ ...upload, secure: false }),
    /^round 3: 22,234 float32 update values \(88.9 KB\) in the clear/,
  );
  assert.equal(
    describeUpload({ round: 31, secure: false, values: 0, bytes: 0, numExamples: 24, metrics: { eval_loss: 1, eval_accuracy: 0.4 } }),
    "round 31: no update (a scoring round): the received model's loss and accuracy on 24 held-out samples, and that count",
  );
  assert.deepEqual([formatBytes(999), formatBytes(1500), formatBytes(2.5e6)], ["999 B", "1.5 KB", "2.5 MB"]);
});

test("view: samples are counted per shape and label", () => {
  const batches = [{ sampleShape: [50, 6], y: Int32Array.from([0, 1, 1]) }];
  assert.deepEqual(describeSamples(batches, ["rest", "walk"]), ["3 samples of (50, 6): rest 1, walk 2"]);
});

test("view: the engine in the platform string comes from the browser's brands or user agent", () => {
  assert.equal(
    browserEngine({ userAgentData: { brands: [{ brand: "Chromium" }, { brand: "Google Chrome" }] } }),
    "chromium",
  );
  assert.equal(
    browserEngine({ userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" }),
    "firefox",
  );
  assert.equal(
    browserEngine({ userAgent: "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1" }),
    "webkit",
  );
  assert.equal(browserEngine({}), "unknown");
});

class MemoryStorage {
  items = new Map();
  getItem(key) {
    return this.items.get(key) ?? null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

test("store: a join retried with the same token repeats its nonce; another token or a finished join draws anew", () => {
  const storage = new MemoryStorage();
  const first = enrolmentNonce("token-a", storage);
  assert.match(first, /^[0-9a-f]{32}$/);
  assert.equal(enrolmentNonce("token-a", storage), first, "a retry after a lost reply");
  const other = enrolmentNonce("token-b", storage);
  assert.notEqual(other, first);
  saveCredential({ clientId: "c-1", credential: "secret" }, storage);
  assert.deepEqual(loadCredential(storage), { clientId: "c-1", credential: "secret" });
  assert.notEqual(enrolmentNonce("token-b", storage), other, "joined: the pending enrolment was forgotten");
  storage.setItem("fedge.enrolment", "{not json");
  assert.match(enrolmentNonce("token-b", storage), /^[0-9a-f]{32}$/, "an unreadable entry is replaced");
});

test("store: the DP noise floor is kept as a number ≥ 0; anything else is refused and leaves the old one", () => {
  const storage = new MemoryStorage();
  assert.equal(loadNoiseFloor(storage), 0, "none saved: every round");
  assert.equal(saveNoiseFloor("0.5", storage), 0.5);
  assert.equal(loadNoiseFloor(storage), 0.5);
  for (const bad of ["-1", "abc", "Infinity"]) {
    assert.throws(() => saveNoiseFloor(bad, storage), RangeError);
  }
  assert.equal(loadNoiseFloor(storage), 0.5);
  assert.equal(saveNoiseFloor(" ", storage), 0, "an emptied field means no floor");
  storage.setItem("fedge.minDpNoise", "garbage");
  assert.equal(loadNoiseFloor(storage), 0, "an unreadable value is no floor");
});

test("store: the pinned model key is 64 hex characters; anything else is refused and leaves the old one", () => {
  const storage = new MemoryStorage();
  assert.equal(loadModelKey(storage), "");
  const key = "AB".repeat(32);
  assert.deepEqual(saveModelKey(` ${key} `, storage), new Uint8Array(32).fill(0xab));
  assert.equal(loadModelKey(storage), "ab".repeat(32));
  for (const bad of ["", "ab", "zz".repeat(32), "ab".repeat(33)]) {
    assert.throws(() => saveModelKey(bad, storage), /64 hex characters, as `fedge keys show` prints it/);
  }
  assert.equal(loadModelKey(storage), "ab".repeat(32));
});

test("published: the newest fp32 version of the device's task is the one run", () => {
  const listing = {
    models: [
      { task: "har", version: 2 },
      { task: "har", version: 3, quantization: "int8" },
      { task: "har", version: 1 },
      { task: "other", version: 9 },
    ],
  };
  assert.equal(latestManifest(listing, "har").version, 2);
  assert.equal(latestManifest(listing).version, 9, "no task known yet: the newest of any");
  assert.equal(latestManifest(listing, "none"), null);
  assert.equal(latestManifest({ models: [] }), null);
});

/** A canvas whose 2D context records the text drawn and the highest point a line reaches. */
function recordingCanvas() {
  const drawn = { texts: [], lineTops: [] };
  const context = {
    setTransform() {},
    clearRect() {},
    beginPath() {},
    stroke() {},
    fillText: (text, x, y) => drawn.texts.push([text, y]),
    moveTo: (x, y) => drawn.lineTops.push(y),
    lineTo: (x, y) => drawn.lineTops.push(y),
  };
  return { canvas: { clientWidth: 320, clientHeight: 160, getContext: () => context }, drawn };
}

test("chart: a series with no points yet takes no legend line, so the plot starts below the legends shown", () => {
  const { canvas, drawn } = recordingCanvas();
  const chart = new LineChart(canvas, { title: "per round", series: ["loss", "accuracy", "held-out accuracy"] });
  chart.push("loss", 1, 0.9);
  drawn.texts.length = drawn.lineTops.length = 0;
  chart.push("accuracy", 1, 0.5);
  const legends = drawn.texts.filter(([text]) => /^(loss|accuracy|held-out)/.test(text));
  assert.deepEqual(legends, [["loss 0.900", 14], ["accuracy 0.500", 28]]);
  assert.equal(Math.min(...drawn.lineTops), 12 + 14 * 2, "the axes start below the two legend lines");
});
