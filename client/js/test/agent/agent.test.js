import assert from "node:assert/strict";
import { before, test } from "node:test";

import {
  Agent,
  AgentStopped,
  Backoff,
  GatewayError,
  LocalTrainer,
  Model,
  UnknownCredential,
  decodeWeights,
  encodeArrays,
  privacy,
  readSpecs,
  secagg,
  selectBackend,
} from "../../src/index.js";

const SPEC = {
  name: "mlp",
  input_shape: [4, 2],
  layers: [
    { type: "flatten", name: "flatten" },
    { type: "dense", name: "hidden", units: 5, activation: "relu" },
    { type: "dense", name: "logits", units: 3 },
  ],
};
const PLAN = { epochs: 1, batchSize: 4, lr: 0.1, optimizer: "sgd" };

/** The tensors of SPEC as an assignment lists them, and seeded start weights as wire bytes. */
function tensorsAndBytes() {
  const model = new Model(SPEC);
  const tensors = model.parameterNames.map((name, i) => ({
    name,
    dtype: "float32",
    shape: model.parameterShapes[i].map(BigInt),
  }));
  const weights = readSpecs(tensors).map((s, i) =>
    Float32Array.from({ length: s.size }, (_, m) => ((i + 1) * (m % 7)) / 50),
  );
  model.dispose();
  return { tensors, bytes: encodeArrays(weights), weights };
}

function assignment(fields = {}) {
  const { tensors, bytes } = tensorsAndBytes();
  return {
    taskId: "har",
    roundId: 41n,
    round: 3,
    modelVersion: 2,
    modelSpecJson: JSON.stringify(SPEC),
    tensors,
    modelBytes: BigInt(bytes.length),
    plan: PLAN,
    trainable: [],
    ...fields,
  };
}

/** A coordinator client that hands out one assignment, then waits; it records the upload. */
function fakeClient(work, { refuse } = {}) {
  const { bytes } = tensorsAndBytes();
  const client = {
    uploads: [],
    checkIns: 0,
    async checkIn(request) {
      client.checkIns += 1;
      client.platform = request.platform;
      if (refuse) throw refuse;
      if (client.checkIns === 1) return { outcome: { case: "assignment", value: work } };
      return { outcome: { case: "retry", value: { retryAfterMs: 2500, reason: "round full", finished: true } } };
    },
    async downloadModel(request, size) {
      assert.equal(request.roundId, 41n);
      assert.equal(Number(size), bytes.length);
      return bytes.slice();
    },
    async uploadUpdate(header, data) {
      client.uploads.push({ header, data });
      return { status: 1 };
    },
  };
  return client;
}

function samples() {
  const y = Int32Array.from({ length: 8 }, (_, i) => i % 3);
  const x = Float32Array.from({ length: 8 * 8 }, (_, k) => y[Math.floor(k / 8)] - 1 + (k % 3) / 10);
  return () => ({ x, y });
}

function recordEvents(agent, types) {
  const events = [];
  for (const type of types) agent.addEventListener(type, (e) => events.push([type, e.detail]));
  return events;
}

before(async () => selectBackend({ order: ["cpu"] }));

test("agent: a plain round uploads trained − downloaded weights with the assignment's tensors", async () => {
  const client = fakeClient(assignment());
  const agent = new Agent({
    client,
    credential: "cred",
    trainer: new LocalTrainer(samples()),
    platform: "browser-node/cpu",
  });
  const events = recordEvents(agent, ["assignment", "batch", "upload", "round"]);
  const result = await agent.attempt();
  assert.equal(result.trainedRound, 3);
  assert.equal(client.platform, "browser-node/cpu");
  const [{ header, data }] = client.uploads;
  assert.deepEqual(
    header.tensors.map((t) => t.name),
    ["hidden/kernel", "hidden/bias", "logits/kernel", "logits/bias"],
  );
  assert.equal(header.numExamples, 8n);
  assert.ok(header.metrics.train_loss > 0 && header.metrics.train_accuracy >= 0);
  const { weights } = tensorsAndBytes();
  const update = decodeWeights(readSpecs(header.tensors), data);
  const changed = update.some((u) => u.some((v) => Math.abs(v) > 1e-6));
  assert.ok(changed, "training moved the weights");
  assert.equal(update[1].length, weights[1].length);
  assert.deepEqual(
    events.map(([type]) => type),
    ["assignment", "batch", "batch", "upload", "round"],
  );
  assert.deepEqual(
    [events[3][1].secure, events[3][1].dtype, events[3][1].values, events[3][1].bytes],
    [false, "float32", data.length / 4, data.length],
  );
});

