/**
 * The TF.js trainer against the Python engine (tests/vectors/engine/, written by
 * scripts/gen_engine_vectors.py): the same spec and weights must give the same logits, and the
 * same optimiser steps the same weights, on whichever backend the including test file names.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import * as tf from "@tensorflow/tfjs";

import {
  Model,
  labelLogPrior,
  makeOptimizer,
  readPlan,
  selectBackend,
  trainStep,
  trainUpdate,
} from "../../src/model/index.js";
import { ENGINE_MODELS, engineVector, float32, maxAbsDiff } from "../helpers.js";

export const LOGITS_TOLERANCE = 1e-4;
export const LOSS_TOLERANCE = 1e-5;
export const WEIGHTS_TOLERANCE = 5e-5; // Adam divides by √v: coordinates with tiny gradients move ~1e-5 apart

const planOf = (c, batchSize) =>
  readPlan({
    epochs: c.steps,
    batchSize,
    lr: c.lr,
    optimizer: c.optimizer,
    momentum: c.momentum,
    proximalMu: c.proximal_mu,
    logitAdjustment: c.logit_adjustment,
  });

/** The label prior of a vector's batch, which stands for a device's whole data. */
const priorOf = (v) => labelLogPrior(v.y, v.logits.shape[1]);

function load(v) {
  return {
    v,
    model: new Model(v.spec),
    weights: v.weights.map(float32),
    x: tf.tensor(float32(v.x.data), v.x.shape),
    y: tf.tensor1d(v.y, "int32"),
  };
}

/** The share of samples whose largest logit (plus `prior`) is their label (first index on ties, as argmax). */
function accuracy(logits, labels, prior = null) {
  const classes = logits.length / labels.length;
  const hits = labels.filter((label, n) => {
    const row = Array.from(logits.subarray(n * classes, (n + 1) * classes), (v, c) => v + (prior ? prior[c] : 0));
    return row.indexOf(Math.max(...row)) === label;
  });
  return hits.length / labels.length;
}

export function replayEngineVectors(backend) {
  describe(`engine vectors on ${backend}`, () => {
    before(async () => assert.equal(await selectBackend({ order: [backend] }), backend));

    for (const name of ENGINE_MODELS) {
      describe(name, () => {
        const vector = engineVector(name);
        let f;
        before(() => (f = load(vector)));
        after(() => {
          tf.dispose([f.x, f.y]);
          f.model.dispose();
        });

        test("parameters are named, ordered and shaped as the engine's", () => {
          assert.deepEqual(
            f.model.parameterNames,
            f.v.parameters.map((p) => p.name),
          );
          assert.deepEqual(
            f.model.parameterShapes,
            f.v.parameters.map((p) => p.shape),
          );
        });

        test("the engine's weights give the engine's logits", async () => {
          f.model.setWeights(f.weights);
          assert.ok(maxAbsDiff(await f.model.getWeights(), f.weights) === 0, "weights read back as set");
          const logits = tf.tidy(() => f.model.apply(f.x).dataSync());
          const worst = maxAbsDiff([logits], [float32(f.v.logits.data)]);
          assert.ok(worst < LOGITS_TOLERANCE, `logits differ by ${worst}`);
        });

        for (const c of vector.cases) {
          test(`${c.name}: ${c.steps} step(s) give the engine's losses and weights`, async () => {
            f.model.setWeights(f.weights);
            const optimizer = makeOptimizer(f.model, planOf(c, f.v.y.length));
            const prior = c.logit_adjustment ? tf.tensor1d(priorOf(f.v)) : null;
            const losses = [];
            for (let s = 0; s < c.steps; s++)
              losses.push((await trainStep(f.model, optimizer, f.x, f.y, { training: false, prior })).loss);
            optimizer.dispose();
            prior?.dispose();
            losses.forEach((loss, s) =>
              assert.ok(Math.abs(loss - c.losses[s]) < LOSS_TOLERANCE, `step ${s}: loss ${loss} vs ${c.losses[s]}`),
            );
            const worst = maxAbsDiff(await f.model.getWeights(), c.weights.map(float32));
            assert.ok(worst < WEIGHTS_TOLERANCE, `weights differ by ${worst}`);
          });
        }

        const dropout = vector.spec.layers.some((l) => l.type === "dropout");
        test(
          "trainUpdate over one full batch per epoch is the engine's update and metrics",
          { skip: dropout && "dropout draws differ" },
          async () => {
            for (const c of f.v.cases) {
              const result = await trainUpdate(f.model, f.weights, f.x, f.y, planOf(c, f.v.y.length));
              const expected = c.weights.map(float32).map((w, i) => w.map((v, m) => v - f.weights[i][m]));
              const worst = maxAbsDiff(result.update, expected);
              assert.ok(worst < WEIGHTS_TOLERANCE, `${c.name}: update differs by ${worst}`);
              assert.equal(result.numExamples, f.v.y.length);
              const meanLoss = c.losses.reduce((a, b) => a + b) / c.losses.length;
              assert.ok(Math.abs(result.metrics.train_loss - meanLoss) < LOSS_TOLERANCE, `${c.name}: train_loss`);
              const prior = c.logit_adjustment ? priorOf(f.v) : null;
              if (c.steps === 1)
                assert.equal(result.metrics.train_accuracy, accuracy(float32(f.v.logits.data), f.v.y, prior));
            }
          },
        );
      });
    }

    test("no tensor is left behind", () => {
      assert.equal(tf.memory().numTensors, 0);
    });
  });
}
