// The explorer's charts: the log's tree size over time and a workflow's outputs, with
// uPlot (MIT). Built into ../static/charts.js by tools/build_frontend.py (esbuild, pinned
// with uPlot in package-lock.json); the page loads the built file, never a CDN.
//
// A chart is a <figure class="chart" data-chart="ID"> beside a data block
// <script type="application/json" id="ID">, which the page's CSP lets through because a
// JSON block is never executed: {"x": [unix seconds...], "series": [{"label", "values"}],
// "marks": [indices of x to mark, e.g. alerts]}, and optionally "time": false when x is
// a plain number (the log's checkpoints carry no time, so its chart counts them), with
// "xlabel" and "ylabel" naming the axes. Values come from the server already escaped by
// Jinja's tojson; here they are parsed, never evaluated or put into HTML (uPlot sets
// axis labels as text).
import uPlot from "uplot";

const MAX_POINTS = 10000; // a page never draws more: the server caps what it sends too

function readData(id) {
  const block = document.getElementById(id);
  if (!block || block.type !== "application/json") return null;
  let data;
  try {
    data = JSON.parse(block.textContent);
  } catch {
    return null;
  }
  const x = Array.isArray(data.x) ? data.x.slice(0, MAX_POINTS).map(Number) : [];
  const series = (Array.isArray(data.series) ? data.series : []).map((s) => ({
    label: String(s.label ?? ""),
    values: (Array.isArray(s.values) ? s.values : []).slice(0, x.length).map((v) =>
      v === null || v === undefined ? null : Number(v),
    ),
  }));
  const marks = new Set((Array.isArray(data.marks) ? data.marks : []).map(Number));
  const label = (v) => (typeof v === "string" ? v.slice(0, 80) : "");
  return {
    x,
    series,
    marks,
    time: data.time !== false,
    xlabel: label(data.xlabel),
    ylabel: label(data.ylabel),
  };
}

function options(figure, data) {
  const width = Math.max(240, Math.min(figure.clientWidth || 640, 960));
  const series = [{}];
  for (const s of data.series) series.push({ label: s.label, stroke: "#2a6fdb", width: 2 });
  if (data.marks.size) {
    series.push({
      label: figure.dataset.marks || "marked",
      stroke: "#c0392b",
      width: 0,
      points: { show: true, size: 9, fill: "#c0392b" },
    });
  }
  const opts = { width, height: 240, series, scales: { x: { time: data.time } } };
  if (data.xlabel || data.ylabel) {
    opts.axes = [
      data.xlabel ? { label: data.xlabel } : {},
      data.ylabel ? { label: data.ylabel } : {},
    ];
  }
  return opts;
}

function columns(data) {
  const cols = [data.x, ...data.series.map((s) => s.values)];
  if (data.marks.size && data.series.length) {
    const first = data.series[0].values;
    cols.push(data.x.map((_, i) => (data.marks.has(i) ? first[i] : null)));
  }
  return cols;
}

export function drawCharts(root = document) {
  const drawn = [];
  for (const figure of root.querySelectorAll("figure.chart[data-chart]")) {
    const data = readData(figure.dataset.chart);
    if (!data || data.x.length === 0) continue;
    const plot = new uPlot(options(figure, data), columns(data), figure);
    figure.classList.add("drawn");
    drawn.push(plot);
  }
  return drawn;
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => drawCharts());
  } else {
    drawCharts();
  }
}