test("agent: a scoring round trains nothing and uploads the held-out scores with no tensors", async () => {
  const client = fakeClient(assignment({ plan: { ...PLAN, holdout: 0.25, scoreOnly: true } }));
  const trainer = new LocalTrainer(samples());
  const agent = new Agent({ client, credential: "cred", trainer, floor: 1 }); // a floor: yet scores leave
  const events = recordEvents(agent, ["batch", "upload", "round"]);
  const statuses = recordEvents(agent, ["status"]);
  const result = await agent.attempt();
  assert.equal(result.trainedRound, 3);
  assert.deepEqual(
    statuses.filter(([, s]) => s.state === "uploading").map(([, s]) => s.text),
    ["round 3: sending the scores"],
  );
  const [{ header, data }] = client.uploads;
  assert.deepEqual([header.tensors, data.length, header.numExamples], [[], 0, 2n]); // 2 of 8 samples held out
  assert.deepEqual(Object.keys(header.metrics).sort(), ["eval_accuracy", "eval_loss"]);
  const model = trainer.model(JSON.stringify(SPEC)); // the received weights, scored as they came
  assert.deepEqual(await model.getWeights(), tensorsAndBytes().weights);
  assert.deepEqual(
    events.map(([type]) => type),
    ["upload", "round"],
  );
});

test("agent: a device with no samples held out sits a scoring round out", async () => {
  const client = fakeClient(assignment({ plan: { ...PLAN, scoreOnly: true } })); // holdout 0
  const agent = new Agent({ client, credential: "cred", trainer: new LocalTrainer(samples()) });
  const result = await agent.attempt();
  assert.equal(result.trainedRound, null);
  assert.match(result.reason, /holds no samples out/);
  const [{ header }] = client.uploads;
  assert.match(header.decline, /holds no samples out to score the model on/);
});

test("agent: with trainable names only those parameters train and travel", async () => {
  const client = fakeClient(assignment({ trainable: ["logits/kernel", "logits/bias"] }));
  const agent = new Agent({ client, credential: "c", trainer: new LocalTrainer(samples()), platform: "p" });
  await agent.attempt();
  const [{ header, data }] = client.uploads;
  assert.deepEqual(
    header.tensors.map((t) => t.name),
    ["logits/kernel", "logits/bias"],
  );
  assert.equal(data.length, 4 * (5 * 3 + 3));
});

test("agent: a retry_after becomes the wait, and a finished federation ends run with exitWhenDone", async () => {
  const client = fakeClient(assignment());
  const agent = new Agent({ client, credential: "c", trainer: new LocalTrainer(samples()), platform: "p" });
  await agent.attempt();
  const wait = await agent.attempt();
  assert.deepEqual([wait.waitS, wait.finished, wait.reason], [2.5, true, "round full"]);
  await agent.run({ exitWhenDone: true }); // returns instead of looping
  assert.equal(client.checkIns, 3);
});

test("agent: no samples of the model's shape stop the agent, naming the shape", async () => {
  const client = fakeClient(assignment());
  const trainer = new LocalTrainer(() => ({ x: new Float32Array(0), y: new Int32Array(0) }));
  const agent = new Agent({ client, credential: "c", trainer, platform: "p" });
  await assert.rejects(agent.run(), (e) => e instanceof AgentStopped && /no samples of shape \(4, 2\)/.test(e.message));
});

