// lenet serve: what the model sees, drawn from `lenet explain`'s answers (the draw page's
// layers and saliency, the run page's filters). Loaded before app.js, whose helpers (el, api)
// these functions call.
"use strict";

const range = (values) => values.reduce(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);
const fixed = (x) => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(3));

// Red for positive values, blue for negative, white for zero, as deep as the value is large for
// its layer (as in `lenet explain`'s figures).
function signedColour(v, largest) {
  const t = Math.min(1, Math.abs(v) / (largest || 1e-12));
  const toward = (from, to) => Math.round(from + (to - from) * t);
  return v >= 0 ? [toward(255, 178), toward(255, 24), toward(255, 43)] : [toward(255, 33), toward(255, 102), toward(255, 172)];
}

// A grid of values as a canvas of `columns` x rows pixels, shown `scale` times larger.
function valuesCanvas(values, columns, scale, largest, attrs) {
  const rows = values.length / columns;
  const canvas = el("canvas", { width: columns, height: rows, style: `width:${columns * scale}px;height:${rows * scale}px`, ...attrs });
  const context = canvas.getContext("2d");
  const image = context.createImageData(columns, rows);
  values.forEach((v, i) => image.data.set([...signedColour(v, largest), 255], 4 * i));
  context.putImageData(image, 0, 0);
  return canvas;
}

// Units as bars from a zero line.
function barsCanvas(values, largest, attrs) {
  const width = Math.max(1, Math.min(8, Math.floor(840 / values.length)));
  const height = 60;
  const canvas = el("canvas", { width: values.length * width, height, ...attrs });
  const context = canvas.getContext("2d");
  const [lo, hi] = range(values);
  const span = Math.max(hi, 0) - Math.min(lo, 0) || 1e-12;
  const zero = (height * Math.max(hi, 0)) / span;
  values.forEach((v, i) => {
    context.fillStyle = `rgb(${signedColour(v, largest).join(",")})`;
    const length = (height * Math.abs(v)) / span;
    context.fillRect(i * width, v >= 0 ? zero - length : zero, Math.max(1, width - 1), Math.max(1, length));
  });
  return canvas;
}

// One layer of `lenet explain`'s answer (`result`): its maps (hover one for its channel and
// range), or its units as bars; the output's bars are named by their classes.
function layerView(layer, result) {
  const [lo, hi] = range(layer.values);
  const largest = Math.max(Math.abs(lo), Math.abs(hi));
  const [maps, h, w] = layer.shape;
  const meaning = layer.name !== "f7" ? layer.shape.join("x")
    : result.output === "distances" ? "distances to each class's prototype: the nearest is the answer"
    : "logits: the largest is the answer";
  const title = el("p", { class: "muted" }, `${layer.name} · ${meaning} · ${fixed(lo)} to ${fixed(hi)}`);
  if (layer.shape.length === 3 && h * w > 1) {
    const scale = h >= 28 ? 3 : h >= 14 ? 4 : h >= 10 ? 5 : 8;
    const canvases = [];
    for (let map = 0; map < maps; map++) {
      const values = layer.values.slice(map * h * w, (map + 1) * h * w);
      const [mlo, mhi] = range(values);
      canvases.push(valuesCanvas(values, w, scale, largest, {
        class: "map", "data-layer": layer.name, "data-channel": map,
        title: `${layer.name}, map ${map + 1} of ${maps}: ${fixed(mlo)} to ${fixed(mhi)}`,
      }));
    }
    return el("div", { class: "layer", "data-layer": layer.name }, title, el("div", { class: "maps" }, canvases));
  }
  const bars = barsCanvas(layer.values, largest, { class: "units", "data-layer": layer.name, title: `${layer.name}: ${layer.values.length} units, ${fixed(lo)} to ${fixed(hi)}` });
  const named = layer.name === "f7" && layer.values.length <= 30;
  const width = bars.width / layer.values.length;
  const names = named ? el("div", { class: "unit-names" }, result.classes.map((c) => el("span", { style: `width:${width}px` }, c))) : null;
  return el("div", { class: "layer", "data-layer": layer.name }, title, bars, names);
}

