/**
 * Checking a published model before it runs, as fedge.shared.registry.verify does (docs/registry.md):
 * the Ed25519 signature over the manifest's bytes as received (so nothing unsigned is parsed),
 * then the manifest's fields, then the model file's size and SHA-256. One signature covers both
 * files, because the manifest names the model's digest. WebCrypto does every step, in the
 * browser and in Node alike.
 */

export const FINGERPRINT_CHARS = 16;
const SIGNATURE_BYTES = 64;
const LAYOUT_DIMS = { NC: 1, NWC: 2, NHWC: 3 }; // one sample's dimensions, the batch axis not listed

/** A model that must not run: `kind` says which check failed ("signature", "manifest" or "model"). */
export class ModelRefused extends Error {
  name = "ModelRefused";

  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** The first 16 hex characters of SHA-256(raw public key): what a person compares with `fedge keys show`. */
export async function fingerprint(publicKey) {
  return hex(await sha256(publicKey)).slice(0, FINGERPRINT_CHARS);
}

/**
 * The manifest (parsed) once `signature` is the coordinator's over `manifestBytes` and
 * `modelBytes` is the file the manifest names; else ModelRefused. Byte arguments are Uint8Arrays;
 * `publicKey` is the coordinator's raw 32-byte Ed25519 key.
 */
export async function verifyModel(publicKey, manifestBytes, signature, modelBytes) {
  if (publicKey?.length !== 32) throw new TypeError(`expected a 32-byte Ed25519 public key, got ${publicKey?.length}`);
  if (signature.length !== SIGNATURE_BYTES) {
    const got = `${signature.length} bytes`;
    throw new ModelRefused("signature", `expected a ${SIGNATURE_BYTES}-byte Ed25519 signature, got ${got}`);
  }
  const key = await globalThis.crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  if (!(await globalThis.crypto.subtle.verify({ name: "Ed25519" }, key, signature, manifestBytes))) {
    throw new ModelRefused("signature", "the manifest's signature does not verify with this public key");
  }
  const manifest = readManifest(manifestBytes);
  if (modelBytes.length !== manifest.size) {
    throw new ModelRefused(
      "model",
      `the model file does not match its manifest: expected ${manifest.size} bytes, got ${modelBytes.length}`,
    );
  }
  const digest = hex(await sha256(modelBytes));
  if (digest !== manifest.sha256) {
    throw new ModelRefused(
      "model",
      `the model file does not match its manifest: expected sha256 ${manifest.sha256}, got ${digest}`,
    );
  }
  return manifest;
}

/** The signed manifest's fields, checked for what running the model needs. */
function readManifest(bytes) {
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw refusedManifest(`expected UTF-8 JSON, got ${error.message}`);
  }
  const { input, labels, sha256: digest, size } = manifest ?? {};
  const rules = [
    [typeof manifest?.name === "string" && manifest.name, "a name"],
    [Number.isSafeInteger(manifest?.version) && manifest.version >= 0, "a version ≥ 0"],
    [typeof manifest?.task === "string" && manifest.task, "a task"],
    [Array.isArray(labels) && labels.length >= 2 && labels.every((l) => typeof l === "string"), "≥ 2 labels"],
    [typeof digest === "string" && /^[0-9a-f]{64}$/.test(digest), "a lowercase hex sha256"],
    [Number.isSafeInteger(size) && size > 0, "a size > 0"],
    [manifest?.format === "onnx", 'format "onnx"'],
    [input?.dtype === "float32", 'input.dtype "float32"'],
    [LAYOUT_DIMS[input?.layout] === input?.shape?.length, "input.shape with as many dimensions as input.layout"],
    [input?.shape?.every?.((d) => Number.isSafeInteger(d) && d > 0), "input.shape of positive integers"],
  ];
  const broken = rules.filter(([ok]) => !ok).map(([, rule]) => rule);
  if (broken.length) throw refusedManifest(`expected ${broken.join(", ")}`);
  return manifest;
}

function refusedManifest(reason) {
  return new ModelRefused("manifest", `the signed manifest does not parse: ${reason}`);
}

async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
