"""The JavaScript client in headless Chromium next to the Python engine, on this machine.

Serves client/js/dist (``npm run build --prefix client/js``) on 127.0.0.1, opens Debian's
Chromium through Playwright and, in the page, imports the bundle (``fedge-client.js``) and times:

1. one training step (batch 32, plain SGD, the bundle's ``trainStep``) of ``har-cnn1d`` and
   ``digits-cnn``, built by the bundle's ``Model`` from the spec ``fedge.shared.models.model_spec``
   gives, on every TF.js backend that starts (webgpu, webgl, wasm, cpu);
2. the same step in the Python engine (``fedge.shared.nn``), in this process;
3. one client's SecAgg+ masking of P = 1,240,000 values with k pairwise masks plus the self mask
   (``secagg.mask``: AES-256-CTR expansion through WebCrypto, then adding mod 2^32), next to
   ``fedge.shared.secagg.mask`` on the same sizes.

    .venv/bin/python benchmarks/browser.py                   # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/browser.py --skip webgpu     # without the slow SwiftShader WebGPU

The page is served without COOP/COEP headers, so wasm runs SIMD on one thread (TF.js picks the
threaded binary only in a cross-origin-isolated page). Headless Chromium here has no GPU:
WebGL and WebGPU run on SwiftShader (WebGPU only with ``--enable-unsafe-webgpu``).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import mimetypes
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from fedge.server.secagg import automatic_neighbours
from fedge.shared import secagg
from fedge.shared.models import model_spec
from fedge.shared.nn import SGD, F, Model

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "client" / "js" / "dist"
sys.path.insert(0, str(ROOT))  # the browser tests' launcher: one list of Chromium flags
from tests.browser import chromium  # noqa: E402

FLAGS = [*chromium.FLAGS, "--enable-unsafe-webgpu"]  # WebGPU on SwiftShader, for its row in the table
CASES = {"har-cnn1d": ((100, 6), 7), "digits-cnn": ((28, 28, 1), 10)}
BACKENDS = ["webgpu", "webgl", "wasm", "cpu"]
BENCH_PAGE = b"<!doctype html><meta charset=utf-8><title>fedge bench</title>"

# Runs in the page: the bundle's own Model, SGD and trainStep on one backend.
TRAIN_JS = """
async ({backend, cases, batch, warmup, steps, budgetMs}) => {
  const m = await import("/fedge-client.js");
  const tf = m.tf;
  try {
    await m.selectBackend({ order: [backend] });
  } catch (error) {
    return { error: String(error.message || error) };
  }
  const out = {};
  for (const [name, spec] of Object.entries(cases)) {
    const model = new m.Model(spec);
    const optimizer = new m.SGD({ lr: 0.01 });
    const classes = model.outputShape[0];
    const x = tf.randomNormal([batch, ...model.inputShape]);
    const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % classes), "int32");
    for (let i = 0; i < warmup; i++) await m.trainStep(model, optimizer, x, y);
    const times = [];
    const begin = performance.now();
    while (times.length < steps && (times.length === 0 || performance.now() - begin < budgetMs)) {
      const t0 = performance.now();
      await m.trainStep(model, optimizer, x, y);
      times.push(performance.now() - t0);
    }
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
    out[name] = times;
  }
  return { backend: tf.getBackend(), results: out };
}
"""

# Runs in the page: the bundle's secagg.mask (self mask + k signed pairwise masks).
MASK_JS = """
async ({params, neighbours, repeats}) => {
  const m = await import("/fedge-client.js");
  const seed = (i) => { const s = new Uint8Array(32); crypto.getRandomValues(s); s[0] = i; return s; };
  const values = new Uint32Array(params);
  const pairs = Array.from({ length: neighbours }, (_, j) => [seed(j + 1), j % 2 ? 1 : -1]);
  const self = seed(0);
  await m.secagg.mask(values.subarray(0, 1024), self, pairs);  // warm WebCrypto and the JIT
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await m.secagg.mask(values, self, pairs);
    times.push(performance.now() - t0);
  }
  return times;
}
"""


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/bench.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(BENCH_PAGE)))
            self.end_headers()
            self.wfile.write(BENCH_PAGE)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(directory: Path) -> http.server.ThreadingHTTPServer:
    mimetypes.add_type("application/wasm", ".wasm")
    mimetypes.add_type("text/javascript", ".js")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def python_step_ms(name: str, batch: int, warmup: int, steps: int) -> float:
    """Median ms of one engine step: forward, softmax cross-entropy, backward, SGD."""
    shape, classes = CASES[name]
    model = Model(model_spec(name, shape, classes), seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = np.arange(batch) % classes
    optimizer = SGD(lr=0.01)

    def step() -> None:
        model.cleargrads()
        F.softmax_cross_entropy(model(x), y).backward()
        optimizer.step(model.parameters())

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def python_mask_ms(params: int, neighbours: int, repeats: int) -> float:
    values = np.zeros(params, np.uint32)
    pairs = [(os.urandom(32), 1 if j % 2 else -1) for j in range(neighbours)]
    self_seed = os.urandom(32)
    secagg.mask(values[:1024], self_seed, pairs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        secagg.mask(values, self_seed, pairs)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and backend")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of timed steps per model and backend")
    parser.add_argument("--skip", action="append", default=[], choices=BACKENDS, help="a backend not to try")
    parser.add_argument("--params", type=int, default=1_240_000)
    parser.add_argument("--clients", type=int, default=100, help="N for automatic_neighbours(N)")
    parser.add_argument("--repeats", type=int, default=3, help="timed maskings")
    parser.add_argument("--build", action="store_true", help="run `npm run build` in client/js first")
    args = parser.parse_args()

    if args.build or not (DIST / "fedge-client.js").exists():
        subprocess.run(["npm", "run", "build", "--prefix", str(ROOT / "client" / "js")], check=True)
    from playwright.sync_api import sync_playwright

    specs = {name: model_spec(name, shape, classes) for name, (shape, classes) in CASES.items()}
    neighbours = automatic_neighbours(args.clients)
    started = time.perf_counter()
    server = serve(DIST)
    url = f"http://127.0.0.1:{server.server_address[1]}/bench.html"
    browser_ms: dict[str, dict[str, float] | str] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium.CHROMIUM), headless=True, args=FLAGS)
            try:
                for backend in BACKENDS:
                    if backend in args.skip:
                        browser_ms[backend] = "skipped (--skip)"
                        continue
                    page = browser.new_page()  # one page per backend: a clean TF.js engine
                    page.goto(url)
                    t0 = time.perf_counter()
                    got = page.evaluate(
                        TRAIN_JS,
                        {
                            "backend": backend,
                            "cases": specs,
                            "batch": args.batch,
                            "warmup": args.warmup,
                            "steps": args.steps,
                            "budgetMs": args.budget * 1e3,
                        },
                    )
                    page.close()
                    if "error" in got:
                        browser_ms[backend] = f"did not start: {got['error'][:100]}"
                    else:
                        browser_ms[backend] = {n: statistics.median(t) for n, t in got["results"].items()}
                        counts = ", ".join(f"{n} {len(t)}" for n, t in got["results"].items())
                        print(f"  {backend}: {time.perf_counter() - t0:.1f} s (timed steps: {counts})", file=sys.stderr)
                page = browser.new_page()
                page.goto(url)
                mask_times = page.evaluate(
                    MASK_JS, {"params": args.params, "neighbours": neighbours, "repeats": args.repeats}
                )
                page.close()
            finally:
                browser.close()
    finally:
        server.shutdown()

    python_ms = {name: python_step_ms(name, args.batch, args.warmup, args.steps) for name in CASES}
    js_mask = statistics.median(mask_times)
    py_mask = python_mask_ms(args.params, neighbours, args.repeats)

    print(f"\ntraining step: batch {args.batch}, SGD, median of up to {args.steps} steps ({args.warmup} warm-up)")
    print(f"{'backend':<10}" + "".join(f" {n + ' ms':>14} {'/python':>8}" for n in CASES))
    print(f"{'python':<10}" + "".join(f" {python_ms[n]:14.1f} {'1.0x':>8}" for n in CASES))
    for backend, result in browser_ms.items():
        if isinstance(result, str):
            print(f"{backend:<10} {result}")
            continue
        row = "".join(f" {result[n]:14.1f} {result[n] / python_ms[n]:7.1f}x" for n in CASES)
        print(f"{backend:<10}{row}")
    print(
        f"\nSecAgg+ masking: P={args.params:,}, k={neighbours} (automatic_neighbours({args.clients})), "
        f"self mask + k pairwise masks, median of {args.repeats}"
    )
    print(f"{'browser':<10} {js_mask:10.0f} ms {js_mask / py_mask:7.1f}x")
    print(f"{'python':<10} {py_mask:10.0f} ms {'1.0x':>8}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
