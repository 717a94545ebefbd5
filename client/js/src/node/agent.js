/**
 * The Node desktop client: the same Agent as the page, over gRPC straight to the daemon, on a
 * folder of samples, TF.js's wasm (or cpu) backend. As `fedge client` does it: enrol once with
 * a token (the credential is kept in a state file, per server), then check in and train when
 * asked until stopped.
 */

import { readFile, readdir, writeFile } from "node:fs/promises";
import { arch, platform } from "node:os";
import { join } from "node:path";

import "@tensorflow/tfjs-backend-wasm";

import { Agent, enroll, newNonce, sleep } from "../agent/agent.js";
import { Backoff } from "../agent/backoff.js";
import { UnknownCredential } from "../agent/errors.js";
import { LocalTrainer } from "../agent/trainer.js";
import { readDataFiles, samplesOfShape } from "../data/datafiles.js";
import { selectBackend } from "../model/backend.js";
import { GrpcCoordinatorClient } from "./grpc.js";

export const STATE_FILE = ".fedge-node.json";
const SAMPLE_FILE = /^[^.].*\.(npz|csv|json)$/; // not a state file such as .fedge-node.json

/** A refusal that waiting cannot fix: the message is for the device's owner. */
export class ClientError extends Error {
  name = "ClientError";
}

/** The samples of a `fedge data split` folder (meta.json, .npz, .csv, .json files): {meta, batches}. */
export async function loadFolder(folder) {
  let names;
  try {
    names = (await readdir(folder)).filter((name) => SAMPLE_FILE.test(name)).sort();
  } catch (error) {
    throw new ClientError(`cannot read the data folder ${folder}: ${error.message}`);
  }
  const files = await Promise.all(names.map(async (name) => ({ name, bytes: await readFile(join(folder, name)) })));
  return readDataFiles(files);
}

/** "node-linux-x64/wasm": what the coordinator lists as this client's platform and backend. */
export function nodePlatform(backend) {
  return `node-${platform()}-${arch()}/${backend}`;
}

/**
 * {clientId, credential, tls} kept for `server` by an earlier run, or null. One issued over TLS is
 * never sent in plaintext: without `tls` this throws, so a restart that forgot --tls-ca cannot
 * hand it to whoever answers.
 */
export async function loadCredential(state, server, { tls = false } = {}) {
  let joined;
  try {
    joined = JSON.parse(await readFile(state, "utf8"))[server];
  } catch {
    return null;
  }
  if (!joined?.credential) return null;
  if (joined.tls && !tls) {
    throw new ClientError(
      `the credential for ${server} in ${state} was issued over TLS: pass --tls-ca (or --tls) again; ` +
        "it is never sent in plaintext",
    );
  }
  return joined;
}

export async function saveCredential(state, server, joined) {
  let saved = {};
  try {
    saved = JSON.parse(await readFile(state, "utf8"));
  } catch {
    // a first run, or an unreadable file: start afresh
  }
  saved[server] = joined;
  await writeFile(state, JSON.stringify(saved), { mode: 0o600 });
}

/**
 * Trade `token` for a credential, retrying while the daemon is away with the same nonce, so a
 * reply lost to a restart does not spend the token for nothing.
 */
export async function enrollWithRetry(client, token, { platform, name, signal, backoff = new Backoff(), log }) {
  const nonce = newNonce();
  while (!signal?.aborted) {
    try {
      return await enroll(client, token, { platform, name, nonce });
    } catch (error) {
      if (!error.retryable) throw new ClientError(`enrolment refused: ${error.message}`);
      const delay = backoff.next();
      log?.(`enrolment: coordinator unreachable (${error.message}); retrying in ${delay.toFixed(1)} s`);
      await sleep(delay * 1000, signal);
    }
  }
  throw new ClientError("stopped before enrolment finished");
}

/**
 * Run the client until `signal` aborts (or every task completed, with `exitWhenDone`).
 * `log(line)` receives its progress.
 */
export async function runClient({
  server,
  data,
  token = "",
  name = "",
  state = join(data, STATE_FILE),
  backend = "wasm",
  floor = 0,
  tls = false,
  exitWhenDone = false,
  signal,
  log = console.log,
}) {
  const { meta, batches } = await loadFolder(data);
  const used = await selectBackend({ order: [backend] });
  const platformName = nodePlatform(used);
  const client = new GrpcCoordinatorClient(server, { tls });
  let joined = await loadCredential(state, server, { tls: Boolean(tls) });
  let saved = Boolean(joined);
  const enrol = async () => {
    joined = await enrollWithRetry(client, token, { platform: platformName, name, signal, log });
    await saveCredential(state, server, { ...joined, tls: Boolean(tls) });
  };
  if (!joined) {
    if (!token) throw new ClientError(`not enrolled with ${server} yet: pass --token (from \`fedge token create\`)`);
    await enrol();
  }
  const samples = batches.reduce((n, b) => n + b.y.length, 0);
  const source = meta?.dataset || data;
  log(`client ${joined.clientId} ready: ${samples} samples of ${source}, ${used} backend, coordinator ${server}`);
  const trainer = new LocalTrainer((shape) => samplesOfShape(batches, shape));
  try {
    for (;;) {
      const agent = new Agent({ client, credential: joined.credential, trainer, platform: platformName, floor });
      logTo(log, agent);
      try {
        return await agent.run({ signal, exitWhenDone });
      } catch (error) {
        if (!(saved && token && error instanceof UnknownCredential)) throw error;
      }
      // the coordinator at that address was set up afresh since: the token given joins this one
      log(`the coordinator does not know the credential saved in ${state}: enrolling with the token`);
      await enrol();
      saved = false;
    }
  } finally {
    client.close();
  }
}

/** Sends `agent`'s progress to `log(line)`: status changes, and a line per round it took part in. */
function logTo(log, agent) {
  let last = "";
  agent.addEventListener("status", ({ detail }) => {
    if (detail.text !== last) log((last = detail.text));
  });
  const reported = new Map(); // round -> the metrics its upload carried
  agent.addEventListener("upload", ({ detail }) => reported.set(detail.round, detail.metrics));
  agent.addEventListener("round", ({ detail }) => {
    log(roundLine(detail.round, reported.get(detail.round)));
    reported.delete(detail.round);
  });
}

/** What the agent did in a round, as `fedge client` logs it: trained (with its figures), or only scored the model. */
export function roundLine(round, metrics) {
  if (!Number.isFinite(metrics?.train_loss) && Number.isFinite(metrics?.eval_accuracy)) {
    return `round ${round}: scored the model received: ${metrics.eval_accuracy.toFixed(3)} on held-out samples`;
  }
  return `round ${round}: trained and reported${figures(metrics)}`;
}

/** " (training loss 0.23, accuracy 0.917; the model received: 0.850 on held-out samples)", as `fedge client` logs it. */
export function figures(metrics) {
  if (!Number.isFinite(metrics?.train_loss)) return "";
  let line = `training loss ${metrics.train_loss.toPrecision(3)}, accuracy ${metrics.train_accuracy.toFixed(3)}`;
  if (Number.isFinite(metrics.eval_accuracy)) line += `; the model received: ${metrics.eval_accuracy.toFixed(3)} on held-out samples`;
  return ` (${line})`;
}
