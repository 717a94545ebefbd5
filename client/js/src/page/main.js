/**
 * The page a device owner sees (web/index.html, bundled by `npm run build` into dist/page.js):
 *
 *     boot     open the store, pick the TF.js backend (?backend=wasm,cpu or #backend= overrides the order)
 *     join     a saved credential, else the token of the link (?token= or #token=), else the form
 *     data     DataPanel: files and recordings, kept in IndexedDB
 *     train    the Agent's check-in loop once joined with samples; its events drive the status,
 *              the charts, the rounds count and the list of what left the device
 *     model    the newest published model, verified with the pinned key, run on the samples (published.js)
 *
 * Nothing is fetched but this page's own files, the gateway's WebSocket and its /models.
 */

import {
  Agent,
  AgentStopped,
  BACKEND_ORDER,
  CoordinatorClient,
  LocalTrainer,
  UnknownCredential,
  enroll,
  platformString,
  selectBackend,
} from "../browser.js";
import { samplesOfShape } from "../data/datafiles.js";
import { LineChart } from "./chart.js";
import { DataPanel } from "./data-panel.js";
import { ModelRefused } from "../registry/verify.js";
import { runPublished } from "./published.js";
import {
  PageStore,
  enrolmentNonce,
  forgetCredential,
  loadCredential,
  loadModelKey,
  loadNoiseFloor,
  saveCredential,
  saveModelKey,
  saveNoiseFloor,
} from "./store.js";
import { browserEngine, describeUpload, formatCount } from "./view.js";

const $ = (id) => document.getElementById(id);
const SENT_KEPT = 50;

const state = { batches: [], labels: [], normalisation: {}, taskShape: null, rounds: 0, sent: [], agent: null };

function setStatus(kind, text) {
  $("status").dataset.state = kind;
  $("status").textContent = text;
}

/** The backends to try, in order: ?backend=wasm,cpu (or #backend=...) overrides WebGPU → WebGL → WASM → CPU. */
function backendOrder() {
  const asked =
    new URLSearchParams(location.search).get("backend") ?? new URLSearchParams(location.hash.slice(1)).get("backend");
  return asked ? asked.split(",").map((s) => s.trim()) : BACKEND_ORDER;
}

function gatewayUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/**
 * The token and the model-signing key of a join link (`fedge token create --link`), then the
 * link without them (a used token must not linger in history).
 */
function takeLinkFromUrl() {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.slice(1));
  const [token, key] = ["token", "key"].map((name) => query.get(name) ?? fragment.get(name));
  if (token || key) {
    for (const name of ["token", "key"]) [query, fragment].forEach((params) => params.delete(name));
    const rest = `${query.size ? `?${query}` : ""}${fragment.size ? `#${fragment}` : ""}`;
    history.replaceState(null, "", `${location.pathname}${rest}`);
  }
  return { token: token?.trim() || null, key: key?.trim() || null };
}

async function boot() {
  state.store = await PageStore.open();
  Object.assign(state, {
    batches: await state.store.batches(),
    labels: await state.store.get("labels", []),
    normalisation: await state.store.get("normalisation", {}),
    taskShape: await state.store.get("taskShape"),
    rounds: await state.store.get("rounds", 0),
    sent: await state.store.get("sent", []),
  });
  state.data = new DataPanel(state, () => startWhenReady());
  state.data.suggestShape();
  state.charts = {
    batch: new LineChart($("batch-chart"), { title: "this round, per batch", series: ["loss", "accuracy"] }),
    round: new LineChart($("round-chart"), {
      title: "per round",
      series: ["loss", "accuracy", "held-out accuracy"], // the last: the received model's, with a task's holdout
    }),
  };
  renderProgress();
  setStatus("starting", "starting TensorFlow.js…");
  state.backend = await selectBackend({ order: backendOrder() });
  state.platform = platformString(browserEngine(), state.backend);
  $("backend").textContent = state.backend;
  state.client = new CoordinatorClient(gatewayUrl());
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    join($("token").value.trim());
  });
  $("leave").addEventListener("click", leave);
  $("resume").addEventListener("click", () => startWhenReady());
  $("min-dp-noise").value = String(loadNoiseFloor());
  $("min-dp-noise").addEventListener("change", changeFloor);
  const link = takeLinkFromUrl();
  if (link.key) pinLinkKey(link.key);
  $("model-key").value = loadModelKey();
  $("model-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runModel();
  });
  await join(link.token);
  if (!globalThis.isSecureContext) {
    $("warning").textContent =
      "This page is not served over https: the browser withholds WebCrypto, sensors and the camera, " +
      "so it cannot take part in secure rounds. Ask for the coordinator's https address.";
  }
}

async function join(token) {
  state.joined = loadCredential();
  // a link's token beside a saved credential: kept for a coordinator set up afresh, which will not know it
  state.spareToken = state.joined ? token : null;
  if (!state.joined && token) {
    setStatus("joining", "joining…");
    try {
      state.joined = await enroll(state.client, token, { platform: state.platform, nonce: enrolmentNonce(token) });
      saveCredential(state.joined);
    } catch (error) {
      return showJoinForm(`cannot join with this token: ${error.message}`);
    }
  }
  if (!state.joined) return showJoinForm("");
  $("join").hidden = true;
  $("joined").hidden = false;
  $("client-id").textContent = state.joined.clientId;
  $("platform").textContent = state.platform;
  startWhenReady();
}

