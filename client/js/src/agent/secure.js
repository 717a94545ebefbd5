/**
 * A client's side of one SecAgg+ round (docs/secagg.md), as client/secagg.py does it:
 *
 *     advertise  two fresh X25519 key pairs: c (seals share bundles), s (pairwise masks)
 *     share      split s's private key and the self-mask seed b among the neighbours, one sealed bundle each
 *     masked     quantise the update, add PRG(b) and ±PRG(s_ij) for neighbours that shared
 *     unmask     reveal, per neighbour, the share of b (it survived) or of s (it dropped), never both
 *
 * Each method builds the next request or takes the coordinator's reply. The coordinator never
 * sees this client's update, only the masked vector; the session never sees another's. With
 * distributed DP in the plan, the session checks the plan's numbers before any key is made
 * (NoisePlanError) and adds discrete Gaussian noise to the quantised update before masking.
 */

import {
  FORMAT,
  PrivateKey,
  PublicKey,
  Quantizer,
  RevealRefused,
  ShareBundle,
  agree,
  decryptBundle,
  encryptBundle,
  mask,
  pairwiseSeed,
  randomBytes,
  reveal,
  shareKey,
  sign,
  split,
} from "../secagg/index.js";
import { checkNoise, clipNorm, discreteGaussian } from "../privacy/index.js";
import { readSpecs } from "./tensors.js";

/** This device refuses a secure assignment before any key is made: it masks in another byte format. */
export class PlanRefused extends Error {
  name = "PlanRefused";
}

export class SecAggSession {
  /** Use SecAggSession.start (key generation is async). */
  constructor(assignment, credential, c, s, b) {
    Object.assign(this, { assignment, credential, c, s, b });
    this.plan = assignment.secagg;
    this.index = null;
    this.peers = new Map(); // index → Peer
    this.bundles = new Map(); // sender index → ShareBundle, from neighbours that shared
    this.revealed = false;
  }

  /**
   * Checks the plan first, before any key is made: its byte format (PlanRefused), then its DP
   * numbers (NoisePlanError), with `floor` the least noise multiplier this device accepts (0: none).
   */
  static async start(assignment, credential, { floor = 0 } = {}) {
    const format = assignment.secagg.format ?? 0;
    if (format !== FORMAT) {
      throw new PlanRefused(
        `the coordinator masks in secure aggregation format ${format}, this client in format ${FORMAT} ` +
          "(docs/secagg.md); upgrade the older side",
      );
    }
    const dim = updateSize(assignment);
    const noiseMultiplier = checkNoise(assignment.secagg, dim, floor);
    const [c, s] = await Promise.all([PrivateKey.generate(), PrivateKey.generate()]);
    return Object.assign(new SecAggSession(assignment, credential, c, s, randomBytes(32)), { dim, noiseMultiplier });
  }

  ids() {
    return { credential: this.credential, taskId: this.assignment.taskId, roundId: this.assignment.roundId };
  }

  get me() {
    if (this.index === null) throw new Error("the roster has not arrived yet");
    return this.index;
  }

  // -- advertise ---------------------------------------------------------------------------
  advertiseRequest() {
    return { ...this.ids(), encryptionKey: this.c.publicBytes(), maskKey: this.s.publicBytes() };
  }

  takeRoster(response) {
    this.index = response.index;
    this.peers = new Map(response.neighbours.map((p) => [p.index, p]));
    if (this.peers.size < this.plan.threshold - 1) {
      throw new RangeError(`expected at least ${this.plan.threshold - 1} neighbours, got ${this.peers.size}`);
    }
  }

