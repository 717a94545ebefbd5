/**
 * Masks, all mod 2^32:
 *
 *     client i sends  y_i = q_i + PRG(b_i) + Σ_{j neighbour of i} sign(i, j)·PRG(s_ij)
 *     sign(i, j)      = +1 if i < j else −1, so the two ends of a pair cancel in the sum
 *     server          Σ y_i over survivors − Σ PRG(b_i) over survivors
 *                     − Σ sign(j, d)·PRG(s_jd) for each dropped d and each surviving neighbour j of d
 *
 * PRG is prg.expand; s_ij is kdf.pairwiseSeed of the pair's X25519 secret. Seeds with signs are
 * [seed, sign] pairs, as the Python takes (seed, sign) tuples.
 */

import { checkBytes, describe, repr } from "./bytes.js";
import { SEED_SIZE, SEGMENT, expandSegments } from "./prg.js";

/** Masks expanded at once: WebCrypto encrypts on its own threads while this one adds. */
const IN_FLIGHT = 4;

export function sign(own, peer) {
  if (own === peer) throw new RangeError(`a pairwise mask needs two different clients, got ${own} twice`);
  return own < peer ? 1 : -1;
}

function checkValues(values, what) {
  if (!(values instanceof Uint32Array)) throw new TypeError(`${what} must be a Uint32Array, got ${describe(values)}`);
  return values;
}

function addInto(out, segments, direction) {
  for (const [s, mask] of segments.entries()) {
    const part = out.subarray(s * SEGMENT, s * SEGMENT + mask.length); // Uint32Array stores mod 2^32
    if (direction === 1) for (let m = 0; m < mask.length; m++) part[m] += mask[m];
    else for (let m = 0; m < mask.length; m++) part[m] -= mask[m];
  }
}

/** out ± expand(seed) for every [seed, direction], in place; IN_FLIGHT expansions at a time. */
async function apply(out, seedsWithSigns, remove = false) {
  const signed = seedsWithSigns.map(([seed, direction]) => {
    checkBytes(seed, SEED_SIZE, "a PRG seed"); // refused before any expansion starts
    if (direction !== 1 && direction !== -1) {
      throw new RangeError(`a pairwise mask's sign must be +1 or -1, got ${repr(direction)}`);
    }
    return [seed, remove ? -direction : direction];
  });
  const pending = [];
  const next = () => {
    const [seed] = signed[pending.length] ?? [];
    if (!seed) return;
    const expansion = expandSegments(seed, out.length);
    expansion.catch(() => {}); // awaited in turn below; a failure meanwhile is not left unhandled
    pending.push(expansion);
  };
  for (let i = 0; i < IN_FLIGHT; i++) next();
  for (let i = 0; i < signed.length; i++) {
    const mask = await pending[i];
    next();
    addInto(out, mask, signed[i][1]);
  }
  return out;
}

/** The masked input: quantised `values` plus the self mask plus every signed pairwise mask. */
export async function mask(values, selfSeed, pairSeeds) {
  return apply(checkValues(values, "values").slice(), [[selfSeed, 1], ...pairSeeds]);
}

/** `total` minus PRG(b) for every survivor's reconstructed self-mask seed b. */
export async function removeSelfMasks(total, seeds) {
  return apply(checkValues(total, "total").slice(), seeds.map((seed) => [seed, 1]), true);
}

/**
 * `total` minus the masks that survivors added for dropped neighbours. Each sign is the
 * survivor's: +1 if the survivor's index is below the dropped client's.
 */
export async function removePairMasks(total, seedsWithSigns) {
  return apply(checkValues(total, "total").slice(), seedsWithSigns, true);
}
