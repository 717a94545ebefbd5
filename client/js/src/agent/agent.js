/**
 * The browser's agent: check in, train when asked, report the update, and keep going — the
 * Python agent's loop (client/agent.py) with the same semantics:
 *
 *     check in ── retry_after ──► wait ──► check in
 *        └── assignment ──► download weights ──► train locally ──► upload the update
 *        └── secure assignment ─► advertise keys ─► share keys ─► train ─► masked upload ─► unmask
 *        └── scoring assignment ─► download weights ─► score on held-out samples ─► upload the scores
 *
 * Each SecAgg stage is a poll: a reply with retry_after_ms means "the stage is still open, ask
 * again". Failed calls back off exponentially with full jitter; a refusal that only means "the
 * round moved on" is shrugged off; UNAUTHENTICATED (a revoked credential) stops the agent.
 *
 * Progress is told as events (an EventTarget), for the page:
 *
 *     status      {state, round?, text}       checking-in, downloading, training, scoring, uploading, secagg, waiting, offline
 *     assignment  {taskId, round, modelVersion, inputShape, secure, parameters}
 *     batch       {round, epoch, seen, loss, accuracy}
 *     upload      {round, taskId, secure, dtype, values, bytes, numExamples, metrics, publicKeys, sealedShares}
 *     round       {round, taskId}             an update of this client counted towards the round
 */

import { UpdateStatus } from "../gen/fedge/v1/coordinator_pb.js";
import { NoisePlanError } from "../privacy/distributed.js";
import { GatewayError } from "../protocol/frames.js";
import { KeyAgreementError } from "../secagg/keys.js";
import { ShareDecryptionError } from "../secagg/shares.js";
import { Backoff } from "./backoff.js";
import { AgentStopped, UNKNOWN_CREDENTIAL, UnknownCredential } from "./errors.js";
import { PlanRefused, SecAggSession } from "./secure.js";
import { decodeWeights, encodeArrays, flatten, readSpecs } from "./tensors.js";

/** Refusals that mean "that round is over": drop it and check in again. */
export const ROUND_MOVED_ON = new Set(["FAILED_PRECONDITION", "ALREADY_EXISTS", "NOT_FOUND"]);
const SIT_OUT_S = 1; // how often an agent that left a secure round asks whether the next one opened

/** What the dashboard shows as platform and backend: "browser-chromium/webgl". */
export function platformString(engine, backend) {
  return `browser-${engine}/${backend}`;
}

