/**
 * Exponential backoff with full jitter (AWS architecture blog), capped: the wait after the
 * n-th failure in a row is uniform in [0, min(cap, base · 2^n)]. Jitter keeps a crowd of
 * browsers that lost the gateway together from coming back together. The Python agent's Backoff.
 */
export class Backoff {
  constructor({ baseS = 0.25, capS = 30, random = Math.random } = {}) {
    Object.assign(this, { baseS, capS, random, failures: 0 });
  }

  /** Seconds to wait after one more failure. */
  next() {
    this.failures += 1;
    return this.random() * Math.min(this.capS, this.baseS * 2 ** this.failures);
  }

  reset() {
    this.failures = 0;
  }
}
