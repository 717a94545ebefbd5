#!/usr/bin/env node
/**
 * fedge-node: the Node desktop client (src/node/). Two commands:
 *
 *     fedge-node [run] --server HOST:PORT --data FOLDER ...   enrol once, then train when asked (Ctrl-C stops)
 *     fedge-node predict --model DIR|URL --key HEX --input FILE   verify a published model, then run it
 */

import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import { ClientError, runClient } from "../src/node/agent.js";
import { predictCommand } from "../src/node/models.js";

const USAGE = `usage: fedge-node [run] --server HOST:PORT --data FOLDER [--token TOKEN] [--name NAME] [--state FILE]
                        [--backend wasm|cpu] [--min-dp-noise Z] [--tls | --tls-ca FILE] [--tls-identity FILE]
                        [--exit-when-done]
       fedge-node predict --model DIR|URL --key HEX --input FILE [--top K] [--normalised] [--json]

run: take part in training rounds (docs/node.md); each option may come from its FEDGE_ variable instead, as
     for \`fedge client\` (FEDGE_SERVER, FEDGE_DATA, FEDGE_TOKEN, …; a flag wins)
  --server HOST:PORT   the coordinator's gRPC address
  --data FOLDER        a folder of samples (meta.json and .npz/.csv/.json files; \`fedge data split\` makes some)
  --token TOKEN        one-time enrolment token: for the first run, or a coordinator that no longer knows this client
  --name NAME          a name the operator sees in \`fedge status\`
  --state FILE         where the credential is kept (default: FOLDER/.fedge-node.json)
  --backend NAME       TF.js backend: wasm (default) or cpu
  --min-dp-noise Z     refuse rounds whose on-device DP noise gives this device a multiplier under Z
  --tls                reach the daemon over TLS, trusting Node's CA roots
  --tls-ca FILE        reach the daemon over TLS, trusting this PEM certificate (a self-signed daemon's own)
  --tls-identity FILE  for a daemon that asks for client certificates: this client's certificate and key,
                       one PEM file (\`fedge tls client-cert\`)
  --exit-when-done     stop once every task has completed

predict: verify a published model with the coordinator's key, then run it with ONNX Runtime
  --model DIR|URL      a published version's folder, or its URL (http://HOST:8080/models/TASK/latest)
  --key HEX            the coordinator's public key (\`fedge keys show\`)
  --input FILE         samples: .npy (N × input shape, or one sample), .csv (one flattened sample per row),
                       or a data folder (docs/client-data.md), whose labelled samples are scored too
  --top K              labels printed per sample (default 3)
  --normalised         the samples are already normalised (skip the manifest's step)
  --json               every probability, as JSON`;

const TRUE = new Set(["1", "true", "yes", "y", "on"]); // what click takes as true, for FEDGE_TLS

const COMMANDS = {
  run: {
    options: {
      server: { type: "string" },
      data: { type: "string" },
      token: { type: "string", default: "" },
      name: { type: "string", default: "" },
      state: { type: "string" },
      backend: { type: "string", default: "wasm" },
      "min-dp-noise": { type: "string", default: "0" },
      tls: { type: "boolean", default: false },
      "tls-ca": { type: "string" },
      "tls-identity": { type: "string" },
      "exit-when-done": { type: "boolean", default: false },
    },
    // as `fedge client` reads them: one environment file (a systemd unit's) serves either agent
    environment: {
      server: "FEDGE_SERVER",
      data: "FEDGE_DATA",
      token: "FEDGE_TOKEN",
      name: "FEDGE_NAME",
      state: "FEDGE_STATE",
      "min-dp-noise": "FEDGE_MIN_DP_NOISE",
      tls: "FEDGE_TLS",
      "tls-ca": "FEDGE_TLS_CA",
      "tls-identity": "FEDGE_TLS_IDENTITY",
    },
    required: ["server", "data"],
    async run(values, stop) {
      if (!["wasm", "cpu"].includes(values.backend)) {
        throw new ClientError(`--backend must be wasm or cpu, got ${values.backend}`);
      }
      const floor = Number(values["min-dp-noise"]);
      if (!(Number.isFinite(floor) && floor >= 0)) {
        throw new ClientError(`--min-dp-noise must be a number ≥ 0, got ${values["min-dp-noise"]}`);
      }
      const tls = await trust(values);
      const log = (line) => console.log(`${new Date().toISOString()} ${line}`);
      await runClient({ ...values, floor, tls, exitWhenDone: values["exit-when-done"], signal: stop.signal, log });
    },
  },
  predict: {
    options: {
      model: { type: "string" },
      key: { type: "string" },
      input: { type: "string" },
      top: { type: "string", default: "3" },
      normalised: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    required: ["model", "key", "input"],
    async run(values) {
      const top = Number(values.top);
      if (!(Number.isInteger(top) && top >= 1)) {
        throw new ClientError(`--top must be a whole number ≥ 1, got ${values.top}`);
      }
      for (const line of await predictCommand({ ...values, top })) console.log(line);
    },
  },
};

function parse(argv) {
  const name = COMMANDS[argv[0]] ? argv[0] : "run";
  const command = COMMANDS[name];
  const args = name === argv[0] ? argv.slice(1) : argv;
  const options = Object.fromEntries(Object.entries(command.options).map(([key, { default: _, ...rest }]) => [key, rest]));
  const { values } = parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  for (const [option, variable] of Object.entries(command.environment ?? {})) {
    const text = process.env[variable]; // a flag wins; an empty variable counts as unset
    if (values[option] === undefined && text) {
      values[option] = command.options[option].type === "boolean" ? TRUE.has(text.toLowerCase()) : text;
    }
  }
  for (const [option, { default: fallback }] of Object.entries(command.options)) values[option] ??= fallback;
  const missing = command.required.filter((option) => !values[option]);
  if (missing.length) throw new ClientError(`${missing.map((m) => `--${m}`).join(", ")} required\n${USAGE}`);
  return [command, values];
}

/** What --tls, --tls-ca and --tls-identity ask for: false (plaintext), true (Node's CA roots), or { ca, identity }. */
async function trust(values) {
  const ca = values["tls-ca"] ? await readPem(values["tls-ca"], "CA certificate") : undefined;
  const identity = values["tls-identity"] ? await readPem(values["tls-identity"], "client identity") : undefined;
  return ca || identity ? { ca, identity } : values.tls;
}

async function readPem(path, what) {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new ClientError(`cannot read the TLS ${what} ${path}: ${error.code ?? error.message}`);
  }
}

const stop = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stop.abort());
try {
  const [command, values] = parse(process.argv.slice(2));
  await command.run(values, stop);
  process.exit(0);
} catch (error) {
  const known =
    error instanceof ClientError ||
    ["AgentStopped", "DataFileError"].includes(error.name) ||
    error.code?.startsWith("ERR_PARSE_ARGS");
  console.error(`error: ${known ? error.message : error.stack}`);
  process.exit(known ? 2 : 1);
}
