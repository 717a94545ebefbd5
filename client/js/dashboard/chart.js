/**
 * A small line chart in SVG: one or more series of [x, y] points (x the committed version),
 * with y ticks, x ticks, a line and a dot per point (hover it for the value).
 *
 * Hand-written on purpose: the dashboard loads nothing but its own files.
 */

import { h, svg } from "./dom.js";

const WIDTH = 360;
const HEIGHT = 180;
const MARGIN = { left: 46, right: 12, top: 26, bottom: 24 };
const TICKS = 4;

/**
 * @param {{title: string, series: {name: string, points: number[][]}[], digits?: number}} chart
 * @returns {Element} a figure holding the SVG, or a placeholder when no series has a point yet
 */
export function lineChart({ title, series, digits = 3 }) {
  const drawn = series
    .map((s, index) => ({ ...s, index, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }))
    .filter((s) => s.points.length > 0);
  if (drawn.length === 0) {
    const caption = h("figcaption", {}, title);
    return h("figure", { class: "chart empty", "data-chart": title }, caption, h("p", {}, "no committed version yet"));
  }
  const all = drawn.flatMap((s) => s.points);
  const x = scale(extent(all.map((p) => p[0]), 1), [MARGIN.left, WIDTH - MARGIN.right], true);
  const y = scale(extent(all.map((p) => p[1]), 0), [HEIGHT - MARGIN.bottom, MARGIN.top], false);
  const picture = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title },
    axes(x, y, digits),
    drawn.map((s) => line(s, x, y, digits)),
    legend(drawn),
  );
  return h("figure", { class: "chart", "data-chart": title }, h("figcaption", {}, title), picture);
}

/** [low, high] of the values, widened when they are all equal so that the scale has a span. */
function extent(values, minimumSpan) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < 1e-12) {
    const pad = Math.max(minimumSpan / 2, Math.abs(low) * 0.1, 1e-6);
    low -= pad;
    high += pad;
  }
  return [low, high];
}

/** A linear map from a domain rounded out to nice ticks onto a pixel range. */
function scale([low, high], [from, to], integers) {
  const step = Math.max(niceStep((high - low) / TICKS), integers ? 1 : 0);
  const start = Math.floor(low / step) * step;
  const end = Math.ceil(high / step) * step;
  const map = (value) => from + ((value - start) / (end - start)) * (to - from);
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  map.ticks = ticks;
  return map;
}

/** 1, 2 or 5 times a power of ten, at least ``raw``. */
function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

function axes(x, y, digits) {
  const [left, right] = [MARGIN.left, WIDTH - MARGIN.right];
  const [top, bottom] = [MARGIN.top, HEIGHT - MARGIN.bottom];
  const yTicks = y.ticks.map((v) => [
    svg("line", { class: "grid", x1: left, x2: right, y1: y(v), y2: y(v) }),
    svg("text", { class: "tick", x: left - 4, y: y(v) + 3, "text-anchor": "end" }, label(v, digits)),
  ]);
  const xTicks = thin(x.ticks, 8).map((v) =>
    svg("text", { class: "tick", x: x(v), y: bottom + 14, "text-anchor": "middle" }, String(v)),
  );
  const frame = svg("path", { class: "axis", d: `M${left},${top}V${bottom}H${right}` });
  return [yTicks, xTicks, frame];
}

/** At most ``count`` of the ticks, evenly spread. */
function thin(ticks, count) {
  const every = Math.ceil(ticks.length / count);
  return ticks.filter((_, i) => i % every === 0);
}

function label(value, digits) {
  return Math.abs(value) >= 1000 ? value.toExponential(1) : Number(value.toPrecision(digits)).toString();
}

function line(series, x, y, digits) {
  const points = series.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`);
  const dots = series.points.map(([px, py]) =>
    svg("circle", { class: "point", cx: x(px).toFixed(1), cy: y(py).toFixed(1), r: 2.8 },
      svg("title", {}, `${series.name}, version ${px}: ${label(py, digits + 1)}`)),
  );
  return svg("g", { class: `series series-${series.index}`, "data-series": series.name },
    svg("polyline", { points: points.join(" ") }), dots);
}

function legend(series) {
  return series.map((s, i) =>
    svg("text", { class: `legend series-${s.index}`, x: WIDTH - MARGIN.right, y: 12 + i * 12, "text-anchor": "end" },
      s.name),
  );
}