test("agent: an unknown credential stops it; a round that moved on is shrugged off; anything else backs off", async () => {
  const unauthenticated = new GatewayError(16, "unknown credential");
  const agent = (error) =>
    new Agent({
      client: fakeClient(assignment(), { refuse: error }),
      credential: "c",
      trainer: new LocalTrainer(samples()),
      platform: "p",
      backoff: new Backoff({ random: () => 1 }),
    });
  await assert.rejects(agent(unauthenticated).attempt(), (error) => {
    assert.ok(error instanceof UnknownCredential); // a new token may enrol again
    return /the coordinator refused this client: unknown credential/.test(error.message);
  });
  await assert.rejects(agent(new GatewayError(16, "this client was revoked")).attempt(), (error) => {
    assert.ok(error instanceof AgentStopped && !(error instanceof UnknownCredential)); // revoked: stays stopped
    return true;
  });
  const movedOn = await agent(new GatewayError(9, "round 3 is closed")).attempt();
  assert.deepEqual([movedOn.waitS, movedOn.reason], [0.1, "round 3 is closed"]);
  const offline = agent(new GatewayError(14, "the gateway closed the socket (1006)"));
  const statuses = recordEvents(offline, ["status"]);
  assert.deepEqual([(await offline.attempt()).waitS, (await offline.attempt()).waitS], [0.5, 1]);
  assert.equal(statuses.at(-1)[1].state, "offline");
});

test("backoff: full jitter under an exponential cap, reset after a success", () => {
  const backoff = new Backoff({ baseS: 1, capS: 5, random: () => 1 });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [2, 4, 5, 5]);
  backoff.reset();
  assert.equal(new Backoff({ random: () => 0.5 }).next(), 0.25);
});

// -- a secure round: three JS agents, and a fake coordinator that only ever sees masked sums ---
const CLIENTS = 3;
const CLIP = 2;

/** A coordinator for one SecAgg+ round of three clients, each the neighbour of the other two. */
class SecureCoordinator {
  keys = new Map(); // credential → {index, encryptionKey, maskKey}
  shares = new Map(); // credential → EncryptedShare[]
  masked = [];
  revealed = [];
  declines = []; // what agents sent instead of keys

  constructor(work) {
    this.work = work;
  }

  client(credential) {
    const coordinator = this;
    return {
      async checkIn() {
        return { outcome: { case: "assignment", value: coordinator.work } };
      },
      async downloadModel() {
        return tensorsAndBytes().bytes;
      },
      async advertiseKeys(request) {
        if (request.decline) {
          coordinator.declines.push(request.decline);
          return {};
        }
        if (!coordinator.keys.has(credential))
          coordinator.keys.set(credential, { index: coordinator.keys.size, ...request });
        if (coordinator.keys.size < CLIENTS) return { retryAfterMs: 5 };
        const me = coordinator.keys.get(credential);
        const neighbours = [...coordinator.keys.values()].filter((k) => k.index !== me.index);
        return {
          index: me.index,
          neighbours: neighbours.map((k) => ({ index: k.index, encryptionKey: k.encryptionKey, maskKey: k.maskKey })),
        };
      },
      async shareKeys(request) {
        coordinator.shares.set(credential, request.shares);
        if (coordinator.shares.size < CLIENTS) return { retryAfterMs: 5 };
        const me = coordinator.keys.get(credential).index;
        return { shares: [...coordinator.shares.values()].flat().filter((s) => s.receiver === me) };
      },
      async uploadUpdate(header, data) {
        assert.deepEqual(
          header.tensors.map((t) => [t.name, t.dtype]),
          [["masked", "uint32"]],
        );
        coordinator.masked.push(new Uint32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)));
        return { status: 1 };
      },
      async unmask(request) {
        if (request.shares?.length) {
          coordinator.revealed.push(...request.shares);
          return { done: true };
        }
        if (coordinator.masked.length < CLIENTS) return { retryAfterMs: 5 };
        return { survivors: [0, 1, 2], dropped: [] };
      },
    };
  }

  /** The dequantised sum: masked inputs added, self masks removed with the revealed shares of b. */
  async sum() {
    const total = new Uint32Array(this.masked[0].length);
    for (const y of this.masked) y.forEach((v, m) => (total[m] += v));
    const seeds = [];
    for (let owner = 0; owner < CLIENTS; owner++) {
      const shares = this.revealed
        .filter((r) => r.owner === owner && !r.maskKey)
        .map((r) => secagg.Share.fromBytes(r.share));
      seeds.push(secagg.combine(shares, 2));
    }
    const unmasked = await secagg.removeSelfMasks(total, seeds);
    return new secagg.Quantizer(CLIP, CLIENTS).dequantizeSum(unmasked, CLIENTS);
  }
}

