/**
 * Whole SecAgg+ rounds replayed from the golden vectors: every message each client sends and
 * the server's result, recomputed with the JS primitives from the clients' fixed secrets, must
 * be the bytes the Python reference round (tests/vectors/secagg/generate.py) wrote.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  PrivateKey,
  Quantizer,
  Share,
  ShareBundle,
  agree,
  combine,
  decryptBundle,
  encryptBundle,
  mask,
  neighbours,
  pairwiseSeed,
  removePairMasks,
  removeSelfMasks,
  reveal,
  shareKey,
  sign,
  split,
} from "../../src/secagg/index.js";
import { hex, keystreamRng, secaggVector, toHex } from "../helpers.js";

const STAGES = ["advertise_keys", "share_keys", "masked_input", "unmask"];
const hexMap = (shares) => Object.fromEntries([...shares].map(([j, share]) => [String(j), toHex(share.toBytes())]));

async function loadClient(c) {
  return {
    ...c,
    c: await PrivateKey.fromBytes(hex(c.c_private)),
    s: await PrivateKey.fromBytes(hex(c.s_private)),
    b: hex(c.b),
  };
}

/** Who is still there at each stage: a client dropped after a stage is absent from the next. */
function aliveByStage(n, droppedAfter) {
  const gone = new Set();
  const alive = {};
  for (const stage of STAGES) {
    alive[stage] = [...Array(n).keys()].filter((i) => !gone.has(i));
    (droppedAfter[stage] ?? []).forEach((i) => gone.add(i));
  }
  return alive;
}

class Replay {
  constructor(vector, clients, graph) {
    this.v = vector;
    this.p = vector.parameters;
    this.clients = clients;
    this.graph = graph;
    this.alive = aliveByStage(this.p.n, vector.dropped_after);
    this.quantizer = new Quantizer(this.p.clip, this.p.n);
    this.sealed = new Map(); // "i,j" -> ciphertext
    this.inbox = new Map(); // i -> Map(j -> ShareBundle)
    this.masked = new Map(); // i -> Uint32Array
    this.answers = new Map(); // i -> [bShares, sShares]
  }

  async shareKeyOf(i, j) {
    return shareKey(await agree(this.clients[i].c, this.clients[j].c.publicKey()), this.p.round_id, i, j);
  }

  async pairSeedOf(i, j) {
    return pairwiseSeed(await agree(this.clients[i].s, this.clients[j].s.publicKey()), this.p.round_id, i, j);
  }

  advertise_keys() {
    return this.alive.advertise_keys.map((i) => ({
      index: i,
      c_public: toHex(this.clients[i].c.publicBytes()),
      s_public: toHex(this.clients[i].s.publicBytes()),
    }));
  }

  async share_keys() {
    const messages = [];
    const t = this.p.threshold;
    for (const i of this.alive.share_keys) {
      const me = this.clients[i];
      const peers = this.graph[i].filter((j) => this.alive.share_keys.includes(j));
      const rng = await keystreamRng(hex(me.share_rng_seed), 2 * 66 * (t - 1));
      const xs = peers.map((j) => j + 1);
      const sParts = split(me.s.privateBytes(), t, xs, rng);
      const bParts = split(me.b, t, xs, rng);
      for (const [m, j] of peers.entries()) {
        const key = await this.shareKeyOf(i, j);
        const bundle = new ShareBundle(i, j, sParts[m], bParts[m]);
        this.sealed.set(`${i},${j}`, await encryptBundle(key, this.p.round_id, bundle));
        messages.push({
          sender: i,
          receiver: j,
          key: toHex(key),
          plaintext: toHex(bundle.toBytes()),
          ciphertext: toHex(this.sealed.get(`${i},${j}`)),
        });
      }
    }
    return messages;
  }

  async masked_input() {
    const messages = [];
    for (const i of this.alive.masked_input) {
      const senders = this.graph[i].filter((j) => this.sealed.has(`${j},${i}`));
      const inbox = new Map();
      for (const j of senders) {
        inbox.set(
          j,
          await decryptBundle(await this.shareKeyOf(i, j), this.p.round_id, j, i, this.sealed.get(`${j},${i}`)),
        );
      }
      this.inbox.set(i, inbox);
      const pairs = [];
      for (const j of senders) pairs.push([await this.pairSeedOf(i, j), sign(i, j)]);
      const client = this.clients[i];
      const q = this.quantizer.quantizeWith(Float32Array.from(client.update), client.uniforms);
      this.masked.set(i, await mask(q, client.b, pairs));
      const pairSeeds = senders.map((j, m) => ({ peer: j, sign: pairs[m][1], seed: toHex(pairs[m][0]) }));
      messages.push({
        index: i,
        quantized: Array.from(q),
        pair_seeds: pairSeeds,
        masked: Array.from(this.masked.get(i)),
      });
    }
    return messages;
  }

