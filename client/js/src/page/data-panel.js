/**
 * The "Data on this device" panel: load files, record samples, delete them. Every batch goes
 * to IndexedDB (PageStore) and into `state.batches`, which the trainer reads at each round.
 */

import { normalise, readDataFiles } from "../data/datafiles.js";
import { CameraRecorder, MotionRecorder } from "./recorder.js";
import { describeSamples, formatCount } from "./view.js";

const $ = (id) => document.getElementById(id);

export class DataPanel {
  /** `state`: the page's {store, batches, labels, normalisation, taskShape}; `changed()` after each change. */
  constructor(state, changed) {
    Object.assign(this, { state, changed, session: null });
    this.motion = new MotionRecorder();
    this.camera = new CameraRecorder($("camera"));
    $("files").addEventListener("change", (e) =>
      this.loadFiles([...e.target.files]).finally(() => (e.target.value = "")),
    );
    $("clear-samples").addEventListener("click", () => this.clear());
    $("label-names").addEventListener("change", (e) => this.setLabels(e.target.value.split(",")));
    $("record-kind").addEventListener("change", () => this.suggestShape());
    $("record-start").addEventListener("click", () => this.startRecording().catch((e) => this.say(e.message, true)));
    $("record-stop").addEventListener("click", () => this.stopRecording());
    $("record-capture").addEventListener("click", () => this.capture());
    this.render();
  }

  say(text, bad = false) {
    $("data-message").textContent = text;
    $("data-message").classList.toggle("reason", bad);
  }

  render() {
    const lines = describeSamples(this.state.batches, this.state.labels);
    $("samples").replaceChildren(...(lines.length ? lines : ["no samples yet"]).map((t) => li(t)));
    $("label-names").value = this.state.labels.join(", ");
    const options = this.labelNames().map((name, i) => new Option(name, String(i)));
    $("record-label").replaceChildren(...options);
  }

  labelNames() {
    if (this.state.labels.length) return this.state.labels;
    const classes = this.state.classes ?? 2;
    return Array.from({ length: classes }, (_, i) => `class ${i}`);
  }

  async setLabels(names) {
    this.state.labels = names.map((n) => n.trim()).filter(Boolean);
    await this.state.store.set("labels", this.state.labels);
    this.render();
  }

  /** The task's input shape, once an assignment has told it, for the recorder. */
  suggestShape() {
    const shape = this.state.taskShape;
    const kind = $("record-kind").value;
    if (shape && (shape.length === 2) === (kind === "motion")) $("record-shape").value = shape.join(", ");
    else $("record-shape").value = kind === "motion" ? "50, 6" : "28, 28, 1";
  }

  async loadFiles(files) {
    if (!files.length) return;
    try {
      const read = await Promise.all(
        files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })),
      );
      const { meta, batches } = await readDataFiles(read, {
        sampleShape: this.state.taskShape,
        labels: this.state.labels,
      });
      if (meta) await this.adoptMeta(meta);
      for (const b of batches) {
        if (b.labels && !this.state.labels.length) await this.setLabels(b.labels);
        await this.add({ source: b.source, kind: "file", sampleShape: b.sampleShape, x: b.x, y: b.y });
      }
      const count = batches.reduce((n, b) => n + b.y.length, 0);
      this.say(
        `loaded ${formatCount(count)} samples from ${files.map((f) => f.name).join(", ")}; they stay in this browser`,
      );
    } catch (error) {
      this.say(error.message, true);
    }
  }

  async adoptMeta(meta) {
    this.state.normalisation = meta.normalisation;
    await this.state.store.set("normalisation", meta.normalisation);
    await this.setLabels(meta.labels);
  }

  async add(batch) {
    this.state.batches.push(await this.state.store.addBatch(batch));
    this.render();
    this.changed();
  }

  async clear() {
    await this.state.store.clearBatches();
    this.state.batches = [];
    this.render();
    this.say("every sample was deleted from this browser");
  }

  readShape() {
    const shape = $("record-shape")
      .value.split(",")
      .map((s) => Number(s.trim()));
    if (!shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error("expected a sample shape like 50, 6");
    return shape;
  }

  async startRecording() {
    const shape = this.readShape();
    const kind = $("record-kind").value;
    this.session = { kind, shape, x: [], y: [] };
    if (kind === "motion") {
      if (shape.length !== 2) throw new Error("motion samples are windows: steps, channels (e.g. 50, 6)");
      await MotionRecorder.permit();
      this.motion.start(shape[0], shape[1], (window) => this.keep(window));
    } else {
      if (shape.length !== 3) throw new Error("camera samples are images: height, width, channels (e.g. 28, 28, 1)");
      $("camera").hidden = $("record-capture").hidden = false;
      await this.camera.start();
    }
    $("record-start").disabled = true;
    $("record-stop").disabled = false;
    this.say(`recording ${kind === "motion" ? "motion windows" : "pictures"} labelled ${this.labelText()}`);
  }

  labelText() {
    return $("record-label").selectedOptions[0]?.text ?? "class 0";
  }

  capture() {
    const [h, w, c] = this.session.shape;
    this.keep(this.camera.capture(h, w, c));
  }

  keep(sample) {
    const { shape } = this.session;
    this.session.x.push(normalise(sample, shape.at(-1), this.state.normalisation));
    this.session.y.push(Number($("record-label").value || 0));
    $("record-count").textContent = `${this.session.y.length} recorded`;
  }

  async stopRecording() {
    this.motion.stop();
    this.camera.stop();
    $("camera").hidden = $("record-capture").hidden = true;
    $("record-start").disabled = false;
    $("record-stop").disabled = true;
    const session = this.session;
    this.session = null;
    if (!session?.y.length) return this.say("nothing was recorded");
    const x = new Float32Array(session.x.reduce((n, s) => n + s.length, 0));
    session.x.forEach((s, i) => x.set(s, i * s.length));
    await this.add({
      source: `${session.kind} ${new Date().toLocaleString()}`,
      kind: session.kind,
      sampleShape: session.shape,
      x,
      y: Int32Array.from(session.y),
    });
    this.say(`kept ${session.y.length} recorded samples in this browser`);
  }
}

function li(text) {
  const item = document.createElement("li");
  item.textContent = text;
  return item;
}