/** A trainer that returns a known update: client i sends (i + 1) / 10 everywhere. */
const fixedTrainer = (i) => ({
  async train({ start, names }) {
    return {
      update: start.map((w) => new Float32Array(w.length).fill((i + 1) / 10)),
      names,
      numExamples: 10,
      metrics: {},
    };
  },
});

/** Three agents (client i sends (i + 1) / 10) take turns until each has finished round 3; how many did. */
async function playRound(coordinator) {
  const agents = [0, 1, 2].map(
    (i) =>
      new Agent({ client: coordinator.client(`c${i}`), credential: `c${i}`, trainer: fixedTrainer(i), platform: "p" }),
  );
  const done = new Set();
  for (let steps = 0; done.size < CLIENTS && steps < 100; steps++) {
    for (const [i, agent] of agents.entries())
      if (!done.has(i) && (await agent.attempt()).trainedRound === 3) done.add(i);
  }
  return done.size;
}

test("agent: a secure round sends only a masked uint32 vector, and the masks cancel in the sum", async () => {
  const work = assignment({
    secagg: { neighbours: 2, threshold: 2, clip: CLIP, maxClients: CLIENTS, dpClip: 0, dpNoiseStddev: 0, format: secagg.FORMAT },
  });
  const coordinator = new SecureCoordinator(work);
  assert.equal(await playRound(coordinator), CLIENTS);
  const parameters = readSpecs(work.tensors).reduce((n, s) => n + s.size, 0);
  assert.ok(coordinator.masked.every((y) => y.length === parameters));
  const sum = await coordinator.sum();
  const bound = new secagg.Quantizer(CLIP, CLIENTS).errorBound(CLIENTS);
  assert.ok(
    sum.every((v) => Math.abs(v - 0.6) <= bound),
    `sum ≈ 0.1 + 0.2 + 0.3 within ${bound}`,
  );
  assert.ok(!coordinator.masked[0].every((v, m) => v === coordinator.masked[1][m]), "inputs are masked differently");
});

/** A secure plan with on-device noise of multiplier `z` over all three clients, as the coordinator sizes it. */
function noisyPlan(z, { stated = z } = {}) {
  const dpClip = 1;
  const dim = readSpecs(tensorsAndBytes().tensors).reduce((n, s) => n + s.size, 0);
  const scale = new secagg.Quantizer(CLIP, CLIENTS).scale;
  const dpNoiseStddev = ((z * privacy.quantisedSensitivity(dpClip, scale, dim)) / Math.sqrt(CLIENTS)) * (1 + 1e-6);
  const plan = { neighbours: 2, threshold: 2, clip: CLIP, maxClients: CLIENTS, dpClip, dpNoiseStddev, format: secagg.FORMAT };
  return { ...plan, dpMinClients: CLIENTS, dpNoiseMultiplier: stated };
}