// Values that are one thing or the other (a connection, a prototype's ink) as black on white.
function inkCanvas(values, columns, scale, attrs) {
  const rows = values.length / columns;
  const canvas = el("canvas", { width: columns, height: rows, style: `width:${columns * scale}px;height:${rows * scale}px`, ...attrs });
  const context = canvas.getContext("2d");
  const image = context.createImageData(columns, rows);
  values.forEach((v, i) => image.data.set(v > 0 ? [40, 40, 40, 255] : [255, 255, 255, 255], 4 * i));
  context.putImageData(image, 0, 0);
  return canvas;
}

// The input as black ink on white with the saliency over it in red: the deeper the red, the more
// the pixel moves the answer's logit, either way.
function saliencyCanvas(input, saliency) {
  const canvas = el("canvas", { id: "saliency", width: 28, height: 28, title: "saliency: how each pixel moves the answer's logit" });
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  const largest = Math.max(...saliency.map(Math.abs)) || 1e-12;
  input.forEach((v, i) => {
    const s = Math.abs(saliency[i]) / largest;
    const paper = 255 * (1 - 0.6 * v);
    const mix = (base, red) => Math.round(base * (1 - s) + red * s);
    image.data.set([mix(paper, 200), mix(paper, 20), mix(paper, 30), 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
  return canvas;
}

// The run's learned filters: C1's kernels, C3's (a column per C3 map, a row per S2 map it
// reads), and the 1998 network's connection table and RBF prototypes.
async function showFilters(name, target) {
  const { layers } = await api(`/api/runs/${encodeURIComponent(name)}/filters`);
  target.replaceChildren(...layers.map((layer) => {
    const [lo, hi] = range(layer.values);
    const largest = Math.max(Math.abs(lo), Math.abs(hi));
    if (layer.name === "c1" || layer.name === "c3") {
      const [maps, inputs, kh, kw] = layer.shape;
      const columns = [];
      for (let map = 0; map < maps; map++) {
        const kernels = [];
        for (let input = 0; input < inputs; input++) {
          const start = (map * inputs + input) * kh * kw;
          const values = layer.values.slice(start, start + kh * kw);
          const [klo, khi] = range(values);
          kernels.push(valuesCanvas(values, kw, 8, largest, {
            class: "kernel", "data-layer": layer.name,
            title: `${layer.name}, map ${map + 1}` + (inputs > 1 ? `, from input map ${input + 1}` : "") + `: ${fixed(klo)} to ${fixed(khi)}`,
          }));
        }
        columns.push(el("div", { class: "kernels" }, kernels));
      }
      return el("div", { class: "layer", "data-layer": layer.name },
        el("p", { class: "muted" }, `${layer.name} · ${maps} kernels of ${kh}x${kw} over ${inputs} input map${inputs > 1 ? "s" : ""} · ${fixed(lo)} to ${fixed(hi)}`),
        el("div", { class: "maps" }, columns));
    }
    if (layer.name === "c3_table") {
      return el("div", { class: "layer", "data-layer": layer.name },
        el("p", { class: "muted" }, "c3's connection table (Table I): a column per C3 map, a row per S2 map it reads"),
        inkCanvas(transpose(layer.values, 16, 6), 16, 14, { class: "table" }));
    }
    const [classes, rows, columns] = layer.shape;
    const bitmaps = [];
    for (let c = 0; c < classes; c++) {
      bitmaps.push(inkCanvas(layer.values.slice(c * rows * columns, (c + 1) * rows * columns), columns, 6, { class: "prototype", title: `the prototype of ${c}` }));
    }
    return el("div", { class: "layer", "data-layer": layer.name },
      el("p", { class: "muted" }, "f7's RBF prototypes: the paper's 7x12 bitmaps, one per digit"), el("div", { class: "maps" }, bitmaps));
  }));
}

// `values` laid out `rows` x `columns`, read column by column.
const transpose = (values, rows, columns) => Array.from({ length: values.length }, (_, i) => values[(i % rows) * columns + Math.floor(i / rows)]);

