#!/usr/bin/env node
/**
 * fedge-node: the Node desktop client (src/node/agent.js). Enrol once with a token, then check
 * in and train when asked until stopped (Ctrl-C), as `fedge client` does:
 *
 *     fedge-node --server HOST:PORT --data FOLDER [--token TOKEN] [--name NAME] [--state FILE]
 *                [--backend wasm|cpu] [--min-dp-noise Z] [--exit-when-done]
 */

import { parseArgs } from "node:util";

import { ClientError, runClient } from "../src/node/agent.js";

const USAGE = `usage: fedge-node --server HOST:PORT --data FOLDER [--token TOKEN] [--name NAME] [--state FILE]
                  [--backend wasm|cpu] [--min-dp-noise Z] [--exit-when-done]

  --server HOST:PORT   the coordinator's gRPC address
  --data FOLDER        a folder of samples (meta.json and .npz/.csv files; \`fedge data split\` makes some)
  --token TOKEN        one-time enrolment token, needed on the first run only
  --name NAME          a name the operator sees in \`fedge status\`
  --state FILE         where the credential is kept (default: FOLDER/.fedge-node.json)
  --backend NAME       TF.js backend: wasm (default) or cpu
  --min-dp-noise Z     refuse rounds whose on-device DP noise gives this device a multiplier under Z
  --exit-when-done     stop once every task has completed`;

function options() {
  const { values } = parseArgs({
    options: {
      server: { type: "string" },
      data: { type: "string" },
      token: { type: "string", default: "" },
      name: { type: "string", default: "" },
      state: { type: "string" },
      backend: { type: "string", default: "wasm" },
      "min-dp-noise": { type: "string", default: "0" },
      "exit-when-done": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  for (const required of ["server", "data"]) {
    if (!values[required]) throw new ClientError(`--${required} is required\n${USAGE}`);
  }
  if (!["wasm", "cpu"].includes(values.backend)) {
    throw new ClientError(`--backend must be wasm or cpu, got ${values.backend}`);
  }
  const floor = Number(values["min-dp-noise"]);
  if (!(Number.isFinite(floor) && floor >= 0)) {
    throw new ClientError(`--min-dp-noise must be a number ≥ 0, got ${values["min-dp-noise"]}`);
  }
  return { ...values, floor, exitWhenDone: values["exit-when-done"] };
}

const stop = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stop.abort());
try {
  await runClient({ ...options(), signal: stop.signal, log: (line) => console.log(`${new Date().toISOString()} ${line}`) });
  process.exit(0);
} catch (error) {
  const known =
    error instanceof ClientError ||
    ["AgentStopped", "DataFileError"].includes(error.name) ||
    error.code?.startsWith("ERR_PARSE_ARGS");
  console.error(`error: ${known ? error.message : error.stack}`);
  process.exit(known ? 2 : 1);
}