test("agent: with on-device DP noise, each update is clipped and noised before masking; the sum carries the noise", async () => {
  const z = 0.25;
  const work = assignment({ secagg: noisyPlan(z) });
  const coordinator = new SecureCoordinator(work);
  assert.equal(await playRound(coordinator), CLIENTS);
  assert.deepEqual(coordinator.declines, []);
  const sum = await coordinator.sum();
  const dim = sum.length;
  const clipped = [0, 1, 2].reduce((total, i) => total + Math.min((i + 1) / 10, 1 / Math.sqrt(dim)), 0);
  const errors = Array.from(sum, (v) => v - clipped);
  const mean = errors.reduce((a, b) => a + b, 0) / dim;
  const std = Math.sqrt(errors.reduce((a, e) => a + (e - mean) ** 2, 0) / dim);
  const expected = z * (1 + 2 * Math.sqrt(dim) / new secagg.Quantizer(CLIP, CLIENTS).scale); // z × sensitivity, in values
  assert.ok(Math.abs(std / expected - 1) < 6 / Math.sqrt(2 * dim), `noise std ${std} ≈ ${expected} over ${dim} values`);
  assert.ok(Math.abs(mean) < (6 * expected) / Math.sqrt(dim), `noise mean ${mean} ≈ 0`);
});

test("agent: a noise plan that gives less than it states is declined before any key is sent, and the round sat out", async () => {
  const work = assignment({ secagg: noisyPlan(0.2, { stated: 0.25 }) });
  const coordinator = new SecureCoordinator(work);
  const agent = new Agent({ client: coordinator.client("c"), credential: "c", trainer: fixedTrainer(0), platform: "p" });
  const first = await agent.attempt();
  assert.match(first.reason, /round 3 of task "har" refused, no keys sent: the plan states noise multiplier 0.25/);
  assert.equal(coordinator.keys.size, 0);
  assert.equal(coordinator.declines.length, 1, "it declines the round, so the key exchange need not wait for it");
  assert.match(coordinator.declines[0], /but its noise gives 0.2000/);
  const again = await agent.attempt();
  assert.match(again.reason, /this one went on without us/, "the agent carries on, sitting this round out");
});

test("agent: a plan in another secure aggregation format is declined before any key is sent", async () => {
  const plan = { ...noisyPlan(0.25), format: secagg.FORMAT - 1 }; // masks in two formats would not cancel
  const coordinator = new SecureCoordinator(assignment({ secagg: plan }));
  const agent = new Agent({ client: coordinator.client("c"), credential: "c", trainer: fixedTrainer(0), platform: "p" });
  const first = await agent.attempt();
  assert.match(first.reason, new RegExp(`format ${secagg.FORMAT - 1}, this client in format ${secagg.FORMAT}`));
  assert.equal(coordinator.keys.size, 0);
  assert.equal(coordinator.declines.length, 1);
  assert.match((await agent.attempt()).reason, /this one went on without us/);
});

test("agent: a device's noise floor declines plans with less noise, and rounds without secure aggregation", async () => {
  const secure = new SecureCoordinator(assignment({ secagg: noisyPlan(0.25) }));
  const picky = new Agent({ client: secure.client("c"), credential: "c", trainer: fixedTrainer(0), floor: 0.5 });
  assert.match((await picky.attempt()).reason, /gives noise multiplier 0\.250000 over 3 clients; this device requires ≥ 0.5/);
  assert.equal(secure.keys.size, 0);
  const plain = fakeClient(assignment());
  const agent = new Agent({ client: plain, credential: "c", trainer: fixedTrainer(0), floor: 0.5 });
  assert.match((await agent.attempt()).reason, /not securely aggregated, and this device requires on-device noise/);
  assert.equal(plain.uploads.length, 1, "one decline, no update");
  assert.match(plain.uploads[0].header.decline, /not securely aggregated/);
  assert.equal(plain.uploads[0].data.length, 0);
  assert.throws(() => new Agent({ client: plain, credential: "c", trainer: fixedTrainer(0), floor: -1 }), /floor/);
});