  unmask() {
    return this.alive.unmask.map((i) => {
      const holders = [...this.inbox.get(i).keys()];
      const survivors = holders.filter((j) => this.masked.has(j));
      const dropped = holders.filter((j) => !this.masked.has(j));
      const answer = reveal(this.inbox.get(i), survivors, dropped);
      this.answers.set(i, answer);
      return { index: i, survivors, dropped, b_shares: hexMap(answer[0]), s_shares: hexMap(answer[1]) };
    });
  }

  /** The shares of `owner`'s b (kind 0) or s_sk (kind 1), in ascending order of holder. */
  revealed(owner, kind) {
    return [...this.answers.keys()]
      .sort((a, b) => a - b)
      .flatMap((j) => {
        const share = this.answers.get(j)[kind].get(owner);
        return share ? [Share.fromBytes(share.toBytes())] : []; // as the server receives them: bytes
      });
  }

  async server() {
    const survivors = [...this.masked.keys()].sort((a, b) => a - b);
    const lost = this.alive.share_keys.filter((i) => !this.masked.has(i));
    const total = new Uint32Array(this.p.parameters);
    for (const i of survivors) this.masked.get(i).forEach((v, m) => (total[m] += v));
    const bSeeds = new Map(survivors.map((i) => [i, combine(this.revealed(i, 0), this.p.threshold)]));
    const sKeys = new Map();
    for (const d of lost) sKeys.set(d, await PrivateKey.fromBytes(combine(this.revealed(d, 1), this.p.threshold)));
    const removed = [];
    for (const d of lost) {
      for (const j of this.graph[d].filter((j) => this.masked.has(j) && this.sealed.has(`${d},${j}`))) {
        const secret = await agree(sKeys.get(d), this.clients[j].s.publicKey());
        removed.push({
          survivor: j,
          dropped: d,
          sign: sign(j, d),
          seed: await pairwiseSeed(secret, this.p.round_id, j, d),
        });
      }
    }
    const withoutSelf = await removeSelfMasks(total, [...bSeeds.values()]);
    const unmasked = await removePairMasks(
      withoutSelf,
      removed.map((r) => [r.seed, r.sign]),
    );
    return {
      survivors,
      dropped: lost,
      masked_sum: Array.from(total),
      b: Object.fromEntries([...bSeeds].map(([i, b]) => [String(i), toHex(b)])),
      s_private: Object.fromEntries([...sKeys].map(([d, key]) => [String(d), toHex(key.privateBytes())])),
      removed_pair_masks: removed.map((r) => ({ ...r, seed: toHex(r.seed) })),
      total: Array.from(unmasked),
      sum: Array.from(this.quantizer.dequantizeSum(unmasked, survivors.length)),
      error_bound: this.quantizer.errorBound(survivors.length),
    };
  }
}

for (const file of ["round-no-dropout.json", "round-one-dropout.json"]) {
  test(`round: ${file} is replayed byte for byte`, async () => {
    const vector = secaggVector(file);
    const { n, k, clip, bits } = vector.parameters;
    const graph = await neighbours(n, k, hex(vector.graph_seed));
    assert.deepEqual(graph, vector.neighbours);
    assert.equal(new Quantizer(clip, n).bits, bits);
    const clients = await Promise.all(vector.clients.map(loadClient));
    const replay = new Replay(vector, clients, graph);
    assert.deepEqual(replay.advertise_keys(), vector.advertise_keys);
    assert.deepEqual(await replay.share_keys(), vector.share_keys);
    assert.deepEqual(await replay.masked_input(), vector.masked_input);
    assert.deepEqual(replay.unmask(), vector.unmask);
    const { clipped_sum: clippedSum, ...server } = vector.server;
    const result = await replay.server();
    assert.deepEqual(result, server);
    result.sum.forEach((v, m) => assert.ok(Math.abs(v - clippedSum[m]) < result.error_bound, `coordinate ${m}`));
  });
}
