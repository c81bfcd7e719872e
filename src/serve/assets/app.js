// lenet serve: one page, five views chosen by the address's #fragment:
//   #/                the runs and sweeps   #/run/NAME   one run (a sweep's trial: SWEEP/TRIAL)
//   #/compare/A,B     runs compared         #/draw/NAME  draw for a run's model
//   #/sweep/NAME      a sweep's trials ranked, the metric against each parameter, the best curves
// Everything comes from the JSON API under /api (docs/serve.md, "The API"); layers.js draws
// what the model sees.
"use strict";

const main = document.getElementById("main");
let timer = null; // the current view's refresh, cancelled when the view changes

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
};

// A server started with --token prints its address with ?token=; every API request carries it.
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => (token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path);

async function api(path, options) {
  const response = await fetch(withToken(path), options);
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

const percent = (x, digits = 2) => (x === null || x === undefined ? "–" : (100 * x).toFixed(digits) + "%");
const thousands = (n) => n.toLocaleString("en-US");
const runLink = (name) => "#/run/" + encodeURIComponent(name);
const badge = (state) => el("span", { class: "badge " + state }, state);
const showError = (error) => main.replaceChildren(el("p", { class: "error" }, String(error.message || error)));

function route() {
  clearInterval(timer);
  timer = null;
  // A trial's run is SWEEP%2FTRIAL, or SWEEP/TRIAL when typed: the rest of the address is the name.
  const [view, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const arg = rest.join("/");
  const name = arg ? decodeURIComponent(arg) : "";
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.nav === (view || "runs"));
  }
  const views = { "": runsView, run: runView, compare: compareView, draw: drawView, sweep: sweepView };
  (views[view] || runsView)(name).catch(showError);
}
window.addEventListener("hashchange", route);

// ---- runs -----------------------------------------------------------------------------------

async function runsView() {
  const selected = new Set();
  const compare = el("button", {
    id: "compare-selected",
    onclick: () => (location.hash = "#/compare/" + [...selected].map(encodeURIComponent).join(",")),
  }, "Compare selected");
  const body = el("tbody");
  const table = el("table", { id: "runs-table" },
    el("thead", {}, el("tr", {}, ["", "run", "config", "variant", "dataset", "backend", "epochs",
      "test accuracy", "started", "state"].map((h) => el("th", { class: h === "epochs" || h === "test accuracy" ? "num" : "" }, h)))),
    body);
  const note = el("p", { class: "muted" });
  const sweeps = el("div", { id: "sweeps" });
  main.replaceChildren(el("h1", {}, "Runs"), table, el("p", {}, compare), note, sweeps);
  const refresh = async () => {
    // The runs show even when the sweeps cannot be read.
    const [runs, sweepList] = await Promise.all([api("/api/runs"), api("/api/sweeps").catch(() => [])]);
    sweeps.replaceChildren(...(sweepList.length ? [el("h2", {}, "Sweeps"), sweepsTable(sweepList)] : []));
    // Only sweeps here: no empty table of runs, nothing to compare.
    table.hidden = compare.hidden = !runs.length && sweepList.length > 0;
    note.textContent = runs.length ? "Updates by itself while a run trains."
      : sweepList.length ? "No runs outside the sweeps below." : "No runs yet: train one with `lenet --config configs/smoke.json`.";
    body.replaceChildren(...runs.map((run) => {
      const box = el("input", { type: "checkbox", onchange: (e) => (e.target.checked ? selected.add(run.name) : selected.delete(run.name)) });
      box.checked = selected.has(run.name);
      return el("tr", { "data-run": run.name, "data-state": run.state },
        el("td", {}, box),
        el("td", {}, el("a", { href: runLink(run.name) }, run.name)),
        el("td", {}, run.config || "–"),
        el("td", {}, run.variant || "–"),
        el("td", {}, run.dataset || "–"),
        el("td", {}, run.backend || "–"),
        el("td", { class: "num" }, `${run.epochs_done} / ${run.epochs_planned ?? "?"}`),
        el("td", { class: "num" }, percent(run.test_accuracy)),
        el("td", {}, run.started ? run.started.replace("T", " ").replace("Z", " UTC") : "–"),
        el("td", { title: run.message || "" }, badge(run.state)));
    }));
  };
  await refresh();
  timer = setInterval(() => refresh().catch(() => {}), 2000);
}

