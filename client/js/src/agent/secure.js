/**
 * A client's side of one SecAgg+ round (docs/secagg.md), as client/secagg.py does it:
 *
 *     advertise  two fresh X25519 key pairs: c (seals share bundles), s (pairwise masks)
 *     share      split s's private key and the self-mask seed b among the neighbours, one sealed bundle each
 *     masked     quantise the update, add PRG(b) and ±PRG(s_ij) for neighbours that shared
 *     unmask     reveal, per neighbour, the share of b (it survived) or of s (it dropped), never both
 *
 * Each method builds the next request or takes the coordinator's reply. The coordinator never
 * sees this client's update, only the masked vector; the session never sees another's.
 */

import {
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

  static async start(assignment, credential) {
    const [c, s] = await Promise.all([PrivateKey.generate(), PrivateKey.generate()]);
    return new SecAggSession(assignment, credential, c, s, randomBytes(32));
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
   * Uint32Array of as many values. With dp_clip in the plan it is first clipped to that L2
   * norm, as the Python agent does; on-device noise (dp_noise_stddev) is refused by the agent
   * before the round starts.
   */
  async maskedInput(flat) {
    const values = this.plan.dpClip ? clipNorm(flat, this.plan.dpClip) : flat;
    const quantized = new Quantizer(this.plan.clip, this.plan.maxClients).quantize(values);
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

/** `values` scaled down to L2 norm `maxNorm` when longer (fedge.shared.privacy.clip_update). */
export function clipNorm(values, maxNorm) {
  let squares = 0;
  for (const v of values) squares += v * v;
  const norm = Math.sqrt(squares);
  const scale = norm > 0 ? Math.min(1, maxNorm / norm) : 1;
  return scale === 1 ? values : Float32Array.from(values, (v) => v * scale);
}
