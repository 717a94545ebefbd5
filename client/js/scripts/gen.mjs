#!/usr/bin/env node
/**
 * Regenerates the protobuf-es code for protos/fedge/v1/*.proto into src/gen/ (never edit that by
 * hand; test/gen.test.js fails when it is stale). protoc is grpcio-tools' (from the project's
 * .venv, or $PYTHON) with the protoc-gen-es plugin from node_modules. The proto folder is mounted
 * at fedge/v1 so the files are named as the Python side names them.
 *
 *     npm run gen                       rewrite src/gen/
 *     node scripts/gen.mjs OUT_DIR      write elsewhere (what the staleness test does)
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const PACKAGE = fileURLToPath(new URL("../", import.meta.url));
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const PROTOS = `${REPO}protos/fedge/v1`;
const VIRTUAL = "fedge/v1";
export const TARGET = `${PACKAGE}src/gen`;

/** Writes the generated modules under `target` (target/fedge/v1/*_pb.js). */
export function generate(target = TARGET) {
  const python = process.env.PYTHON ?? `${REPO}.venv/bin/python`;
  const protos = readdirSync(PROTOS)
    .filter((f) => f.endsWith(".proto"))
    .sort();
  rmSync(`${target}/${VIRTUAL}`, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  execFileSync(
    python,
    [
      "-m",
      "grpc_tools.protoc",
      `-I${VIRTUAL}=${PROTOS}`,
      `--plugin=protoc-gen-es=${PACKAGE}node_modules/.bin/protoc-gen-es`,
      `--es_out=${target}`,
      "--es_opt=target=js",
      ...protos.map((p) => `${VIRTUAL}/${p}`),
    ],
    { stdio: "inherit" },
  );
  return protos.map((p) => `${VIRTUAL}/${p.replace(/\.proto$/, "_pb.js")}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const file of generate(process.argv[2] ?? TARGET)) console.log(file);
}
