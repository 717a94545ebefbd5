/**
 * One TF.js layer per spec layer. TF.js is channels-last like the engine, and its kernels have
 * the engine's layout — dense (in, units), conv1d (kw, C, O), conv2d (kh, kw, C, O) — so weights
 * move between the two untouched; padding 'same' splits as TF does (the extra pixel after).
 */

import * as tf from "@tensorflow/tfjs";

import { LAYER_KINDS, SpecError } from "./spec.js";

function activation(layer) {
  const value = layer.config.activation;
  if (value !== "linear" && value !== "relu") {
    throw new SpecError(`layer '${layer.name}': expected activation 'linear' or 'relu', got ${JSON.stringify(value)}`);
  }
  return value;
}

/** An int option as `spatial` positive ints (the engine's Conv._tuple). */
function tuple(layer, key, spatial) {
  const value = layer.config[key];
  const values = Number.isInteger(value) ? Array(spatial).fill(value) : Array.from(value ?? []);
  if (values.length !== spatial || !values.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new SpecError(
      `layer '${layer.name}' (${layer.kind}): expected ${key} as ${spatial} positive int(s), got ${JSON.stringify(value)}`,
    );
  }
  return values;
}

function padding(layer) {
  const value = layer.config.padding;
  if (value !== "valid" && value !== "same") {
    throw new SpecError(`layer '${layer.name}': expected padding 'valid' or 'same', got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkRank(layer, shape, rank, what) {
  if (shape.length !== rank) {
    throw new SpecError(`layer '${layer.name}' (${layer.kind}): expected ${what}, got shape [${shape}]`);
  }
}

function dense(layer, [shape]) {
  checkRank(layer, shape, 1, "a flat input (add a flatten layer)");
  const units = layer.config.units;
  if (!Number.isInteger(units) || units < 1)
    throw new SpecError(`layer '${layer.name}' (dense): expected units >= 1, got ${units}`);
  return tf.layers.dense({
    name: layer.name,
    units,
    activation: activation(layer),
    useBias: layer.config.use_bias,
    kernelInitializer: initializer(layer),
  });
}

/** The engine's kernel initialisers by TF.js name (the weights a task starts from come from the server). */
const INITIALIZERS = { glorot_uniform: "glorotUniform", he_uniform: "heUniform" };

function initializer(layer) {
  const name = layer.config.kernel_initializer;
  if (!(name in INITIALIZERS)) {
    throw new SpecError(
      `layer '${layer.name}': expected kernel_initializer in [${Object.keys(INITIALIZERS)}], got ${JSON.stringify(name)}`,
    );
  }
  return INITIALIZERS[name];
}

function conv(layer, [shape], spatial) {
  checkRank(layer, shape, spatial + 1, `a ${spatial + 1}-d input (..., channels)`);
  const { filters, use_bias: useBias } = layer.config;
  if (!Number.isInteger(filters) || filters < 1) {
    throw new SpecError(`layer '${layer.name}' (${layer.kind}): expected filters >= 1, got ${filters}`);
  }
  const options = {
    name: layer.name,
    filters,
    kernelSize: tuple(layer, "kernel_size", spatial),
    strides: tuple(layer, "strides", spatial),
    padding: padding(layer),
    activation: activation(layer),
    useBias,
    kernelInitializer: initializer(layer),
  };
  return spatial === 1
    ? tf.layers.conv1d({ ...options, kernelSize: options.kernelSize[0], strides: options.strides[0] })
    : tf.layers.conv2d(options);
}

function maxPool(layer, [shape], spatial) {
  checkRank(layer, shape, spatial + 1, `a ${spatial + 1}-d input`);
  const pool = tuple(layer, "pool_size", spatial);
  const strides = layer.config.strides == null ? pool : tuple(layer, "strides", spatial);
  const options = { name: layer.name, poolSize: pool, strides, padding: padding(layer) };
  if (spatial === 1) return tf.layers.maxPooling1d({ ...options, poolSize: pool[0], strides: strides[0] });
  return tf.layers.maxPooling2d(options);
}

function globalAvgPool(layer, [shape]) {
  if (shape.length === 2) return tf.layers.globalAveragePooling1d({ name: layer.name });
  if (shape.length === 3) return tf.layers.globalAveragePooling2d({ name: layer.name });
  throw new SpecError(`layer '${layer.name}' (globalavgpool): expected 1 or 2 spatial axes, got shape [${shape}]`);
}

/**
 * Group normalisation over channels-last input (the engine's GroupNorm layer): each group of
 * C / G channels to zero mean and unit variance per sample, then a per-channel scale and offset
 * (gamma, beta: the parameters' order) and the activation.
 */
class GroupNorm extends tf.layers.Layer {
  static className = "FedgeGroupNorm";

  constructor({ name, groups, epsilon, activation }) {
    super({ name });
    Object.assign(this, { groups, epsilon, relu: activation === "relu" });
  }

  build(inputShape) {
    const channels = inputShape.at(-1);
    this.gamma = this.addWeight("gamma", [channels], "float32", tf.initializers.ones());
    this.beta = this.addWeight("beta", [channels], "float32", tf.initializers.zeros());
    this.built = true;
  }

  computeOutputShape(inputShape) {
    return inputShape;
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const channels = x.shape.at(-1);
      const grouped = x.reshape([x.shape[0], -1, this.groups, channels / this.groups]);
      const { mean, variance } = tf.moments(grouped, [1, 3], true);
      const normal = grouped.sub(mean).mul(tf.rsqrt(variance.add(this.epsilon))).reshape(x.shape);
      const y = normal.mul(this.gamma.read()).add(this.beta.read());
      return this.relu ? tf.relu(y) : y;
    });
  }

  getConfig() {
    return { ...super.getConfig(), groups: this.groups, epsilon: this.epsilon, activation: this.relu ? "relu" : "linear" };
  }
}
tf.serialization.registerClass(GroupNorm);

function groupNorm(layer, [shape]) {
  const { groups, epsilon } = layer.config;
  if (shape.length < 2 || !Number.isInteger(groups) || groups < 1 || shape.at(-1) % groups) {
    throw new SpecError(
      `layer '${layer.name}' (groupnorm): expected groups dividing the channels of a spatial input, ` +
        `got groups=${JSON.stringify(groups)} for shape [${shape}]`,
    );
  }
  if (!(Number(epsilon) > 0))
    throw new SpecError(`layer '${layer.name}' (groupnorm): expected epsilon > 0, got ${epsilon}`);
  return new GroupNorm({ name: layer.name, groups, epsilon: Number(epsilon), activation: activation(layer) });
}

function dropout(layer) {
  const rate = Number(layer.config.rate);
  if (!(rate >= 0 && rate < 1))
    throw new SpecError(`layer '${layer.name}' (dropout): expected 0 <= rate < 1, got ${layer.config.rate}`);
  return tf.layers.dropout({ name: layer.name, rate });
}

function concat(layer, shapes) {
  const lead = (s) => JSON.stringify(s.slice(0, -1));
  if (shapes.length < 2 || new Set(shapes.map(lead)).size !== 1) {
    throw new SpecError(
      `layer '${layer.name}' (concat): expected >= 2 inputs equal but for channels, got ${JSON.stringify(shapes)}`,
    );
  }
  return tf.layers.concatenate({ name: layer.name, axis: -1 });
}

const BUILDERS = {
  dense,
  conv1d: (layer, shapes) => conv(layer, shapes, 1),
  conv2d: (layer, shapes) => conv(layer, shapes, 2),
  maxpool1d: (layer, shapes) => maxPool(layer, shapes, 1),
  maxpool2d: (layer, shapes) => maxPool(layer, shapes, 2),
  globalavgpool: globalAvgPool,
  groupnorm: groupNorm,
  relu: (layer) => tf.layers.reLU({ name: layer.name }),
  dropout,
  flatten: (layer) => tf.layers.flatten({ name: layer.name }),
  concat,
};

/** The TF.js layer for one read spec layer, given its inputs' shapes (without the batch axis). */
export function makeLayer(layer, shapes) {
  if (!LAYER_KINDS[layer.kind].variadic && shapes.length !== 1) {
    throw new SpecError(`layer '${layer.name}' (${layer.kind}): expected 1 input(s), got ${shapes.length}`);
  }
  return BUILDERS[layer.kind](layer, shapes);
}
