/**
 * The engine's optimisers (shared/nn/optimizers.py), step for step, on TF.js variables.
 *
 * Written out rather than taken from tf.train so that a browser and a Python client given the
 * same plan take the same steps: the engine's Adam puts epsilon on sqrt(v) before the bias
 * correction (TF's "epsilon hat") where tf.train.adam adds it after, and FedProx's proximal term
 * is a gradient hook that runs before any optimiser.
 *
 *     SGD       v = g (first step), v = momentum·v + g;   w -= lr·v        (v = g without momentum)
 *     Adam      m += (1 − β1)(g − m);  v += (1 − β2)(g² − v);  w -= lr·√(1 − β2^t)/(1 − β1^t) · m / (√v + ε)
 *     proximal  g += mu·(w − w_global)                                        (FedProx, Li et al. 2020)
 */

import * as tf from "@tensorflow/tfjs";

export class Optimizer {
  /** @param {Array<(params: tf.Variable[], grads: tf.Tensor[]) => tf.Tensor[]>} hooks gradient hooks, in order */
  constructor(hooks = []) {
    this.hooks = hooks;
  }

  /** One step: `grads[i]` is the gradient of `params[i]`. The caller keeps ownership of `grads`. */
  step(params, grads) {
    tf.tidy(() => {
      const final = this.hooks.reduce((g, hook) => hook(params, g), grads);
      this.begin();
      params.forEach((p, i) => this.update(p, final[i], i));
    });
  }

  begin() {}

  update() {
    throw new Error("an optimiser must define update()");
  }

  /** Frees the optimiser's state tensors and its hooks'. */
  dispose() {
    this.hooks.forEach((hook) => hook.dispose?.());
  }
}

export class SGD extends Optimizer {
  constructor({ lr = 0.01, momentum = 0, hooks = [] } = {}) {
    super(hooks);
    Object.assign(this, { lr, momentum, velocity: [] });
  }

  update(p, grad, i) {
    let direction = grad;
    if (this.momentum) {
      const v = this.velocity[i];
      direction = v == null ? grad.clone() : v.mul(this.momentum).add(grad);
      v?.dispose();
      this.velocity[i] = tf.keep(direction);
    }
    p.assign(p.sub(direction.mul(this.lr)));
  }

  dispose() {
    super.dispose();
    this.velocity.forEach((v) => v?.dispose());
    this.velocity = [];
  }
}

export class Adam extends Optimizer {
  constructor({ lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-7, hooks = [] } = {}) {
    super(hooks);
    Object.assign(this, { lr, beta1, beta2, eps, t: 0, moments: [] });
  }

  begin() {
    this.t += 1;
  }

  update(p, grad, i) {
    const [m0, v0] = this.moments[i] ?? [tf.zerosLike(grad), tf.zerosLike(grad)];
    const m = tf.keep(m0.add(grad.sub(m0).mul(1 - this.beta1)));
    const v = tf.keep(
      v0.add(
        grad
          .mul(grad)
          .sub(v0)
          .mul(1 - this.beta2),
      ),
    );
    m0.dispose();
    v0.dispose();
    this.moments[i] = [m, v];
    const scale = (this.lr * Math.sqrt(1 - this.beta2 ** this.t)) / (1 - this.beta1 ** this.t);
    p.assign(p.sub(m.mul(scale).div(v.sqrt().add(this.eps))));
  }

  dispose() {
    super.dispose();
    this.moments.flat().forEach((t) => t.dispose());
    this.moments = [];
  }
}

/**
 * FedProx's hook: adds mu·(w − anchor) to each gradient. `anchor` is the round's global weights
 * as tensors, which the hook owns: the optimiser's dispose() frees them.
 */
export function proximalTerm(mu, anchor) {
  const hook = (params, grads) => {
    if (params.length !== anchor.length) {
      throw new RangeError(`proximal term: expected ${anchor.length} parameters, got ${params.length}`);
    }
    return grads.map((g, i) => g.add(params[i].sub(anchor[i]).mul(mu)));
  };
  hook.dispose = () => tf.dispose(anchor);
  return hook;
}

export const OPTIMIZERS = Object.freeze({ sgd: SGD, adam: Adam });
