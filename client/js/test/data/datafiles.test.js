import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { DataFileError, readDataFiles } from "../../src/data/datafiles.js";
import { readNpz } from "../../src/data/npz.js";

/** Files as the page reads them from a file input: {name, bytes}. */
const fixture = (name, as = name) => ({
  name: as,
  bytes: new Uint8Array(readFileSync(new URL(`fixtures/${name}`, import.meta.url))),
});
const text = (name, content) => ({ name, bytes: new TextEncoder().encode(content) });
const EXPECTED_X = Array.from({ length: 12 }, (_, i) => Math.fround(i / 10));

test("npz: np.savez's stored arrays and np.savez_compressed's deflated ones read the same", async () => {
  for (const name of ["samples.npz", "samples-compressed.npz"]) {
    const { x, y } = await readNpz(fixture(name).bytes, name);
    assert.deepEqual([x.dtype, x.shape, y.dtype, y.shape], ["float32", [3, 2, 2], "int64", [3]], name);
    assert.deepEqual([...x.data], EXPECTED_X);
    assert.deepEqual([...y.data], [0n, 1n, 2n]);
  }
});

test("data files: a split folder's meta.json and .npz give labels, shape and samples", async () => {
  const { meta, batches } = await readDataFiles([fixture("meta.json"), fixture("samples.npz", "part-0000.npz")]);
  assert.deepEqual([meta.labels, meta.sampleShape, meta.dataset], [["a", "b", "c"], [2, 2], "tiny"]);
  const [batch] = batches;
  assert.deepEqual([batch.source, batch.sampleShape, [...batch.y]], ["part-0000.npz", [2, 2], [0, 1, 2]]);
  assert.deepEqual([...batch.x], EXPECTED_X);
});

test("data files: hidden files picked with a folder are skipped, as the Python reader skips them", async () => {
  const agentState = text(".fedge-agent.json", '{"server": "h:7070"}'); // `fedge client` keeps it in the folder
  const { batches } = await readDataFiles([fixture("meta.json"), agentState, fixture("samples.npz", "part-0000.npz")]);
  assert.deepEqual(batches.map((b) => b.source), ["part-0000.npz"]);
});

test("data files: a CSV row is the flattened sample, then a label name or class id", async () => {
  const csv = text("by-hand.csv", "# 2 steps x 2 channels\n0,1,2,3,b\n\n4,5,6,7,0\n");
  const [batch] = (await readDataFiles([fixture("meta.json"), csv])).batches;
  assert.deepEqual([...batch.y], [1, 0]);
  assert.deepEqual([...batch.x], [0, 1, 2, 3, 4, 5, 6, 7]);
});

test("data files: the JSON export carries its own labels and shape", async () => {
  const json = {
    format: "fedge-samples",
    labels: ["rest", "walk"],
    sample_shape: [2, 1],
    x: [
      [[1], [2]],
      [3, 4],
    ],
    y: ["walk", 0],
  };
  const [batch] = (await readDataFiles([text("export.json", JSON.stringify(json))])).batches;
  assert.deepEqual(
    [[...batch.x], [...batch.y], batch.labels],
    [
      [1, 2, 3, 4],
      [1, 0],
      ["rest", "walk"],
    ],
  );
});

test("data files: what the Python reader refuses is refused here, naming the file (and line)", async () => {
  const meta = fixture("meta.json");
  const cases = [
    [[meta, fixture("float64.npz", "part-0001.npz")], /part-0001.npz: expected x float32, got x float64/],
    [
      [meta, text("a.csv", "0,1,2,3\n")],
      /a.csv, line 1: expected 5 columns \(4 values, then the label\), got 4 columns/,
    ],
    [
      [meta, text("a.csv", "0,1,2,3,run\n")],
      /a.csv, line 1: expected a label among a, b, c \(or a class id\), got 'run'/,
    ],
    [[meta, text("a.csv", "0,x,2,3,a\n")], /a.csv, line 1: expected a number in column 2, got 'x'/],
    [[meta, text("a.csv", "0,1,2,3,7\n")], /a.csv: expected class ids below 3, got 7/],
    [[text("a.csv", "0,1,2,3,0\n")], /a.csv: a CSV needs the sample shape/],
    [
      [text("meta.json", '{"format": "fedge-client-data", "version": 2}'), fixture("samples.npz")],
      /meta.json: expected version 1, got 2/,
    ],
    [[text("x.npz", "not a zip")], /x.npz: expected a zip archive/],
    // a JSON file that holds no samples is said to be one plainly, not as "got undefined"
    [[text("agent.json", '{"server": "h:7070"}')], /agent.json: .*got no "format"$/],
    [[text("null.json", "null")], /null.json: .*got no "format"$/],
    [[text("list.json", "[1, 2]")], /list.json: .*got no "format"$/],
    [[text("other.json", '{"format": "other"}')], /other.json: .*got "format": "other"$/],
    [[text("notes.txt", "hello")], /notes.txt: expected a .npz, .csv or .json file/],
    [[meta], /expected at least one sample file/],
  ];
  for (const [files, message] of cases)
    await assert.rejects(readDataFiles(files), (e) => e instanceof DataFileError && message.test(e.message));
});

test("data files: samples of another shape than meta.json says are refused with both shapes", async () => {
  const meta = text(
    "meta.json",
    JSON.stringify({ format: "fedge-client-data", version: 1, labels: ["a", "b", "c"], sample_shape: [4] }),
  );
  await assert.rejects(
    readDataFiles([meta, fixture("samples.npz")]),
    /samples.npz: expected samples of \(4\), got \(2, 2\)/,
  );
});
