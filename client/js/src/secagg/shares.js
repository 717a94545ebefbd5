/**
 * Share bundles: what client i sends client j, sealed with AES-256-GCM under their share key.
 *
 *     plaintext  = sender (uint16 BE) ‖ receiver (uint16 BE) ‖ share of s_sk (68 B) ‖ share of b (68 B)   140 bytes
 *     nonce      = roundId (uint64 BE) ‖ sender (uint16 BE) ‖ receiver (uint16 BE)                        12 bytes
 *     aad        = the same 12 bytes as the nonce
 *     ciphertext = AES-256-GCM(key = kdf.shareKey(...)).encrypt(nonce, plaintext, aad)                 156 bytes
 *
 * Each direction of each pair sends one bundle per round, so a nonce never repeats under a key.
 */

import { concatBytes, describe, subtle, u16, u64 } from "./bytes.js";
import { checkIndex, checkRoundId } from "./kdf.js";
import { SHARE_SIZE, Share } from "./shamir.js";

export const KEY_SIZE = 32;
export const HEADER_SIZE = 4;
export const PLAINTEXT_SIZE = HEADER_SIZE + 2 * SHARE_SIZE;
export const TAG_SIZE = 16;
export const CIPHERTEXT_SIZE = PLAINTEXT_SIZE + TAG_SIZE;

/** A bundle that does not open: wrong key, round, sender or receiver, or tampered bytes. */
export class ShareDecryptionError extends Error {
  name = "ShareDecryptionError";
}

/** An unmask request a client must not answer: it would reveal both secrets of a neighbour. */
export class RevealRefused extends Error {
  name = "RevealRefused";
}

export class ShareBundle {
  constructor(sender, receiver, sShare, bShare) {
    checkIndex(sender, "sender");
    checkIndex(receiver, "receiver");
    if (sender === receiver) throw new RangeError(`a bundle goes to another client, got sender = receiver = ${sender}`);
    for (const [name, share] of [
      ["sShare", sShare],
      ["bShare", bShare],
    ]) {
      if (!(share instanceof Share)) throw new TypeError(`${name} must be a Share, got ${describe(share)}`);
      if (share.x !== receiver + 1)
        throw new RangeError(`${name}.x must be receiver + 1 = ${receiver + 1}, got ${share.x}`);
    }
    Object.assign(this, { sender, receiver, sShare, bShare });
    Object.freeze(this);
  }

  toBytes() {
    return concatBytes(u16(this.sender), u16(this.receiver), this.sShare.toBytes(), this.bShare.toBytes());
  }

  static fromBytes(data) {
    if (!(data instanceof Uint8Array) || data.length !== PLAINTEXT_SIZE) {
      throw new RangeError(`a share bundle is ${PLAINTEXT_SIZE} bytes, got ${describe(data)}`);
    }
    const sShare = Share.fromBytes(data.slice(HEADER_SIZE, HEADER_SIZE + SHARE_SIZE));
    const bShare = Share.fromBytes(data.slice(HEADER_SIZE + SHARE_SIZE));
    return new ShareBundle((data[0] << 8) | data[1], (data[2] << 8) | data[3], sShare, bShare);
  }
}

export function nonce(roundId, sender, receiver) {
  return concatBytes(
    u64(checkRoundId(roundId)),
    u16(checkIndex(sender, "sender")),
    u16(checkIndex(receiver, "receiver")),
  );
}

async function aead(key, usage) {
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    throw new RangeError(`a share key must be exactly ${KEY_SIZE} bytes (AES-256), got ${describe(key)}`);
  }
  return subtle().importKey("raw", key, "AES-GCM", false, [usage]);
}

function gcm(iv) {
  return { name: "AES-GCM", iv, additionalData: iv, tagLength: 8 * TAG_SIZE };
}

export async function encryptBundle(key, roundId, bundle) {
  if (!(bundle instanceof ShareBundle)) throw new TypeError(`expected a ShareBundle, got ${describe(bundle)}`);
  const iv = nonce(roundId, bundle.sender, bundle.receiver);
  return new Uint8Array(await subtle().encrypt(gcm(iv), await aead(key, "encrypt"), bundle.toBytes()));
}

/** The bundle `sender` sealed for `receiver` in this round, or ShareDecryptionError. */
export async function decryptBundle(key, roundId, sender, receiver, ciphertext) {
  const iv = nonce(roundId, sender, receiver);
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length !== CIPHERTEXT_SIZE) {
    throw new ShareDecryptionError(`a sealed bundle is ${CIPHERTEXT_SIZE} bytes, got ${describe(ciphertext)}`);
  }
  const cryptoKey = await aead(key, "decrypt");
  let plaintext;
  try {
    plaintext = new Uint8Array(await subtle().decrypt(gcm(iv), cryptoKey, ciphertext));
  } catch {
    throw new ShareDecryptionError(
      `the bundle from ${sender} to ${receiver} in round ${roundId} does not authenticate ` +
        "(wrong key, round, sender or receiver, or tampered bytes)",
    );
  }
  const bundle = ShareBundle.fromBytes(plaintext);
  if (bundle.sender !== sender || bundle.receiver !== receiver) {
    throw new ShareDecryptionError(
      `expected a bundle from ${sender} to ${receiver}, got one from ${bundle.sender} to ${bundle.receiver}`,
    );
  }
  return bundle;
}

/**
 * The unmask answer, [bShares, sShares] (Maps from neighbour index to Share): shares of b for
 * neighbours that survived, of s_sk for those that dropped. Never both for one neighbour: with
 * b and s_sk of a client the server could unmask its input.
 */
export function reveal(bundles, survivors, dropped) {
  if (!(bundles instanceof Map))
    throw new TypeError(`bundles must be a Map from sender index to ShareBundle, got ${describe(bundles)}`);
  const both = survivors.filter((j) => dropped.includes(j));
  if (both.length) {
    throw new RevealRefused(`a neighbour is either a survivor or dropped, got both for [${sortedUnique(both)}]`);
  }
  const unknown = [...survivors, ...dropped].filter((j) => !bundles.has(j));
  if (unknown.length) {
    throw new RevealRefused(`expected only neighbours that sent this client shares, got [${sortedUnique(unknown)}]`);
  }
  return [
    new Map(survivors.map((j) => [j, bundles.get(j).bShare])),
    new Map(dropped.map((j) => [j, bundles.get(j).sShare])),
  ];
}

function sortedUnique(values) {
  return [...new Set(values)].sort((a, b) => a - b);
}