function showJoinForm(reason) {
  $("join").hidden = false;
  $("joined").hidden = true;
  $("join-reason").textContent = reason;
  setStatus("idle", "not joined: open your join link, or type the token");
}

function leave() {
  state.abort?.abort();
  forgetCredential();
  state.joined = null;
  showJoinForm("this device left: its credential is forgotten");
}

/** Starts the agent once joined and holding samples; the loop runs until it stops or the owner leaves. */
function startWhenReady() {
  if (!state.joined || state.agent) return;
  $("resume").hidden = true;
  if (!state.batches.length) return setStatus("idle", "joined: load or record samples to take part in training");
  const trainer = new LocalTrainer((shape) => samplesOfShape(state.batches, shape));
  const agent = new Agent({
    client: state.client,
    credential: state.joined.credential,
    trainer,
    platform: state.platform,
    floor: loadNoiseFloor(),
  });
  listen(agent);
  state.agent = agent;
  state.abort = new AbortController();
  setStatus("checking-in", "ready: waiting for the coordinator to ask");
  agent.run({ signal: state.abort.signal }).then(
    () => (state.agent = null),
    (error) => {
      state.agent = null; // first: stopped() may join again and start the next agent
      return stopped(error);
    },
  );
}

/** The owner's noise floor: kept, and the running agent's from its next round on. */
function changeFloor() {
  try {
    const floor = saveNoiseFloor($("min-dp-noise").value);
    if (state.agent) state.agent.floor = floor;
    $("floor-message").textContent = floor ? `kept: rounds with a multiplier under ${floor} are sat out` : "kept";
  } catch (error) {
    $("floor-message").textContent = error.message;
  }
}

/** The key a join link carries is the operator's word: pinned, replacing one typed before. */
function pinLinkKey(key) {
  try {
    saveModelKey(key);
  } catch (error) {
    $("model-status").textContent = `the link's key was not kept: ${error.message}`;
  }
}

/** The newest published model of this device's task, verified and run on its samples. */
async function runModel() {
  const say = (text, kind) => Object.assign($("model-status"), { textContent: text }).setAttribute("data-state", kind);
  $("model-predictions").replaceChildren();
  try {
    const publicKey = saveModelKey($("model-key").value);
    say("fetching and verifying the newest model…", "running");
    const result = await runPublished({
      publicKey,
      taskId: await state.store.get("taskId"),
      samples: (shape) => samplesOfShape(state.batches, shape),
    });
    const { manifest, count, accuracy } = result;
    const kept = `${manifest.task} version ${manifest.version} (signature verified)`;
    say(`${kept}: ${(100 * accuracy).toFixed(1)}% of this device's ${formatCount(count)} samples right`, "done");
    $("model-predictions").replaceChildren(
      ...result.shown.map((line) => Object.assign(document.createElement("li"), { textContent: line })),
    );
  } catch (error) {
    say(error.message, error instanceof ModelRefused ? "refused" : "failed"); // refused: nothing ran
  }
}

function stopped(error) {
  if (error instanceof AgentStopped && /refused this client/.test(error.message)) {
    forgetCredential();
    state.joined = null;
    const spare = state.spareToken;
    state.spareToken = null;
    if (spare && error instanceof UnknownCredential) return join(spare); // as `fedge client` does
    return showJoinForm(`${error.message}: join again with a new token`);
  }
  setStatus("stopped", `stopped: ${error.message}`);
  $("resume").hidden = false;
}

function listen(agent) {
  let step = 0;
  agent.addEventListener("status", (e) => setStatus(e.detail.state, e.detail.text));
  agent.addEventListener("assignment", (e) => {
    const a = e.detail;
    const model = `model version ${a.modelVersion}, ${formatCount(a.parameters)} parameters`;
    $("task").textContent = `${a.taskId}: round ${a.round}, ${model}${a.secure ? ", secure aggregation" : ""}`;
    state.store.set("taskId", a.taskId);
    state.charts.batch.clear();
    step = 0;
    if (JSON.stringify(a.inputShape) !== JSON.stringify(state.taskShape)) {
      state.taskShape = a.inputShape;
      state.store.set("taskShape", a.inputShape);
      state.data.suggestShape();
    }
  });
  agent.addEventListener("batch", (e) => {
    step += 1;
    state.charts.batch.push("loss", step, e.detail.loss);
    state.charts.batch.push("accuracy", step, e.detail.accuracy);
  });
  agent.addEventListener("upload", (e) => record(e.detail));
  agent.addEventListener("round", () => {
    state.rounds += 1;
    state.store.set("rounds", state.rounds);
    renderProgress();
  });
}

function record(upload) {
  state.charts.round.push("loss", upload.round, upload.metrics.train_loss);
  state.charts.round.push("accuracy", upload.round, upload.metrics.train_accuracy);
  state.charts.round.push("held-out accuracy", upload.round, upload.metrics.eval_accuracy);
  state.sent = [{ ...upload, at: Date.now() }, ...state.sent].slice(0, SENT_KEPT);
  state.store.set("sent", state.sent);
  renderProgress();
}

function renderProgress() {
  $("rounds-count").textContent = formatCount(state.rounds);
  $("sent").replaceChildren(
    ...state.sent.map((u) => {
      const item = document.createElement("li");
      item.textContent = describeUpload(u);
      return item;
    }),
  );
  if (!state.sent.length)
    $("sent").replaceChildren(Object.assign(document.createElement("li"), { textContent: "nothing yet" }));
}

boot().catch((error) => setStatus("stopped", `cannot start: ${error.message}`));
