/**
 * Reading a model spec (fedge.shared.nn.model): `{name, input_shape, layers: [...]}`, each layer
 * a `type`, an optional `name` (default `<type>_<index>`), its options and optional `inputs`
 * naming earlier layers (default: the previous one; "input" is the model input).
 *
 * The options and their defaults are the engine's (shared/nn/layers.py), so a spec that the
 * engine refuses is refused here too, with the layer's name and the rule.
 */

/** A model spec that cannot be built; the message names the layer and the rule. */
export class SpecError extends Error {
  name = "SpecError";
}

const KERNEL = { activation: "linear", use_bias: true, kernel_initializer: "glorot_uniform" };
const CONV = { filters: null, kernel_size: null, strides: 1, padding: "valid", ...KERNEL };
const POOL = { pool_size: 2, strides: null, padding: "valid" };

const WEIGHTS = ["kernel", "bias"];

/** type -> {options: defaults, spatial: spatial dims, params: its parameters' names, in order}. */
export const LAYER_KINDS = Object.freeze({
  dense: { options: { units: null, ...KERNEL }, params: WEIGHTS },
  conv1d: { options: CONV, spatial: 1, params: WEIGHTS },
  conv2d: { options: CONV, spatial: 2, params: WEIGHTS },
  maxpool1d: { options: POOL, spatial: 1 },
  maxpool2d: { options: POOL, spatial: 2 },
  globalavgpool: { options: {} },
  groupnorm: { options: { groups: 8, epsilon: 1e-5, activation: "linear" }, params: ["gamma", "beta"] },
  relu: { options: {} },
  dropout: { options: { rate: 0.5 } },
  flatten: { options: {} },
  concat: { options: {}, variadic: true },
});

/** The spec's layers as {kind, name, sources, config} with defaults filled in; throws SpecError. */
export function readSpec(spec) {
  for (const key of ["input_shape", "layers"]) {
    if (spec == null || !(key in spec)) {
      throw new SpecError(`model spec: expected key '${key}', got keys [${Object.keys(spec ?? {}).sort()}]`);
    }
  }
  if (!spec.layers.length) throw new SpecError("expected at least one layer, got none");
  const seen = new Set(["input"]);
  let previous = "input";
  return spec.layers.map((entry, index) => {
    const { type: kind, name = `${entry.type}_${index}`, inputs = [previous], ...options } = entry;
    if (!(kind in LAYER_KINDS)) {
      throw new SpecError(
        `layer ${index}: expected type in [${Object.keys(LAYER_KINDS).sort()}], got ${JSON.stringify(kind)}`,
      );
    }
    if (seen.has(name)) throw new SpecError(`layer ${index}: name '${name}' is already used`);
    const missing = inputs.filter((s) => !seen.has(s));
    if (missing.length) throw new SpecError(`layer '${name}': inputs [${missing}] are not earlier layers`);
    const defaults = LAYER_KINDS[kind].options;
    const unknown = Object.keys(options).filter((o) => !(o in defaults));
    if (unknown.length) {
      throw new SpecError(
        `layer '${name}' (${kind}): unknown option(s) [${unknown.sort()}], expected [${Object.keys(defaults).sort()}]`,
      );
    }
    seen.add(name);
    previous = name;
    return { kind, name, sources: inputs, config: { ...defaults, ...options } };
  });
}