/** A fresh enrolment nonce, 16 random bytes as hex: drawn once per enrolment, repeated by its retries. */
export function newNonce(random = globalThis.crypto) {
  return Array.from(random.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Trades a one-time enrolment token for {clientId, credential}. Every retry of one enrolment
 * passes the same random `nonce`, so a retry after a lost reply gets the client back, not a refusal.
 */
export async function enroll(client, token, { platform, name = "", nonce = "" } = {}) {
  const response = await client.enroll({ token, platform, clientName: name, nonce });
  return { clientId: response.clientId, credential: response.credential };
}

const outcome = (fields = {}) => ({ trainedRound: null, waitS: 0, finished: false, reason: "", ...fields });

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

export class Agent extends EventTarget {
  /**
   * `client`: a CoordinatorClient (or the Node client's GrpcCoordinatorClient); `trainer`:
   * {train({specJson, start, names, plan, trainable, onBatch})} (a LocalTrainer); `platform`:
   * platformString(...); `floor`: the least on-device DP noise multiplier this device accepts
   * (0: any plan, noise or not; docs/privacy.md), as the Python agent's --min-dp-noise.
   */
  constructor({ client, credential, trainer, platform, backoff = new Backoff(), floor = 0 }) {
    super();
    if (!(Number.isFinite(floor) && floor >= 0)) throw new RangeError(`floor must be a finite number ≥ 0, got ${floor}`);
    Object.assign(this, { client, credential, trainer, platform, backoff, floor });
    this.secure = null; // {assignment, session, stage, pending, upload} while a secure round is under way
    this.left = null; // the id of a secure round this agent left: it cannot rejoin it with new keys
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** One request: a check-in, or the next stage of a secure round under way. */
  async step() {
    if (this.secure) return this.#secureStep(this.secure);
    this.emit("status", { state: "checking-in", text: "checking in" });
    const response = await this.client.checkIn({ credential: this.credential, platform: this.platform });
    const { case: kind, value } = response.outcome;
    if (kind === "retry") {
      return outcome({ waitS: value.retryAfterMs / 1000, finished: value.finished, reason: value.reason });
    }
    if (kind !== "assignment") return outcome({ waitS: 1, reason: "the coordinator sent neither work nor a wait" });
    if (value.roundId === this.left) {
      return outcome({ waitS: SIT_OUT_S, reason: "waiting for the next round: this one went on without us" });
    }
    if ("external" in JSON.parse(value.modelSpecJson)) {
      // model = "external": the clients' own model (a Flower NumPyClient's), which only `fedge client --flower` trains
      return this.#sitOut(value, "the task's model is external (a Flower client's): this device cannot train it");
    }
    try {
      this.#announce(value);
    } catch (error) {
      if (error instanceof AgentStopped && value.secagg) await this.#decline(value, error.message);
      throw error;
    }
    if (value.plan?.scoreOnly) return this.#score(value); // no update leaves the device: no floor to check
    if (this.floor && !value.secagg) {
      const reason = `round ${value.round} of task ${JSON.stringify(value.taskId)} refused: it is not securely aggregated`;
      return this.#sitOut(value, `${reason}, and this device requires on-device noise of multiplier ≥ ${this.floor}`);
    }
    if (value.secagg) {
      let session;
      try {
        session = await SecAggSession.start(value, this.credential, { floor: this.floor });
      } catch (error) {
        if (!(error instanceof NoisePlanError || error instanceof PlanRefused)) throw error;
        const reason = `round ${value.round} of task ${JSON.stringify(value.taskId)} refused, no keys sent`;
        return this.#sitOut(value, `${reason}: ${error.message}`);
      }
      this.secure = { assignment: value, session, stage: "advertise" };
      return this.#secureStep(this.secure);
    }
    const trained = await this.#train(value);
    const tensors = value.tensors.filter((t) => trained.names.includes(t.name));
    await this.#upload(value, encodeArrays(trained.update), tensors, trained, {});
    return this.#counted(value);
  }

  /** One step, with refusals and failures turned into outcomes: what `run` loops over. */
  async attempt() {
    try {
      const result = await this.step();
      this.backoff.reset();
      return result;
    } catch (error) {
      if (error instanceof ShareDecryptionError || error instanceof KeyAgreementError) {
        this.#leave(); // e.g. the page reloaded mid-round: its neighbours sealed their shares for old keys
        return outcome({ waitS: SIT_OUT_S, reason: error.message });
      }
      if (!(error instanceof GatewayError)) throw error;
      return this.#handle(error);
    }
  }

  /**
   * Loop until `signal` aborts (or, with `exitWhenDone`, every task has completed). Rejects
   * with AgentStopped (or an unexpected error) when waiting cannot help; the page shows why.
   */
  async run({ signal, exitWhenDone = false } = {}) {
    try {
      while (!signal?.aborted) {
        const result = await this.attempt();
        if (result.finished && exitWhenDone) return;
        if (result.waitS > 0) {
          const text = result.finished ? "every task has completed" : result.reason || "no work for now";
          this.emit("status", { state: "waiting", text: `${text}; next check-in in ${result.waitS.toFixed(1)} s` });
        }
        await sleep(result.waitS * 1000, signal);
      }
    } catch (error) {
      this.secure = null; // a secure round cannot be resumed after a stop
      throw error;
    }
  }

  #handle(error) {
    if (error.codeName === "UNAUTHENTICATED") {
      const Refusal = error.message.includes(UNKNOWN_CREDENTIAL) ? UnknownCredential : AgentStopped;
      throw new Refusal(`the coordinator refused this client: ${error.message}`);
    }
    const secure = this.secure;
    if (error.codeName === "ALREADY_EXISTS" && secure?.stage === "train") {
      // the masked input arrived, its answer did not (a restart, a lost link): go on to unmask
      [secure.stage, secure.pending] = ["unmask", secure.session.ids()];
      return outcome();
    }
    if (error.codeName === "NOT_FOUND" && secure?.stage === "unmask" && secure.upload) {
      secure.stage = "train"; // the coordinator restarted without our masked input: the same bytes again
      return outcome();
    }
    if (ROUND_MOVED_ON.has(error.codeName)) {
      this.#leave(); // a secure round that moved on cannot be resumed
      return outcome({ waitS: 0.1, reason: error.message });
    }
    const delay = this.backoff.next();
    this.emit("status", { state: "offline", text: `${error.message}; retrying in ${delay.toFixed(1)} s` });
    return outcome({ waitS: delay, reason: error.message });
  }

  /** A plan this device refuses: it declines the round (which then need not wait for it) and asks again later. */
  async #sitOut(assignment, reason) {
    this.left = assignment.roundId;
    this.emit("status", { state: "waiting", text: reason });
    await this.#decline(assignment, reason);
    return outcome({ waitS: SIT_OUT_S, reason });
  }

  #leave() {
    if (this.secure) this.left = this.secure.assignment.roundId;
    this.secure = null;
  }

  /**
   * Tell the coordinator this device sits a round out, so that the round does not wait for it:
   * as its keys in a secure round, as its update otherwise. Best effort (unheard, the stage's
   * deadline does the same).
   */
  async #decline(assignment, reason) {
    const ids = { credential: this.credential, taskId: assignment.taskId, roundId: assignment.roundId };
    const decline = reason.slice(0, 200);
    try {
      if (assignment.secagg) await this.client.advertiseKeys({ ...ids, decline });
      else await this.client.uploadUpdate({ ...ids, decline }, new Uint8Array(0));
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
    }
  }

  #announce(assignment) {
    if (assignment.secagg && !globalThis.crypto?.subtle) {
      throw new AgentStopped(
        "secure aggregation needs WebCrypto, which browsers give only to pages served over https or from localhost",
      );
    }
    this.emit("assignment", {
      taskId: assignment.taskId,
      round: assignment.round,
      modelVersion: assignment.modelVersion,
      inputShape: JSON.parse(assignment.modelSpecJson).input_shape,
      secure: Boolean(assignment.secagg),
      parameters: readSpecs(assignment.tensors).reduce((n, s) => n + s.size, 0),
    });
  }

  /** Advance a secure round by one request; a stage still open means: ask again shortly. */
  async #secureStep(run) {
    const { session, assignment } = run;
    const round = assignment.round;
    if (run.stage === "advertise") {
      this.emit("status", { state: "secagg", round, text: `round ${round}: advertising keys` });
      const roster = await this.client.advertiseKeys(session.advertiseRequest());
      if (roster.retryAfterMs) return outcome({ waitS: roster.retryAfterMs / 1000 });
      session.takeRoster(roster);
      [run.stage, run.pending] = ["share", await session.shareRequest()];
    } else if (run.stage === "share") {
      this.emit("status", { state: "secagg", round, text: `round ${round}: sharing keys` });
      const shares = await this.client.shareKeys(run.pending);
      if (shares.retryAfterMs) return outcome({ waitS: shares.retryAfterMs / 1000 });
      await session.takeShares(shares);
      run.stage = "train";
    } else if (run.stage === "train") {
      if (!run.upload) {
        // made once: a retry sends the same bytes (two masked inputs under one mask show their difference)
        const trained = await this.#train(assignment);
        const masked = await session.maskedInput(flatten(trained.update));
        const tensors = [{ name: "masked", dtype: "uint32", shape: [BigInt(masked.length)] }];
        const secure = {
          publicKeys: 2,
          sealedShares: run.pending.shares.length,
          noiseMultiplier: session.noiseMultiplier,
        };
        run.upload = [encodeArrays([masked]), tensors, trained, secure];
      }
      await this.#upload(assignment, ...run.upload);
      [run.stage, run.pending] = ["unmask", session.ids()];
    } else if (run.stage === "unmask") {
      this.emit("status", { state: "secagg", round, text: `round ${round}: helping to unmask the sum` });
      const reply = await this.client.unmask(run.pending);
      if (reply.retryAfterMs) return outcome({ waitS: reply.retryAfterMs / 1000 });
      if (reply.done || run.pending.shares?.length) return this.#counted(assignment);
      run.pending = session.unmaskRequest(reply);
      if (!run.pending.shares.length) return this.#counted(assignment);
    }
    return outcome();
  }

  #counted(assignment) {
    this.secure = null;
    this.emit("round", { round: assignment.round, taskId: assignment.taskId });
    return outcome({ trainedRound: assignment.round });
  }

  async #train(assignment) {
    const round = assignment.round;
    const received = await this.#download(assignment);
    this.emit("status", { state: "training", round, text: `round ${round}: training on this device` });
    return this.trainer.train({
      ...received,
      trainable: assignment.trainable,
      onBatch: (batch) => this.emit("batch", { round, ...batch }),
    });
  }

  /** A scoring round: the received model's figures on the held-out samples, uploaded with no tensors. */
  async #score(assignment) {
    const round = assignment.round;
    const received = await this.#download(assignment);
    this.emit("status", { state: "scoring", round, text: `round ${round}: scoring the model on held-out samples` });
    const scored = this.trainer.score ? await this.trainer.score(received) : null;
    if (!scored) return this.#sitOut(assignment, "this device holds no samples out to score the model on");
    await this.#upload(assignment, new Uint8Array(0), [], scored, {});
    return this.#counted(assignment);
  }

  /** The assignment's weights: {specJson, start, names, plan}, what the trainer takes. */
  async #download(assignment) {
    const round = assignment.round;
    this.emit("status", { state: "downloading", round, text: `round ${round}: downloading the model` });
    const request = { credential: this.credential, taskId: assignment.taskId, roundId: assignment.roundId };
    const bytes = await this.client.downloadModel(request, assignment.modelBytes);
    const specs = readSpecs(assignment.tensors);
    const names = specs.map((s) => s.name);
    return { specJson: assignment.modelSpecJson, start: decodeWeights(specs, bytes), names, plan: assignment.plan };
  }

  async #upload(assignment, data, tensors, trained, secure) {
    const round = assignment.round;
    const what = tensors.length ? "the update" : "the scores"; // a scoring round uploads no tensors
    this.emit("status", { state: "uploading", round, text: `round ${round}: sending ${what}` });
    const header = {
      credential: this.credential,
      taskId: assignment.taskId,
      roundId: assignment.roundId,
      numExamples: BigInt(trained.numExamples),
      tensors,
      metrics: trained.metrics,
    };
    const response = await this.client.uploadUpdate(header, data);
    const masked = "publicKeys" in secure;
    this.emit("upload", {
      round,
      taskId: assignment.taskId,
      secure: masked,
      dtype: masked ? "uint32" : "float32",
      values: data.length / 4,
      bytes: data.length,
      numExamples: trained.numExamples,
      metrics: trained.metrics,
      discarded: response.status === UpdateStatus.DISCARDED,
      ...secure,
    });
  }
}
