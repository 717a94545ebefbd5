/**
 * Recording samples on the device, in the layout the task's model reads (channels last):
 *
 *     motion   DeviceMotion events → steps of [ax, ay, az] (m/s², with gravity) and, for six
 *              channels, [gx, gy, gz] (rad/s) → non-overlapping windows of W steps: (W, C)
 *     camera   a video frame → centre square → H × W pixels, grey (C = 1) or RGB (C = 3), in [0, 1]
 *
 * Both then apply the data's normalisation ((raw − mean) / std per channel) when one is known
 * from a loaded meta.json, so recorded samples sit beside loaded ones. The pure parts (a
 * reading from an event, windows from readings, a sample from pixels) are exported for tests.
 */

const DEG = Math.PI / 180;

/** One step's readings from a DeviceMotionEvent: 3 (accelerometer) or 6 (and gyroscope) channels. */
export function motionReading(event, channels) {
  if (channels !== 3 && channels !== 6) {
    throw new RangeError(`motion windows have 3 or 6 channels (accelerometer, gyroscope), got ${channels}`);
  }
  const a = event.accelerationIncludingGravity ?? {};
  const reading = [a.x ?? 0, a.y ?? 0, a.z ?? 0];
  if (channels === 6) {
    const r = event.rotationRate ?? {}; // alpha: about z, beta: about x, gamma: about y (deg/s)
    reading.push((r.beta ?? 0) * DEG, (r.gamma ?? 0) * DEG, (r.alpha ?? 0) * DEG);
  }
  return reading;
}

/** Collects readings into windows of `steps` × `channels`; `push` returns a full window or null. */
export class WindowBuilder {
  constructor(steps, channels) {
    Object.assign(this, { steps, channels, window: new Float32Array(steps * channels), filled: 0 });
  }

  push(reading) {
    this.window.set(reading, this.filled * this.channels);
    this.filled += 1;
    if (this.filled < this.steps) return null;
    const full = this.window;
    this.window = new Float32Array(this.steps * this.channels);
    this.filled = 0;
    return full;
  }
}

/** A sample (H × W × C, values in [0, 1]) from RGBA pixels of an H × W image. */
export function pixelsToSample(rgba, height, width, channels) {
  if (channels !== 1 && channels !== 3) throw new RangeError(`camera samples have 1 or 3 channels, got ${channels}`);
  const out = new Float32Array(height * width * channels);
  for (let p = 0; p < height * width; p++) {
    const [r, g, b] = [rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]];
    if (channels === 1) out[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    else out.set([r / 255, g / 255, b / 255], 3 * p);
  }
  return out;
}

/** Records motion windows while started; `onWindow(Float32Array)` gets each. */
export class MotionRecorder {
  #listener = null;

  /** iOS asks the user first; elsewhere this resolves at once. */
  static async permit() {
    const ask = globalThis.DeviceMotionEvent?.requestPermission;
    if (ask && (await ask()) !== "granted") throw new Error("motion sensors: permission refused");
    if (!globalThis.DeviceMotionEvent) throw new Error("this browser has no motion sensors (DeviceMotion)");
  }

  start(steps, channels, onWindow) {
    this.stop();
    const builder = new WindowBuilder(steps, channels);
    this.#listener = (event) => {
      const window = builder.push(motionReading(event, channels));
      if (window) onWindow(window);
    };
    globalThis.addEventListener("devicemotion", this.#listener);
  }

  stop() {
    if (this.#listener) globalThis.removeEventListener("devicemotion", this.#listener);
    this.#listener = null;
  }
}

/** The camera, shown in `video`; `capture` takes one frame as a sample. */
export class CameraRecorder {
  constructor(video) {
    this.video = video;
    this.canvas = document.createElement("canvas");
  }

  async start() {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    this.video.srcObject = stream;
    await this.video.play();
  }

  capture(height, width, channels) {
    const { videoWidth: vw, videoHeight: vh } = this.video;
    const side = Math.min(vw, vh);
    Object.assign(this.canvas, { width, height });
    const context = this.canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(this.video, (vw - side) / 2, (vh - side) / 2, side, side, 0, 0, width, height);
    return pixelsToSample(context.getImageData(0, 0, width, height).data, height, width, channels);
  }

  stop() {
    for (const track of this.video.srcObject?.getTracks() ?? []) track.stop();
    this.video.srcObject = null;
  }
}