const sweepLink = (name) => "#/sweep/" + encodeURIComponent(name);
const trialRun = (sweep, trial) => `${sweep}/${trial.name}`;
// A sweep metric's value: accuracies in percent, losses to four places.
const metricFormat = (metric) => (metric.endsWith("accuracy") ? (y) => percent(y) : (y) => y.toFixed(4));
const plain = (value) => (typeof value === "string" ? value : JSON.stringify(value));
// A value as a table or an axis shows it: numbers to three significant digits.
const short = (value) => {
  if (typeof value !== "number") return plain(value);
  const rounded = +value.toPrecision(3);
  // As `lenet sweep report` writes it: the shorter of 0.00972 and 9.72e-3.
  const [fixed, exponent] = [String(rounded), rounded.toExponential(2)];
  return fixed.length <= exponent.length ? fixed : exponent;
};

function sweepsTable(sweeps) {
  return el("table", { id: "sweeps-table" },
    el("thead", {}, el("tr", {}, ["sweep", "trials", "ranked by", "best trial", "its metric", "its test accuracy"]
      .map((h) => el("th", { class: h.startsWith("its") ? "num" : "" }, h)))),
    el("tbody", {}, sweeps.map((sweep) => {
      const best = sweep.trials.find((t) => t.state === "finished" && t.metric !== null);
      const format = metricFormat(sweep.metric);
      const states = {};
      for (const t of sweep.trials) states[t.state] = (states[t.state] || 0) + 1;
      return el("tr", { "data-sweep": sweep.sweep },
        el("td", {}, el("a", { href: sweepLink(sweep.sweep) }, sweep.sweep)),
        el("td", {}, `${sweep.trials.length}: ` + Object.entries(states).map(([s, n]) => `${n} ${s}`).join(", ")),
        el("td", {}, `${sweep.metric} (${sweep.goal})`),
        el("td", {}, best ? el("a", { href: runLink(trialRun(sweep.sweep, best)) }, best.name) : "–"),
        el("td", { class: "num" }, best ? format(best.metric) : "–"),
        el("td", { class: "num" }, best ? percent(best.test_accuracy) : "–"));
    })));
}

// ---- charts ---------------------------------------------------------------------------------

const COLORS = ["#2f6fde", "#e0672c", "#15803d", "#9333ea", "#c2410c", "#0891b2", "#be185d", "#4d7c0f"];
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
};

// Five grid lines across a chart from y0 to y1 (Y places a value), each labelled on the left.
function yGrid(root, Y, y0, y1, left, right, format) {
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    root.append(svg("line", { x1: left, x2: right, y1: Y(y), y2: Y(y), class: "grid" }));
    root.append(svg("text", { x: left - 6, y: Y(y) + 4, "text-anchor": "end" }, format(y)));
  }
}

// A line chart of `series` ({name, points: [[epoch, value]]}) with a dot per point whose
// tooltip gives the value.
function lineChart(title, series, format) {
  const [width, height, left, right, top, bottom] = [540, 270, 58, 120, 28, 34];
  const points = series.flatMap((s) => s.points);
  const root = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, "data-title": title });
  root.append(svg("text", { x: left, y: 18, class: "title" }, title));
  if (!points.length) {
    root.append(svg("text", { x: left, y: height / 2 }, "no epoch finished yet"));
    return root;
  }
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.05, y1 + Math.abs(y1 || 1) * 0.05];
  const pad = (y1 - y0) * 0.06;
  [y0, y1] = [y0 - pad, y1 + pad];
  const X = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const Y = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
  yGrid(root, Y, y0, y1, left, width - right, format);
  const step = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let x = Math.ceil(x0); x <= x1; x += step) {
    root.append(svg("text", { x: X(x), y: height - bottom + 16, "text-anchor": "middle" }, String(x)));
  }
  root.append(svg("text", { x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle" }, "epoch"));
  root.append(svg("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }));
  root.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }));
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    if (!s.points.length) return;
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: "series", stroke: color, "data-series": s.name }));
    for (const [x, y] of s.points) {
      const dot = svg("circle", { cx: X(x), cy: Y(y), r: 3.5, fill: color });
      dot.append(svg("title", {}, `${s.name}, epoch ${x}: ${format(y)}`));
      root.append(dot);
    }
    root.append(svg("rect", { x: width - right + 10, y: top + 18 * i, width: 10, height: 10, fill: color }));
    root.append(svg("text", { x: width - right + 24, y: top + 9 + 18 * i }, s.name));
  });
  return root;
}

