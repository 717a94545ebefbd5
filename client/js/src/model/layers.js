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
