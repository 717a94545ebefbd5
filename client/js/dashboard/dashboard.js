/**
 * The operator's dashboard: polls the gateway every POLL_MS and redraws.
 *
 *   credential   #admin=TOKEN in the URL (then removed from it), or asked for once;
 *                kept in sessionStorage, so it lives as long as this tab
 *   GET /api/status   Authorization: Bearer <credential>: tasks, rounds, clients (401: ask again)
 *   GET /models       published manifests (public)
 *
 * Nothing here is a framework: each poll builds the parts anew (views.js) and swaps them in.
 */

import { clientsView, modelsView, taskView, updatedAt } from "./views.js";

const POLL_MS = 2000;
const KEY = "fedge.admin";

class Refused extends Error {}

const $ = (id) => document.getElementById(id);
let timer = null;

/** #admin=TOKEN (scripts, bookmarks): keep it for the tab, and take it out of the address bar. */
function credentialFromUrl() {
  const token = new URLSearchParams(location.hash.slice(1)).get("admin");
  if (!token) return;
  sessionStorage.setItem(KEY, token.trim());
  history.replaceState(null, "", location.pathname + location.search);
}

async function fetchStatus(credential) {
  const headers = { Authorization: `Bearer ${credential}` };
  const response = await fetch("/api/status", { headers, cache: "no-store" });
  const text = await response.text();
  if (response.status === 401) throw new Refused(text.trim());
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.trim()}`);
  return JSON.parse(text);
}

/** The registry's listing; a failure shows in its section and leaves the rest of the page live. */
async function fetchModels() {
  try {
    const response = await fetch("/models", { cache: "no-store" });
    if (!response.ok) return { error: `HTTP ${response.status}: ${(await response.text()).trim()}` };
    return await response.json();
  } catch (error) {
    return { error: error.message };
  }
}

function render(status, models) {
  $("tasks").replaceChildren(...(status.tasks.length ? status.tasks.map((t) => taskView(t, status.now)) : [noTasks()]));
  $("clients").replaceChildren(...clientsView(status));
  $("models").replaceChildren(modelsView(models));
  connection(updatedAt(status), "ok");
  $("board").hidden = false;
  $("login").hidden = true;
  $("sign-out").hidden = false;
}

function noTasks() {
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = "The coordinator runs no task.";
  return p;
}

function connection(text, state) {
  $("connection").textContent = text;
  $("connection").dataset.state = state;
}

function askForCredential(reason) {
  clearTimeout(timer);
  $("login-reason").textContent = reason;
  $("login").hidden = false;
  $("board").hidden = true;
  $("sign-out").hidden = true;
  connection("signed out", "out");
  $("credential").focus();
}

async function poll() {
  clearTimeout(timer);
  const credential = sessionStorage.getItem(KEY);
  if (!credential) return askForCredential("The dashboard is for the coordinator's operators.");
  try {
    const [status, models] = await Promise.all([fetchStatus(credential), fetchModels()]);
    render(status, models);
  } catch (error) {
    if (error instanceof Refused) {
      sessionStorage.removeItem(KEY);
      return askForCredential(error.message);
    }
    connection(`coordinator unreachable, retrying: ${error.message}`, "down"); // the last view stays, marked stale
  }
  timer = setTimeout(poll, POLL_MS);
}

function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("credential").value.trim());
  $("credential").value = "";
  poll();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  askForCredential("Signed out.");
}

credentialFromUrl();
window.addEventListener("hashchange", () => {
  credentialFromUrl();
  poll();
});
$("login").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
poll();