const seriesOf = (history, key) =>
  history.filter((e) => e[key] !== null && e[key] !== undefined && isFinite(e[key])).map((e) => [e.epoch, e[key]]);

function curves(history) {
  return el("div", { class: "charts" },
    lineChart("Loss", [
      { name: "train", points: seriesOf(history, "train_loss") },
      { name: "valid", points: seriesOf(history, "valid_loss") },
    ], (y) => y.toFixed(3)),
    lineChart("Accuracy", [
      { name: "train", points: seriesOf(history, "train_accuracy") },
      { name: "valid", points: seriesOf(history, "valid_accuracy") },
    ], (y) => percent(y, 1)));
}

// A point per trial of the metric (y) against one parameter's value (x): numbers on a linear
// or logarithmic axis, other values as categories. A point links to its trial's run.
function scatterChart(title, key, trials, format, log) {
  const [width, height, left, right, top, bottom] = [400, 270, 62, 16, 28, 40];
  const root = svg("svg", { class: "chart scatter", width, height, viewBox: `0 0 ${width} ${height}`, "data-title": title });
  root.append(svg("text", { x: left, y: 18, class: "title" }, title));
  const points = trials.filter((t) => t.metric !== null && t.parameters[key] !== undefined);
  if (!points.length) {
    root.append(svg("text", { x: left, y: height / 2 }, "no trial has a figure yet"));
    return root;
  }
  const numeric = points.every((t) => typeof t.parameters[key] === "number");
  const categories = numeric ? [] : [...new Set(points.map((t) => plain(t.parameters[key])))];
  // Drawn log-uniformly, or spanning more than a factor of 20: a logarithmic axis.
  const positive = numeric && points.every((t) => t.parameters[key] > 0);
  const span = positive ? Math.max(...points.map((t) => t.parameters[key])) / Math.min(...points.map((t) => t.parameters[key])) : 1;
  const logAxis = positive && (log || span >= 20);
  const xOf = (t) => (numeric ? (logAxis ? Math.log10(t.parameters[key]) : t.parameters[key]) : categories.indexOf(plain(t.parameters[key])));
  const xs = points.map(xOf);
  const ys = points.map((t) => t.metric);
  let [x0, x1] = numeric ? [Math.min(...xs), Math.max(...xs)] : [-0.5, categories.length - 0.5];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.05, y1 + Math.abs(y1 || 1) * 0.05];
  const [padX, padY] = [numeric ? (x1 - x0) * 0.06 : 0, (y1 - y0) * 0.08];
  [x0, x1, y0, y1] = [x0 - padX, x1 + padX, y0 - padY, y1 + padY];
  // An accuracy's axis ends at 100%.
  if (title.includes("accuracy") && ys.every((y) => y <= 1)) y1 = Math.min(y1, 1);
  const X = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const Y = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
  yGrid(root, Y, y0, y1, left, width - right, format);
  // A tick at each value the trials took, where it does not crowd the one before.
  const ticks = numeric ? [...new Set(points.map((t) => t.parameters[key]))].sort((a, b) => a - b) : categories;
  let lastTick = -Infinity;
  for (const tick of ticks) {
    const x = X(numeric ? (logAxis ? Math.log10(tick) : tick) : categories.indexOf(tick));
    if (x - lastTick < 64) continue;
    lastTick = x;
    root.append(svg("text", { x, y: height - bottom + 16, "text-anchor": "middle" }, numeric ? short(tick) : tick));
  }
  root.append(svg("text", { x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle" }, key + (logAxis ? " (log scale)" : "")));
  root.append(svg("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }));
  root.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }));
  points.forEach((t, i) => {
    const link = document.createElementNS(SVG, "a");
    link.setAttribute("href", t.href);
    const dot = svg("circle", { cx: X(xs[i]), cy: Y(ys[i]), r: 5, class: "trial " + t.state });
    dot.append(svg("title", {}, `trial ${t.number}: ${format(t.metric)} (${t.state})`));
    link.append(dot);
    root.append(link);
  });
  return root;
}

// Parallel coordinates: an axis per varied parameter and one for the metric, a line per trial
// through its values, the better trials darker.
function parallelChart(keys, trials, metric, format, logKeys) {
  const axes = [...keys, metric];
  const [width, height, left, right, top, bottom] = [Math.max(540, 170 * axes.length), 300, 60, 60, 36, 46];
  const root = svg("svg", { class: "chart parallel", width, height, viewBox: `0 0 ${width} ${height}`, "data-title": "Parallel coordinates" });
  root.append(svg("text", { x: 12, y: 18, class: "title" }, "Parallel coordinates: every trial through its values"));
  const shown = trials.filter((t) => t.metric !== null);
  if (!shown.length) {
    root.append(svg("text", { x: left, y: height / 2 }, "no trial has a figure yet"));
    return root;
  }
  const valueOf = (t, axis) => (axis === metric ? t.metric : t.parameters[axis]);
  const scales = axes.map((axis) => {
    const values = shown.map((t) => valueOf(t, axis));
    if (values.every((v) => typeof v === "number")) {
      const log = logKeys.includes(axis) && values.every((v) => v > 0);
      const f = log ? Math.log10 : (v) => v;
      const [a, b] = [Math.min(...values.map(f)), Math.max(...values.map(f))];
      const position = (v) => (a === b ? 0.5 : (f(v) - a) / (b - a));
      const label = axis === metric ? format : short;
      return { position, low: label(Math.min(...values)), high: label(Math.max(...values)) };
    }
    const categories = [...new Set(values.map(plain))];
    return { position: (v) => (categories.length === 1 ? 0.5 : categories.indexOf(plain(v)) / (categories.length - 1)),
      low: categories[0], high: categories[categories.length - 1] };
  });
  const X = (i) => left + (i * (width - left - right)) / (axes.length - 1);
  const Y = (p) => height - bottom - p * (height - top - bottom);
  axes.forEach((axis, i) => {
    root.append(svg("line", { x1: X(i), x2: X(i), y1: top, y2: height - bottom, class: "axis" }));
    root.append(svg("text", { x: X(i), y: height - bottom + 30, "text-anchor": "middle", class: axis === metric ? "title" : "" }, axis));
    root.append(svg("text", { x: X(i), y: height - bottom + 14, "text-anchor": "middle" }, String(scales[i].low ?? "")));
    root.append(svg("text", { x: X(i), y: top - 6, "text-anchor": "middle" }, String(scales[i].high ?? "")));
  });
  shown.forEach((t, rank) => {
    const d = axes.map((axis, i) => `${i ? "L" : "M"}${X(i).toFixed(1)},${Y(scales[i].position(valueOf(t, axis))).toFixed(1)}`).join("");
    const shade = shown.length === 1 ? 1 : 1 - rank / (shown.length - 1);
    const line = svg("path", { d, class: "trial-line", stroke: `rgba(47,111,222,${0.15 + 0.85 * shade})` });
    line.append(svg("title", {}, `trial ${t.number}: ${format(t.metric)}`));
    root.append(line);
  });
  return root;
}

// ---- one sweep ------------------------------------------------------------------------------

async function sweepView(name) {
  const head = el("div");
  const ranking = el("div");
  const charts = el("div", { class: "charts", id: "sweep-charts" });
  const parallel = el("div", { id: "sweep-parallel" });
  const best = el("div", { class: "charts", id: "sweep-curves" });
  main.replaceChildren(head, ranking, el("h2", {}, "The metric against each parameter"), charts, parallel,
    el("h2", {}, "The best trials, epoch by epoch"), best);
  const refresh = async () => {
    const sweep = await api("/api/sweeps/" + encodeURIComponent(name));
    const format = metricFormat(sweep.metric);
    const states = {};
    for (const t of sweep.trials) states[t.state] = (states[t.state] || 0) + 1;
    head.replaceChildren(
      el("h1", {}, "Sweep ", sweep.sweep),
      el("p", { class: "muted" }, `${sweep.trials.length} trials (${sweep.method}` +
        (sweep.varied.length ? ` over ${sweep.varied.join(", ")}` : "") + `), ranked by ${sweep.metric} (${sweep.goal}): ` +
        Object.entries(states).map(([s, n]) => `${n} ${s}`).join(", ") + "."));
    const trials = sweep.trials.map((t) => ({ ...t, href: runLink(trialRun(sweep.sweep, t)) }));
    ranking.replaceChildren(el("table", { id: "sweep-ranking" },
      el("thead", {}, el("tr", {}, ["rank", "trial", ...sweep.varied, sweep.metric, "test accuracy", "epochs", "state"]
        .map((h) => el("th", { class: h === "state" ? "" : "num" }, h)))),
      el("tbody", {}, trials.map((t, i) => el("tr", { "data-trial": t.name, "data-state": t.state },
        el("td", { class: "num" }, t.metric === null ? "–" : String(i + 1)),
        el("td", { class: "num" }, el("a", { href: t.href, title: t.name }, String(t.number))),
        sweep.varied.map((k) => el("td", { class: "num", title: plain(t.parameters[k]) }, t.parameters[k] === undefined ? "–" : short(t.parameters[k]))),
        el("td", { class: "num" }, t.metric === null ? "–" : format(t.metric)),
        el("td", { class: "num" }, percent(t.test_accuracy)),
        el("td", { class: "num" }, `${t.epochs_done} / ${t.epochs_planned ?? "?"}`),
        el("td", { title: t.stopped_by || t.message || "" }, badge(t.state)))))));
    charts.replaceChildren(...(sweep.varied.length
      ? [...sweep.varied.map((k) => scatterChart(`${sweep.metric} by ${k}`, k, trials, format, sweep.log_scale.includes(k))),
        el("p", { class: "muted legend" }, "A point per trial (click for its run): ", el("span", { class: "dot finished" }), " finished, ",
          el("span", { class: "dot terminated" }, ""), " ended early by hyperband, ", el("span", { class: "dot training" }), " not done.")]
      : [el("p", { class: "muted" }, "No parameter varies between the trials.")]));
    parallel.replaceChildren(...(sweep.varied.length > 2 ? [parallelChart(sweep.varied, trials, sweep.metric, format, sweep.log_scale)] : []));
    // The metric per epoch when every epoch records it; else the validation accuracy.
    const key = sweep.metric.startsWith("test_") ? "valid_accuracy" : sweep.metric;
    const top = trials.filter((t) => t.history && t.history.length).slice(0, 5);
    best.replaceChildren(lineChart(`${key}, the ${top.length} best trials`,
      top.map((t, i) => ({ name: `trial ${t.number}`, color: COLORS[i % COLORS.length], points: seriesOf(t.history, key) })),
      metricFormat(key)));
    return sweep.trials.some((t) => t.state === "training" || t.state === "pending");
  };
  if (await refresh()) {
    timer = setInterval(() => refresh().then((going) => going || clearInterval(timer)).catch(() => {}), 3000);
  }
}

// ---- one run --------------------------------------------------------------------------------

async function runView(name) {
  const head = el("div");
  const charts = el("div");
  const evaluation = el("div", { id: "evaluation" });
  const config = el("pre", { id: "config" });
  const filtersBox = el("div", { id: "filters" });
  main.replaceChildren(head, charts, el("h2", {}, "Evaluation on the test set"), evaluation,
    el("h2", {}, "Learned filters"), filtersBox, el("h2", {}, "Config"), config);
  let evaluated = false;
  const refresh = async () => {
    const run = await api("/api/runs/" + encodeURIComponent(name));
    head.replaceChildren(
      el("h1", {}, name, " ", badge(run.state),
        ...(run.message && run.message.startsWith("stopped early") ? [" ", badge("ended early")] : [])),
      // A sweep's trial (SWEEP/TRIAL) links back to its sweep.
      ...(name.includes("/") ? [el("p", {}, "A trial of the sweep ", el("a", { href: sweepLink(name.split("/")[0]) }, name.split("/")[0]))] : []),
      el("p", { class: "muted" },
        `${run.config || "?"} · ${run.variant || "?"} · ${run.dataset || "?"} · ${run.backend || "?"} · ` +
          `${run.epochs_done} of ${run.epochs_planned ?? "?"} epochs · test accuracy ${percent(run.test_accuracy)} · `,
        el("a", { href: "#/draw/" + encodeURIComponent(name) }, "draw for this model")),
      ...(run.message ? [el("p", { class: run.state === "failed" ? "error" : "muted" }, run.message)] : []));
    charts.replaceChildren(curves(run.history));
    config.textContent = JSON.stringify(run.config_values, null, 2);
    if (run.state === "finished" && !evaluated) {
      evaluated = true;
      evaluation.replaceChildren(el("p", { class: "muted" }, "Evaluating on the test set (as `lenet eval` does)…"));
      showEvaluation(name, evaluation).catch((e) => evaluation.replaceChildren(el("p", { class: "error" }, e.message)));
      showFilters(name, filtersBox).catch((e) => filtersBox.replaceChildren(el("p", { class: "error" }, e.message)));
    } else if (run.state !== "finished") {
      evaluation.replaceChildren(el("p", { class: "muted" }, `The run is ${run.state}; its evaluation comes when it has finished.`));
      filtersBox.replaceChildren(el("p", { class: "muted" }, "Its filters come when it has finished."));
    }
    return run.state;
  };
  if ((await refresh()) === "training") {
    timer = setInterval(() => refresh().then((state) => state !== "training" && clearInterval(timer)).catch(() => {}), 2000);
  }
}

const testImage = (name, answer, names) =>
  el("figure", { "data-index": answer.index },
    el("img", { src: withToken(`/api/runs/${encodeURIComponent(name)}/test-images/${answer.index}`), alt: `test image ${answer.index}` }),
    `${names[answer.label]} → ${names[answer.predicted]} (${percent(answer.probability, 0)})`);

async function showEvaluation(name, target) {
  const { report, mistakes } = await api(`/api/runs/${encodeURIComponent(name)}/eval`);
  const classes = report.classes.map((c) => c.name);
  const perClass = el("table", { id: "per-class" },
    el("thead", {}, el("tr", {}, ["class", "images", "precision", "recall"].map((h) => el("th", { class: "num" }, h)))),
    el("tbody", {}, report.classes.map((c) =>
      el("tr", {}, el("td", { class: "num" }, c.name), el("td", { class: "num" }, String(c.support)),
        el("td", { class: "num" }, percent(c.precision)), el("td", { class: "num" }, percent(c.recall))))));
  const cellImages = el("div", { id: "cell-images", class: "images" });
  const cellTitle = el("p", { class: "muted" }, "Click a cell of the matrix to see its test images.");
  const max = Math.max(...report.confusion.flat().filter((_, i) => i % (classes.length + 1) !== 0), 1);
  const matrix = el("table", { id: "confusion", class: classes.length > 12 ? "compact" : "" },
    el("thead", {}, el("tr", {}, el("th", {}, "true \\ predicted"), classes.map((c) => el("th", { class: "num" }, String(c))))),
    el("tbody", {}, report.confusion.map((row, label) =>
      el("tr", {}, el("th", {}, classes[label]), row.map((count, predicted) => {
        const shade = label === predicted ? "rgba(21,128,61,0.18)" : `rgba(194,65,12,${(0.6 * count) / max})`;
        const cell = el("td", {
          class: "cell" + (count ? "" : " zero"), "data-label": label, "data-predicted": predicted,
          style: `background:${count ? shade : "transparent"}`,
          title: `${count} test images of ${classes[label]} answered ${classes[predicted]}`,
        }, String(count));
        if (count) {
          cell.addEventListener("click", async () => {
            for (const c of matrix.querySelectorAll(".selected")) c.classList.remove("selected");
            cell.classList.add("selected");
            const images = await api(`/api/runs/${encodeURIComponent(name)}/eval/cell?label=${label}&predicted=${predicted}`);
            cellTitle.textContent = `${count} test images of ${classes[label]} answered ${classes[predicted]}` + (images.length < count ? ` (the ${images.length} the model was surest of)` : "");
            cellImages.replaceChildren(...images.map((a) => testImage(name, a, classes)));
          });
        }
        return cell;
      })))));
  target.replaceChildren(
    el("p", {}, `${thousands(report.correct)} of ${thousands(report.images)} test images right: ${percent(report.accuracy)}, loss ${report.loss.toFixed(4)}.`),
    el("div", { class: "row" }, el("div", { class: "matrix" }, el("h2", {}, "Confusion matrix"), matrix), el("div", {}, el("h2", {}, "Per class"), perClass)),
    cellTitle, cellImages,
    el("h2", {}, "The mistakes it was surest of"),
    el("div", { class: "images", id: "mistakes" }, mistakes.map((a) => testImage(name, a, classes))));
}

// ---- compare --------------------------------------------------------------------------------

function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

async function compareView(arg) {
  const names = arg ? arg.split(",").map(decodeURIComponent).filter(Boolean) : [];
  if (names.length < 2) {
    const runs = await api("/api/runs");
    const chosen = new Set(names);
    const list = el("div", {}, runs.map((run) => el("label", { style: "display:block" },
      el("input", { type: "checkbox", onchange: (e) => (e.target.checked ? chosen.add(run.name) : chosen.delete(run.name)) }), " ", run.name)));
    main.replaceChildren(el("h1", {}, "Compare runs"), el("p", { class: "muted" }, "Pick two or more."), list,
      el("p", {}, el("button", { onclick: () => (location.hash = "#/compare/" + [...chosen].map(encodeURIComponent).join(",")) }, "Compare")));
    return;
  }
  const runs = await Promise.all(names.map((n) => api("/api/runs/" + encodeURIComponent(n))));
  const series = (key) => runs.map((run, i) => ({ name: run.name, color: COLORS[i % COLORS.length], points: seriesOf(run.history, key) }));
  const flat = runs.map((run) => flatten(run.config_values || {}));
  const keys = [...new Set(flat.flatMap(Object.keys))].sort().filter((k) => new Set(flat.map((f) => f[k])).size > 1);
  const row = (label, cells) => el("tr", {}, el("th", {}, label), cells.map((c) => el("td", {}, c)));
  main.replaceChildren(
    el("h1", {}, "Compare: ", names.join(", ")),
    el("div", { class: "charts" },
      lineChart("Validation accuracy", series("valid_accuracy"), (y) => percent(y, 1)),
      lineChart("Validation loss", series("valid_loss"), (y) => y.toFixed(3)),
      lineChart("Training loss", series("train_loss"), (y) => y.toFixed(3))),
    el("h2", {}, "Results, and the config keys that differ"),
    el("table", { id: "differences" },
      el("thead", {}, el("tr", {}, el("th", {}, ""), runs.map((r) => el("th", {}, el("a", { href: runLink(r.name) }, r.name))))),
      el("tbody", {},
        row("test accuracy", runs.map((r) => percent(r.test_accuracy))),
        row("epochs", runs.map((r) => `${r.epochs_done} / ${r.epochs_planned ?? "?"}`)),
        row("state", runs.map((r) => r.state)),
        keys.map((k) => row(k, flat.map((f) => f[k] ?? "–"))))),
    keys.length ? null : el("p", { class: "muted" }, "Their configs are the same."));
}

// ---- draw -----------------------------------------------------------------------------------

// With no run named, the page opens on the model likeliest to read a drawing right: the
// finished MNIST run of the highest test accuracy (any finished run's when none is MNIST's).
function bestForDrawing(finished) {
  const digits = finished.filter((r) => r.dataset === "MNIST");
  return (digits.length ? digits : finished)
    .reduce((best, r) => ((r.test_accuracy ?? 0) > (best.test_accuracy ?? 0) ? r : best));
}

async function drawView(name) {
  const finished = (await api("/api/runs")).filter((r) => r.state === "finished");
  // A sweep's trial (SWEEP/TRIAL) is not among the runs listed: offered when named.
  if (name && !finished.some((r) => r.name === name)) {
    const named = await api("/api/runs/" + encodeURIComponent(name)).catch(() => null);
    if (named && named.state === "finished") finished.unshift({ ...named, name });
  }
  if (!finished.length) {
    main.replaceChildren(el("h1", {}, "Draw"), el("p", { class: "muted" }, "No finished run yet: train one first."));
    return;
  }
  const current = finished.some((r) => r.name === name) ? name : bestForDrawing(finished).name;
  const select = el("select", { id: "model", onchange: () => { location.hash = "#/draw/" + encodeURIComponent(select.value); } },
    finished.map((r) => el("option", { value: r.name }, `${r.name} (${percent(r.test_accuracy)})`)));
  select.value = current;
  const pad = el("canvas", { id: "pad", width: 280, height: 280 });
  const seen = el("canvas", { id: "seen", width: 28, height: 28 });
  const answer = el("div", { id: "answer", "data-state": "empty" });
  const bars = el("div", { class: "bars", id: "bars" });
  const warnings = el("div", { class: "warnings", id: "warnings" });
  const upload = el("input", { type: "file", id: "upload", accept: "image/*" });
  const saliency = el("div", { id: "saliency-box" });
  const layers = el("div", { id: "layers" });
  const context = pad.getContext("2d");
  let pending = null;
  let sent = 0;
  const clear = () => {
    // An answer still on its way is for the drawing just cleared: it is dropped when it comes.
    sent += 1;
    clearTimeout(pending);
    pending = null;
    context.fillStyle = "#fff";
    context.fillRect(0, 0, pad.width, pad.height);
    answer.textContent = "";
    answer.dataset.state = "empty";
    bars.replaceChildren();
    warnings.replaceChildren();
    seen.getContext("2d").clearRect(0, 0, 28, 28);
    saliency.replaceChildren();
    layers.replaceChildren(el("p", { class: "muted" }, "Draw, and every layer's maps appear here."));
  };
  main.replaceChildren(
    el("h1", {}, "Draw"),
    el("p", {}, "Model: ", select, "  ", el("button", { id: "clear", onclick: clear }, "Clear"), "  or upload an image: ", upload),
    el("div", { class: "row" },
      pad,
      el("div", {}, el("p", { class: "muted" }, "The model says"), answer, warnings, el("p", { class: "muted" }, "What it saw (28x28)"), seen),
      el("div", {}, el("p", { class: "muted" }, "Probability of each class"), bars),
      el("div", {}, el("p", { class: "muted" }, "Saliency: what moved the answer"), saliency)),
    el("h2", {}, "Inside the model, layer by layer"),
    layers);
  clear();

  // One request per look: `lenet explain`'s answer has the answer, every probability, the
  // warnings, the input the model saw, every layer and the saliency.
  const show = (result) => {
    answer.textContent = result.name;
    answer.dataset.state = "done";
    answer.dataset.class = String(result.class);
    const top = Math.max(...result.probabilities);
    bars.replaceChildren(...result.probabilities.map((p, index) =>
      el("div", { class: "bar" + (p === top ? " top" : "") }, el("span", {}, result.classes[index]),
        el("div", { style: `width:${Math.max(1, 240 * p)}px` }), el("em", {}, percent(p, 1)))));
    warnings.replaceChildren(...result.warnings.map((w) => el("p", {}, w)));
    const image = seen.getContext("2d").createImageData(28, 28);
    result.input.forEach((v, i) => image.data.set([255 * v, 255 * v, 255 * v, 255], 4 * i));
    seen.getContext("2d").putImageData(image, 0, 0);
    saliency.replaceChildren(saliencyCanvas(result.input, result.saliency));
    layers.replaceChildren(...result.layers.map((layer) => layerView(layer, result)));
    layers.dataset.state = "done";
  };
  // Sends `body` (the drawing, or an uploaded file as a form) to be explained; only the answer
  // to the newest request (`id`, numbered when it was asked for) is shown.
  const look = async (body, id = ++sent) => {
    // A newer request was made (or the pad cleared) while this picture was being made.
    if (id !== sent) return;
    answer.dataset.state = "busy";
    layers.dataset.state = "busy";
    const headers = body instanceof FormData ? {} : { "Content-Type": body.type || "image/png" };
    try {
      const result = await api(`/api/runs/${encodeURIComponent(current)}/explain`, { method: "POST", headers, body });
      if (id === sent) show(result);
    } catch (error) {
      if (id === sent) {
        answer.textContent = "?";
        answer.dataset.state = "error";
        warnings.replaceChildren(el("p", {}, error.message));
      }
    }
  };
  // Numbered now, not when the picture is ready: a Clear or an upload in between makes it old.
  const predictDrawing = () => {
    const id = ++sent;
    pad.toBlob((blob) => look(blob, id), "image/png");
  };
  // While drawing, at most a few predictions a second; one more when the stroke ends.
  const soon = () => {
    if (!pending) pending = setTimeout(() => { pending = null; predictDrawing(); }, 200);
  };

  let last = null;
  const at = (event) => {
    const box = pad.getBoundingClientRect();
    return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
  };
  const stroke = (from, to) => {
    context.strokeStyle = "#111";
    context.lineWidth = 20;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  };
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
    soon();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!last) return;
    const point = at(event);
    stroke(last, point);
    last = point;
    soon();
  });
  const end = () => {
    if (!last) return;
    last = null;
    clearTimeout(pending);
    pending = null;
    predictDrawing();
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  upload.addEventListener("change", () => {
    const file = upload.files[0];
    if (!file) return;
    // The form's own Content-Type (multipart, with its boundary) goes with it.
    const form = new FormData();
    form.append("image", file);
    look(form);
  });
}

route();
