/**
 * Small line charts on a canvas, drawn by hand (as tfjs-vis draws them, without the library or
 * a CDN): a title, one or more series, the y range of what is shown, and the last value.
 * `limit` keeps the newest points only, so a chart of every batch stays cheap to redraw.
 */

const COLORS = ["#2f6fde", "#d9822b", "#1f9d55", "#b83280"];
const PAD = { left: 44, right: 10, bottom: 20 }; // the top holds the title and a legend line per series shown

export class LineChart {
  constructor(canvas, { title, series, limit = 400, yMin, yMax, format = (v) => v.toFixed(3) }) {
    Object.assign(this, { canvas, title, limit, yMin, yMax, format });
    this.series = series.map((name, i) => ({ name, color: COLORS[i % COLORS.length], points: [] }));
    this.draw();
  }

  /** Adds the point (x, y) to series `index` (or by name) and redraws. */
  push(index, x, y) {
    const series = typeof index === "string" ? this.series.find((s) => s.name === index) : this.series[index];
    if (!series || !Number.isFinite(y)) return;
    series.points.push([x, y]);
    if (series.points.length > this.limit) series.points.shift();
    this.draw();
  }

  clear() {
    for (const s of this.series) s.points = [];
    this.draw();
  }

  /** The x and y ranges over every series (y from the options when they fix it). */
  bounds() {
    const points = this.series.flatMap((s) => s.points);
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    let [y0, y1] = [this.yMin ?? Math.min(...ys), this.yMax ?? Math.max(...ys)];
    if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y0 + 0.5];
    return { x0: Math.min(...xs), x1: Math.max(Math.max(...xs), Math.min(...xs) + 1), y0, y1 };
  }

  draw() {
    const { canvas } = this;
    const ratio = globalThis.devicePixelRatio || 1;
    const [width, height] = [canvas.clientWidth || 320, canvas.clientHeight || 160];
    Object.assign(canvas, { width: width * ratio, height: height * ratio });
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = "#333";
    g.fillText(this.title, PAD.left, 14);
    const shown = this.series.filter((s) => s.points.length); // a series with no points takes no legend line
    if (!shown.length) {
      g.fillStyle = "#888";
      g.fillText("no data yet", PAD.left, height / 2);
      return;
    }
    const b = this.bounds();
    const top = 12 + 14 * shown.length;
    const px = (x) => PAD.left + ((x - b.x0) / (b.x1 - b.x0)) * (width - PAD.left - PAD.right);
    const py = (y) => height - PAD.bottom - ((y - b.y0) / (b.y1 - b.y0)) * (height - top - PAD.bottom);
    this.#axes(g, b, width, height, top, py);
    shown.forEach((s, i) => this.#line(g, s, px, py, width, i));
  }

  #axes(g, b, width, height, top, py) {
    g.strokeStyle = "#ccc";
    g.beginPath();
    g.moveTo(PAD.left, top);
    g.lineTo(PAD.left, height - PAD.bottom);
    g.lineTo(width - PAD.right, height - PAD.bottom);
    g.stroke();
    g.fillStyle = "#666";
    g.textAlign = "right";
    g.fillText(this.format(b.y1), PAD.left - 4, py(b.y1) + 4);
    g.fillText(this.format(b.y0), PAD.left - 4, py(b.y0));
    g.textAlign = "left";
    g.fillText(String(Math.round(b.x0)), PAD.left, height - 4);
    g.textAlign = "right";
    g.fillText(String(Math.round(b.x1)), width - PAD.right, height - 4);
    g.textAlign = "left";
  }

  #line(g, series, px, py, width, i) {
    g.strokeStyle = g.fillStyle = series.color;
    g.lineWidth = 1.5;
    g.beginPath();
    series.points.forEach(([x, y], n) => (n ? g.lineTo(px(x), py(y)) : g.moveTo(px(x), py(y))));
    g.stroke();
    const [, last] = series.points.at(-1);
    g.textAlign = "right";
    g.fillText(`${series.name} ${this.format(last)}`, width - PAD.right, 14 + 14 * i);
    g.textAlign = "left";
  }
}
