/**
 * X25519 key pairs and key agreement, as raw 32-byte strings on the wire (docs/secagg.md, Keys).
 *
 * WebCrypto cannot import a raw private key, so the 32 bytes are wrapped as PKCS#8; nor can it
 * give a private key's public key, so that is X25519(private, base point 9), which is what a
 * public key is. Every client holds two pairs per round: c (share encryption), s (pairwise masks).
 */

import { checkBytes, concatBytes, describe, fromHex, subtle } from "./bytes.js";

export const KEY_SIZE = 32;
const ALGORITHM = { name: "X25519" };
const PKCS8_PREFIX = fromHex("302e020100300506032b656e04220420");
const BASE_POINT = concatBytes(new Uint8Array([9]), new Uint8Array(31));

/** The agreement gives no usable secret: the peer's key is a low-order point (all-zero result). */
export class KeyAgreementError extends Error {
  name = "KeyAgreementError";
}

async function importPublic(raw) {
  return subtle().importKey("raw", raw, ALGORITHM, true, []);
}

async function deriveSecret(privateKey, publicKey) {
  return new Uint8Array(await subtle().deriveBits({ name: "X25519", public: publicKey }, privateKey, 8 * KEY_SIZE));
}

/** A peer's X25519 public key: the raw 32-byte u-coordinate (RFC 7748). */
export class PublicKey {
  #key;
  #raw;

  /** Use PublicKey.fromBytes. */
  constructor(key, raw) {
    this.#key = key;
    this.#raw = raw;
  }

  static async fromBytes(data) {
    const raw = checkBytes(data, KEY_SIZE, "an X25519 public key").slice();
    return new PublicKey(await importPublic(raw), raw);
  }

  publicBytes() {
    return this.#raw.slice();
  }

  /** The WebCrypto key, for agree(). */
  get cryptoKey() {
    return this.#key;
  }

  equals(other) {
    return other instanceof PublicKey && this.#raw.every((b, i) => b === other.#raw[i]);
  }

  toString() {
    return `PublicKey(${Array.from(this.#raw, (b) => b.toString(16).padStart(2, "0")).join("")})`;
  }
}

/** An X25519 private key: the raw 32-byte scalar (clamping happens at use). */
export class PrivateKey {
  #key;
  #raw;
  #public;

  /** Use PrivateKey.generate or PrivateKey.fromBytes. */
  constructor(key, raw, publicKey) {
    this.#key = key;
    this.#raw = raw;
    this.#public = publicKey;
  }

  static async generate() {
    const pair = await subtle().generateKey(ALGORITHM, true, ["deriveBits"]);
    const pkcs8 = new Uint8Array(await subtle().exportKey("pkcs8", pair.privateKey));
    const raw = pkcs8.slice(pkcs8.length - KEY_SIZE);
    const publicRaw = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
    return new PrivateKey(pair.privateKey, raw, new PublicKey(pair.publicKey, publicRaw));
  }

  static async fromBytes(data) {
    const raw = checkBytes(data, KEY_SIZE, "an X25519 private key").slice();
    const key = await subtle().importKey("pkcs8", concatBytes(PKCS8_PREFIX, raw), ALGORITHM, false, ["deriveBits"]);
    const publicRaw = await deriveSecret(key, await importPublic(BASE_POINT));
    return new PrivateKey(key, raw, new PublicKey(await importPublic(publicRaw), publicRaw));
  }

  privateBytes() {
    return this.#raw.slice();
  }

  publicKey() {
    return this.#public;
  }

  publicBytes() {
    return this.#public.publicBytes();
  }

  /** The WebCrypto key, for agree(). */
  get cryptoKey() {
    return this.#key;
  }

  toString() {
    return `PrivateKey(public=${this.#public.toString().slice(10, -1)})`; // never print the secret
  }
}

/** The raw 32-byte X25519 shared secret; refuses the all-zero result (RFC 7748 §6.1). */
export async function agree(privateKey, peerPublic) {
  if (!(privateKey instanceof PrivateKey)) {
    throw new TypeError(`privateKey must be a PrivateKey, got ${describe(privateKey)}`);
  }
  if (!(peerPublic instanceof PublicKey)) {
    throw new TypeError(`peerPublic must be a PublicKey, got ${describe(peerPublic)}`);
  }
  let secret;
  try {
    secret = await deriveSecret(privateKey.cryptoKey, peerPublic.cryptoKey);
  } catch (error) {
    // OpenSSL and BoringSSL already refuse the all-zero output
    throw new KeyAgreementError(`the peer's public key is a low-order point: ${error.message}`);
  }
  if (secret.every((b) => b === 0)) {
    throw new KeyAgreementError("the shared secret is all zeros: the peer's public key is a low-order point");
  }
  return secret;
}
