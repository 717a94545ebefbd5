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

import { describe, repr } from "./bytes.js";
import { expand } from "./prg.js";

export function sign(own, peer) {
  if (own === peer) throw new RangeError(`a pairwise mask needs two different clients, got ${own} twice`);
  return own < peer ? 1 : -1;
}

function checkValues(values, what) {
  if (!(values instanceof Uint32Array)) throw new TypeError(`${what} must be a Uint32Array, got ${describe(values)}`);
  return values;
}

/** out ± expand(seed), element-wise mod 2^32, in place. */
async function addMask(out, seed, direction) {
  const mask = await expand(seed, out.length);
  for (let m = 0; m < out.length; m++) out[m] = out[m] + direction * mask[m]; // Uint32Array stores mod 2^32
}

async function apply(out, seedsWithSigns, remove) {
  for (const [seed, direction] of seedsWithSigns) {
    if (direction !== 1 && direction !== -1) {
      throw new RangeError(`a pairwise mask's sign must be +1 or -1, got ${repr(direction)}`);
    }
    await addMask(out, seed, remove ? -direction : direction);
  }
  return out;
}

/** The masked input: quantised `values` plus the self mask plus every signed pairwise mask. */
export async function mask(values, selfSeed, pairSeeds) {
  const out = checkValues(values, "values").slice();
  await addMask(out, selfSeed, 1);
  return apply(out, pairSeeds, false);
}

/** `total` minus PRG(b) for every survivor's reconstructed self-mask seed b. */
export async function removeSelfMasks(total, seeds) {
  const out = checkValues(total, "total").slice();
  for (const seed of seeds) await addMask(out, seed, -1);
  return out;
}

/**
 * `total` minus the masks that survivors added for dropped neighbours. Each sign is the
 * survivor's: +1 if the survivor's index is below the dropped client's.
 */
export async function removePairMasks(total, seedsWithSigns) {
  return apply(checkValues(total, "total").slice(), seedsWithSigns, true);
}
