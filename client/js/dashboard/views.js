/**
 * The dashboard's parts, each a function from the coordinator's status document (and the
 * registry's listing) to elements: tasks with their live round and plots, recent rounds,
 * clients by platform and backend, published models.
 */

import { lineChart } from "./chart.js";
import { bytes, duration, fixed, h, timeOfDay } from "./dom.js";

const RECENT_S = 60; // "seen in the last minute"
const CLIENT_ROWS = 20;
const MODEL_ROWS = 30;

// -- tasks ---------------------------------------------------------------------------------

export function taskView(task, now) {
  return h(
    "article",
    { class: `task ${task.status}`, "data-task": task.task },
    h("h2", {}, `task ${task.task}`, h("span", { class: `badge ${task.status}` }, task.status)),
    h("p", { class: "facts" }, facts(task).join(" · ")),
    progress(task),
    liveRound(task, now),
    h("div", { class: "charts" }, charts(task.history, task.rounds)),
    roundsTable(task.rounds, task.live),
  );
}

function facts(task) {
  const list = [`model ${task.model}`, `strategy ${task.strategy}`];
  if (task.secagg) list.push("secure aggregation");
  if (task.dp) list.push("differential privacy");
  return list;
}

function progress(task) {
  const total = task.rounds_total ?? task.version;
  return h(
    "p",
    { class: "progress" },
    h("progress", { max: total || 1, value: task.version }),
    h("span", { "data-progress": `${task.version}/${total}` }, ` version ${task.version} of ${total}`),
  );
}

function liveRound(task, now) {
  const live = task.live;
  const title = live ? `round ${live.round}${live.attempt > 1 ? ` (attempt ${live.attempt})` : ""}` : task.status;
  return h(
    "div",
    { class: "live-round" },
    h("span", { class: "round-title" }, title),
    stageStrip(task.stages, live, task.status),
    live ? h("span", { class: "deadline" }, deadline(live, now)) : null,
  );
}

/** select → advertise → … → commit, with the live stage highlighted and the walked ones marked. */
export function stageStrip(stages, live, status) {
  const at = live ? stages.indexOf(live.phase) : status === "completed" ? stages.length : -1;
  return h(
    "ol",
    { class: "stages" },
    stages.map((stage, i) =>
      h("li", { class: i < at ? "stage done" : i === at ? "stage live" : "stage", "data-stage": stage }, stage),
    ),
  );
}

function deadline(live, now) {
  if (live.deadline === null || live.deadline === undefined) return `${live.phase}: finishing`;
  const left = live.deadline - now;
  if (left >= 0) return `${live.phase} ends within ${duration(left)}`;
  if (live.phase === "select") return "select: waiting for enough clients to check in";
  return `${live.phase}: running past its planned end`;
}

/**
 * Held-out accuracy and loss, the clients' training figures beside them, the devices' scores of
 * the model they received (a task's `holdout`: round N scores version N − 1, and a scoring round
 * after the last commit scores the last version), and ε when DP is on.
 */
function charts(history, rounds) {
  const scored = rounds.filter((r) => r.phase === "scored").map((r) => ({ version: r.round, metrics: r.metrics }));
  const series = (name, key, shift = 0, from = history) => ({
    name,
    points: from.map((v) => [v.version - shift, v.metrics[key]]),
  });
  const onDevices = (key) => series("on devices", key, 1, [...history, ...scored]);
  const devices = onDevices("eval_accuracy").points.some(([, y]) => Number.isFinite(y));
  const pick = (...all) => all.filter((s) => devices || s.name !== "on devices");
  const list = [
    lineChart({
      title: "accuracy",
      series: pick(
        series("held-out", "accuracy"),
        series("train", "train_accuracy"),
        onDevices("eval_accuracy"),
      ),
    }),
    lineChart({
      title: "loss",
      series: pick(series("held-out", "loss"), series("train", "train_loss"), onDevices("eval_loss")),
    }),
  ];
  if (history.some((v) => Number.isFinite(v.metrics.epsilon)))
    list.push(lineChart({ title: "privacy spent (ε)", series: [series("ε", "epsilon")] }));
  return list;
}

/** A scoring round has no held-out figures of its own: say what the devices made of the last version. */
function scoredNote(round) {
  const score = round.metrics.eval_accuracy;
  if (round.phase !== "scored" || !Number.isFinite(score)) return "";
  return `devices scored version ${round.round - 1}: ${fixed(score)}`;
}

function roundsTable(rounds, live) {
  const head = ["round", "attempt", "phase", "selected", "reported", "accuracy", "loss", "took", "note"];
  const phase = (r) => (live?.round_id === r.round_id ? `${r.phase} (live)` : r.phase);
  const rows = rounds.map((r) =>
    h(
      "tr",
      { class: `round ${r.phase}`, "data-phase": r.phase, "data-round": r.round },
      h("td", {}, r.round),
      h("td", {}, r.attempt),
      h("td", {}, h("span", { class: `phase ${r.phase}` }, phase(r))),
      h("td", {}, r.selected),
      h("td", {}, r.reported),
      h("td", {}, fixed(r.metrics.accuracy)),
      h("td", {}, fixed(r.metrics.loss)),
      h("td", {}, r.closed_at ? duration(r.closed_at - r.opened_at) : "–"),
      h("td", { class: "note" }, r.reason ?? scoredNote(r)),
    ),
  );
  return table("rounds", head, rows, "no round yet");
}

// -- clients -------------------------------------------------------------------------------