  // -- share -------------------------------------------------------------------------------
  async #shareKey(peer) {
    const shared = await agree(this.c, await PublicKey.fromBytes(this.peers.get(peer).encryptionKey));
    return shareKey(shared, this.assignment.roundId, this.me, peer);
  }

  async shareRequest() {
    const order = [...this.peers.keys()].sort((a, b) => a - b);
    const xs = order.map((j) => j + 1);
    const sShares = split(this.s.privateBytes(), this.plan.threshold, xs);
    const bShares = split(this.b, this.plan.threshold, xs);
    const shares = await Promise.all(
      order.map(async (j, n) => {
        const bundle = new ShareBundle(this.me, j, sShares[n], bShares[n]);
        const ciphertext = await encryptBundle(await this.#shareKey(j), this.assignment.roundId, bundle);
        return { sender: this.me, receiver: j, ciphertext };
      }),
    );
    return { ...this.ids(), shares };
  }

  async takeShares(response) {
    for (const sealed of response.shares) {
      if (sealed.receiver !== this.me || !this.peers.has(sealed.sender)) {
        throw new RangeError(
          `expected bundles for ${this.me} from a neighbour, got ${sealed.sender}→${sealed.receiver}`,
        );
      }
      const key = await this.#shareKey(sealed.sender);
      const bundle = await decryptBundle(key, this.assignment.roundId, sealed.sender, this.me, sealed.ciphertext);
      this.bundles.set(sealed.sender, bundle);
    }
  }

  // -- masked input ------------------------------------------------------------------------
  /**
   * The update (one Float32Array, parameters in model order) quantised and masked: a
   * Uint32Array of as many values. With dpClip in the plan it is first clipped to that L2
   * norm, and with dpNoiseStddev discrete Gaussian noise is added to its integers (wrapping mod
   * 2^32 like the masks), as the Python agent does: the coordinator only sees the noisy sum.
   */
  async maskedInput(flat) {
    const { dpClip, dpNoiseStddev } = this.plan;
    if (dpNoiseStddev && flat.length !== this.dim) {
      throw new RangeError(`expected an update of ${this.dim} values, as the assignment's tensors, got ${flat.length}`);
    }
    const values = dpClip ? clipNorm(flat, dpClip) : flat;
    const quantized = new Quantizer(this.plan.clip, this.plan.maxClients).quantize(values);
    if (dpNoiseStddev) {
      const noise = discreteGaussian(quantized.length, dpNoiseStddev);
      for (let i = 0; i < quantized.length; i++) quantized[i] += noise[i]; // a Uint32Array keeps it mod 2^32
    }
    const pairs = [];
    for (const j of [...this.bundles.keys()].sort((a, b) => a - b)) {
      const shared = await agree(this.s, await PublicKey.fromBytes(this.peers.get(j).maskKey));
      pairs.push([await pairwiseSeed(shared, this.assignment.roundId, this.me, j), sign(this.me, j)]);
    }
    return mask(quantized, this.b, pairs);
  }

  // -- unmask ------------------------------------------------------------------------------
  /**
   * The shares to reveal for the neighbours the coordinator names. Refuses a second reveal in
   * the same round, which could ask for the other secret of a neighbour.
   */
  unmaskRequest(response) {
    if (this.revealed) throw new RevealRefused(`round ${this.assignment.roundId}: shares were already revealed once`);
    const survivors = response.survivors.filter((j) => this.bundles.has(j) && j !== this.me);
    const dropped = response.dropped.filter((j) => this.bundles.has(j));
    const [bShares, sShares] = reveal(this.bundles, survivors, dropped);
    const shares = [
      ...[...bShares].map(([owner, share]) => ({ owner, maskKey: false, share: share.toBytes() })),
      ...[...sShares].map(([owner, share]) => ({ owner, maskKey: true, share: share.toBytes() })),
    ];
    this.revealed = true;
    return { ...this.ids(), shares };
  }
}

/** Coordinates of the update an assignment asks for: its trained tensors (all of them without `trainable`). */
export function updateSize(assignment) {
  const trained = new Set(assignment.trainable ?? []);
  const specs = readSpecs(assignment.tensors.filter((t) => !trained.size || trained.has(t.name)));
  return specs.reduce((n, s) => n + s.size, 0);
}
