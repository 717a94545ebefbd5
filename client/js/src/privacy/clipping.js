/**
 * Per-update L2 clipping and what it bounds, as fedge.shared.privacy.clipping: the norm is over
 * the whole update (client-level DP), not layer by layer.
 */

/** `values` scaled down to L2 norm `maxNorm` when longer (the norm summed in float64); `values` itself otherwise. */
export function clipNorm(values, maxNorm) {
  let squares = 0;
  for (const v of values) squares += v * v;
  const norm = Math.sqrt(squares);
  const scale = norm > 0 ? Math.min(1, maxNorm / norm) : 1;
  return scale === 1 ? values : Float32Array.from(values, (v) => v * scale);
}

/**
 * The L2 sensitivity, in integer units, of one update clipped to `maxNorm`, scaled by `scale`
 * and rounded: maxNorm·scale + 2√dim (each of the dim coordinates moves by less than one unit).
 */
export function quantisedSensitivity(maxNorm, scale, dim) {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) throw new RangeError(`expected a finite maxNorm > 0, got ${maxNorm}`);
  if (!(Number.isFinite(scale) && scale > 0)) throw new RangeError(`expected a finite scale > 0, got ${scale}`);
  if (!Number.isSafeInteger(dim) || dim < 1) {
    throw new RangeError(`expected a whole number of coordinates ≥ 1, got ${dim}`);
  }
  return maxNorm * scale + 2 * Math.sqrt(dim);
}
