import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";

import { TARGET, generate } from "../scripts/gen.mjs";

const listing = (root) => readdirSync(`${root}/fedge/v1`).sort();

test("gen: the committed protobuf-es code is what protos/ generates today", () => {
  const fresh = mkdtempSync(`${tmpdir()}/fedge-gen-`);
  try {
    generate(fresh);
    assert.deepEqual(listing(TARGET), listing(fresh), "run `npm run gen`: generated files were added or removed");
    for (const name of listing(fresh)) {
      const [now, committed] = [fresh, TARGET].map((root) => readFileSync(`${root}/fedge/v1/${name}`, "utf8"));
      assert.equal(committed, now, `run \`npm run gen\`: src/gen/fedge/v1/${name} is stale`);
    }
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});