/** "browser-chromium/webgl" → ["browser-chromium", "webgl"]; a Python agent has no backend. */
export function splitPlatform(text) {
  const platform = text || "unknown";
  const slash = platform.indexOf("/");
  return slash < 0 ? [platform, "–"] : [platform.slice(0, slash), platform.slice(slash + 1)];
}

/** Enrolled (not revoked) clients counted by platform and backend, the busiest group first. */
export function groupClients(clients, now) {
  const groups = new Map();
  for (const client of clients.filter((c) => !c.revoked)) {
    const [platform, backend] = splitPlatform(client.platform);
    const key = `${platform}\u0000${backend}`;
    const group = groups.get(key) ?? { platform, backend, total: 0, recent: 0 };
    group.total += 1;
    group.recent += seenRecently(client, now) ? 1 : 0;
    groups.set(key, group);
  }
  return [...groups.values()].sort(
    (a, b) => b.recent - a.recent || b.total - a.total || a.platform.localeCompare(b.platform),
  );
}

function seenRecently(client, now) {
  return client.last_seen !== null && now - client.last_seen < RECENT_S;
}

/** The clients section's parts (summary, groups, the latest seen), in order. */
export function clientsView(status) {
  const { clients, now } = status;
  const enrolled = clients.filter((c) => !c.revoked);
  const recent = enrolled.filter((c) => seenRecently(c, now)).length;
  const revoked = clients.length - enrolled.length;
  const summary =
    `${enrolled.length} enrolled, ${recent} seen in the last minute, ` +
    `${revoked} revoked, ${status.unused_tokens} unused tokens`;
  const groups = groupClients(clients, now).map((g) =>
    h(
      "tr",
      { class: "client-group", "data-platform": g.platform, "data-backend": g.backend },
      h("td", {}, g.platform),
      h("td", {}, g.backend),
      h("td", {}, g.total),
      h("td", {}, g.recent),
    ),
  );
  const latest = [...enrolled].sort((a, b) => (b.last_seen ?? 0) - (a.last_seen ?? 0)).slice(0, CLIENT_ROWS);
  const parts = [
    h("p", { class: "summary" }, summary),
    table("client-groups", ["platform", "backend", "clients", "seen in the last minute"], groups, "no client yet"),
  ];
  if (latest.length === 0) return parts;
  return [
    ...parts,
    h("h3", {}, `last seen (${latest.length} of ${enrolled.length})`),
    table("clients", ["client", "name", "platform", "backend", "last seen"], latest.map((c) => clientRow(c, now))),
  ];
}

function clientRow(client, now) {
  const [platform, backend] = splitPlatform(client.platform);
  const seen = client.last_seen === null ? "never" : `${duration(now - client.last_seen)} ago`;
  return h(
    "tr",
    { class: seenRecently(client, now) ? "client recent" : "client" },
    h("td", { class: "id" }, client.client_id),
    h("td", {}, client.name || "–"),
    h("td", {}, platform),
    h("td", {}, backend),
    h("td", {}, seen),
  );
}

// -- published models ----------------------------------------------------------------------

/** The registry's manifests, newest first, with links to the files the gateway serves. */
export function modelsView(listing) {
  if (listing.error) return h("p", { class: "error" }, `registry unavailable: ${listing.error}`);
  const manifests = [...listing.models]
    .sort((a, b) => a.task.localeCompare(b.task) || b.version - a.version)
    .slice(0, MODEL_ROWS);
  const scores = { accuracy: "accuracy", loss: "loss" };
  if (manifests.some((m) => Number.isFinite(m.metrics?.eval_accuracy))) scores.eval_accuracy = "on devices";
  const head = ["task", "version", "variant", ...Object.values(scores), "size", "published", "files"];
  const rows = manifests.map((m) =>
    h(
      "tr",
      { class: "model", "data-task": m.task, "data-version": m.version, "data-variant": m.quantization },
      h("td", {}, m.task),
      h("td", {}, m.version),
      h("td", {}, m.quantization),
      ...Object.keys(scores).map((key) => h("td", {}, fixed(m.metrics?.[key]))),
      h("td", {}, bytes(m.size)),
      h("td", {}, m.created),
      h("td", { class: "files" }, files(m)),
    ),
  );
  return table("models", head, rows, "nothing published yet");
}

function files(manifest) {
  const variant = manifest.quantization === "fp32" ? "" : `${encodeURIComponent(manifest.quantization)}/`;
  const base = `/models/${encodeURIComponent(manifest.task)}/${manifest.version}/${variant}`;
  const names = ["model.onnx", "manifest.json", "manifest.sig"];
  return names.map((name) => h("a", { href: base + name, download: true }, name));
}

// -- shared --------------------------------------------------------------------------------

/** A table that scrolls sideways inside its panel when the screen is narrower (a phone). */
function table(kind, head, rows, empty) {
  if (rows.length === 0) return h("p", { class: `empty ${kind}` }, empty);
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: kind },
      h("thead", {}, h("tr", {}, head.map((name) => h("th", {}, name)))),
      h("tbody", {}, rows),
    ),
  );
}

export function updatedAt(status) {
  return [`live · updated ${timeOfDay(status.now)}`, serverLine(status.server, status.now)].filter(Boolean).join(" · ");
}

const RENEW_DAYS = 30; // as fedge status: a certificate that expires sooner is flagged

/** The daemon: where it listens, over what (with the certificate's days left), for how long. */
export function serverLine(about, now) {
  if (!about?.address) return "";
  const days = Math.round((about.certificate_expires - now) / 86400);
  const over = about.tls ? `TLS, certificate ${days} days left${days < RENEW_DAYS ? ", renew it" : ""}` : "plaintext";
  return `${about.address} (${over}), up ${duration(now - about.started)}`;
}
