/**
 * What the page keeps in this browser, and nowhere else:
 *
 *     localStorage  fedge.credential   {clientId, credential}: a reload rejoins without a token
 *                   fedge.enrolment    {token, nonce} while a join is unanswered: trying again with the
 *                                      token repeats the nonce, so a lost reply does not spend it for nothing
 *                   fedge.minDpNoise   the least on-device DP noise multiplier the owner accepts (0: any round)
 *                   fedge.modelKey     the coordinator's public key (hex) that published models must be signed with
 *     IndexedDB     batches            the samples: one record per file or recording session,
 *                                      {id, source, kind, sampleShape, x: Float32Array, y: Int32Array, addedAt}
 *                   kv                 labels, normalisation, the last task's model shape, the round log
 *
 * Samples never leave the browser: nothing here is sent anywhere, and "Delete all samples"
 * clears the batches store.
 */

import { newNonce } from "../agent/agent.js";

const CREDENTIAL = "fedge.credential";
const ENROLMENT = "fedge.enrolment";
const NOISE_FLOOR = "fedge.minDpNoise";
const MODEL_KEY = "fedge.modelKey";
const DB_VERSION = 1;

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function loadCredential(storage = globalThis.localStorage) {
  try {
    const saved = JSON.parse(storage.getItem(CREDENTIAL) ?? "null");
    return saved?.credential ? saved : null;
  } catch {
    return null;
  }
}

export function saveCredential(saved, storage = globalThis.localStorage) {
  storage.setItem(CREDENTIAL, JSON.stringify(saved));
  storage.removeItem(ENROLMENT); // joined: the token is spent
}

export function forgetCredential(storage = globalThis.localStorage) {
  storage.removeItem(CREDENTIAL);
}

/** The nonce of this token's enrolment: drawn at the first try, repeated by every retry. */
export function enrolmentNonce(token, storage = globalThis.localStorage, random = globalThis.crypto) {
  try {
    const pending = JSON.parse(storage.getItem(ENROLMENT) ?? "null");
    if (pending?.token === token && pending.nonce) return pending.nonce;
  } catch {
    // unreadable: draw a new one
  }
  const nonce = newNonce(random);
  storage.setItem(ENROLMENT, JSON.stringify({ token, nonce }));
  return nonce;
}

/** The owner's DP noise floor (Agent's `floor`): 0 unless a valid one was saved. */
export function loadNoiseFloor(storage = globalThis.localStorage) {
  const saved = Number(storage.getItem(NOISE_FLOOR) ?? 0);
  return Number.isFinite(saved) && saved >= 0 ? saved : 0;
}

/** Keeps `text` as the floor when it is a number ≥ 0 and returns it; anything else throws RangeError. */
export function saveNoiseFloor(text, storage = globalThis.localStorage) {
  const floor = String(text).trim() === "" ? 0 : Number(text);
  if (!(Number.isFinite(floor) && floor >= 0)) throw new RangeError(`expected a number ≥ 0, got "${text}"`);
  storage.setItem(NOISE_FLOOR, String(floor));
  return floor;
}

export function loadModelKey(storage = globalThis.localStorage) {
  return storage.getItem(MODEL_KEY) ?? "";
}

/** Keeps `text` as the pinned key when it is 64 hex characters and returns its bytes; anything else throws RangeError. */
export function saveModelKey(text, storage = globalThis.localStorage) {
  const hex = String(text).trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new RangeError("expected the coordinator's public key: 64 hex characters, as `fedge keys show` prints it");
  }
  storage.setItem(MODEL_KEY, hex);
  return Uint8Array.from(hex.match(/../g), (h) => Number.parseInt(h, 16));
}

export class PageStore {
  constructor(db) {
    this.db = db;
  }

  static async open(name = "fedge", indexedDB = globalThis.indexedDB) {
    const request = indexedDB.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("batches", { keyPath: "id", autoIncrement: true });
      request.result.createObjectStore("kv");
    };
    return new PageStore(await done(request));
  }

  #store(name, mode = "readonly") {
    return this.db.transaction(name, mode).objectStore(name);
  }

  /** Stores one batch of samples; resolves to it with its id. */
  async addBatch(batch) {
    const record = { ...batch, addedAt: Date.now() };
    record.id = await done(this.#store("batches", "readwrite").add(record));
    return record;
  }

  batches() {
    return done(this.#store("batches").getAll());
  }

  clearBatches() {
    return done(this.#store("batches", "readwrite").clear());
  }

  get(key, fallback = null) {
    return done(this.#store("kv").get(key)).then((value) => value ?? fallback);
  }

  set(key, value) {
    return done(this.#store("kv", "readwrite").put(value, key));
  }
}