test("agent: a task whose model is external (a Flower client's) is declined and sat out", async () => {
  const external = JSON.stringify({ external: [{ name: "arr_0", shape: [2], dtype: "float32" }] });
  const plain = fakeClient(assignment({ modelSpecJson: external }));
  const agent = new Agent({ client: plain, credential: "c", trainer: fixedTrainer(0) });
  assert.match((await agent.attempt()).reason, /the task's model is external/);
  assert.equal(plain.uploads.length, 1, "one decline, no update");
  assert.match(plain.uploads[0].header.decline, /external \(a Flower client's\)/);
});

test("agent: a masked input is made once and resent byte for byte after a failed upload or a restart", async () => {
  const work = assignment({
    secagg: { neighbours: 2, threshold: 2, clip: CLIP, maxClients: CLIENTS, dpClip: 0, dpNoiseStddev: 0, format: secagg.FORMAT },
  });
  const coordinator = new SecureCoordinator(work);
  const clients = [0, 1, 2].map((i) => coordinator.client(`c${i}`));
  const { uploadUpdate, unmask } = clients[0];
  const sent = [];
  let inTransit = 1; // the first upload breaks off
  let restarted = 1; // then the coordinator restarts without it, and says so when asked to unmask
  clients[0].uploadUpdate = async (header, data) => {
    sent.push(Uint8Array.from(data));
    if (inTransit-- > 0) throw new GatewayError(14, "the gateway closed the socket (1006)");
    return uploadUpdate(header, data);
  };
  clients[0].unmask = async (request) => {
    if (!request.shares?.length && restarted-- > 0) {
      coordinator.masked.splice(coordinator.masked.length - 1, 1);
      throw new GatewayError(5, "round 41: no masked input from client 0 (the coordinator restarted)");
    }
    return unmask(request);
  };
  let trainings = 0;
  const trainer = {
    async train(args) {
      trainings += 1;
      return fixedTrainer(0).train(args);
    },
  };
  const agents = clients.map(
    (client, i) =>
      new Agent({ client, credential: `c${i}`, trainer: i === 0 ? trainer : fixedTrainer(i), platform: "p" }),
  );
  // client 0 goes first, through its failed upload and the restart, before the others send theirs
  for (let steps = 0; steps < 8 && restarted >= 0; steps++) await agents[0].attempt();
  const done = new Set();
  for (let steps = 0; done.size < CLIENTS && steps < 100; steps++) {
    for (const [i, agent] of agents.entries())
      if (!done.has(i) && (await agent.attempt()).trainedRound === 3) done.add(i);
  }
  assert.equal(done.size, CLIENTS);
  assert.equal(trainings, 1);
  assert.equal(sent.length, 3);
  assert.ok(sent.every((bytes) => bytes.every((b, m) => b === sent[0][m])), "the same bytes each time");
  const sum = await coordinator.sum();
  const bound = new secagg.Quantizer(CLIP, CLIENTS).errorBound(CLIENTS);
  assert.ok(sum.every((v) => Math.abs(v - 0.6) <= bound));
});

test("agent: a round that moved on is sat out until the next one opens", async () => {
  const work = assignment({
    secagg: { neighbours: 2, threshold: 2, clip: CLIP, maxClients: CLIENTS, dpClip: 0, dpNoiseStddev: 0, format: secagg.FORMAT },
  });
  let current = work;
  const client = {
    async checkIn() {
      return { outcome: { case: "assignment", value: current } };
    },
    async advertiseKeys() {
      throw new GatewayError(9, "round 41: this client advertised other keys earlier (a restart?)");
    },
  };
  const agent = new Agent({ client, credential: "c", trainer: fixedTrainer(0), platform: "p" });
  assert.match((await agent.attempt()).reason, /other keys/);
  const again = await agent.attempt();
  assert.deepEqual([again.waitS, /next round/.test(again.reason)], [1, true]);
  current = { ...work, roundId: 42n };
  assert.match((await agent.attempt()).reason, /other keys/); // it takes part in the next round
});

test("node agent: a round is logged as trained with its figures, a scoring round as scored", async () => {
  const { roundLine } = await import("../../src/node/agent.js");
  const trained = { train_loss: 0.2345, train_accuracy: 0.9171 };
  assert.equal(roundLine(3, trained), "round 3: trained and reported (training loss 0.234, accuracy 0.917)");
  assert.equal(
    roundLine(31, { eval_loss: 0.4, eval_accuracy: 0.85 }),
    "round 31: scored the model received: 0.850 on held-out samples",
  );
});
