// logitlab's notebook plot: an anywidget ESM module.
//
// It draws what Python sends and computes nothing: `curve` is
// `logitlab.analysis.curves.bce_curve(...).to_dict()` plus the dtype's saturation thresholds
// (binary CE), or the dictionary of `logitlab.analysis.curves_softmax.softmax_curve` /
// `focal_curve` (the other two losses), with a title and an x label; `dots` the plotted
// element's own values from the same comparison functions at the current z.
// plotly.js comes from the installed `plotly` package, sent once as the `_plotly` text
// (no CDN), so the widget works offline in JupyterLab, VS Code and Colab.

function plotlyFrom(source) {
  const w = typeof window !== "undefined" ? window : globalThis;
  if (w.__logitlabPlotly) return w.__logitlabPlotly;
  // plotly.min.js is a UMD bundle: give it a CommonJS `module` to fill in.
  const module = { exports: {} };
  new Function("module", "exports", "define", source)(module, module.exports, undefined);
  w.__logitlabPlotly = module.exports;
  return module.exports;
}

// JSON carries NaN and infinities as strings; plotly draws gaps for null.
function num(v) {
  if (typeof v === "number") return v;
  return null;
}
function nums(a) {
  return a == null ? null : a.map(num);
}

const COLORS = {
  "torch.probabilities": "#d32f2f",
  "torch.logits": "#1565c0",
  "torch.naive": "#ef8f00",
};
const PALETTE = ["#6a1b9a", "#00897b", "#5d4037", "#c2185b", "#558b2f", "#455a64", "#f9a825", "#26c6da"];
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];

function colorMap(rows) {
  const out = { ...COLORS };
  let k = 0;
  for (const r of rows) if (!(r.name in out)) out[r.name] = PALETTE[k++ % PALETTE.length];
  return out;
}

function figure(curve, dots, markerZ, logY) {
  const z = nums(curve.z);
  const colors = colorMap(curve.rows);
  const traces = [];
  curve.rows.forEach((r, i) => {
    if (r.status !== "ok" || r.value == null) return;
    const line = { color: colors[r.name], width: 1.8, dash: DASHES[i % DASHES.length] };
    traces.push({ x: z, y: nums(r.value), name: r.name, legendgroup: r.name, line, xaxis: "x", yaxis: "y" });
    traces.push({
      x: z, y: nums(r.grad), name: r.name, legendgroup: r.name, showlegend: false, line,
      xaxis: "x2", yaxis: "y2",
    });
  });
  const exactLine = { color: "black", width: 1.2, dash: "dash" };
  traces.push({ x: z, y: nums(curve.exact.value), name: "exact", legendgroup: "exact", line: exactLine });
  traces.push({
    x: z, y: nums(curve.exact.grad), name: "exact", legendgroup: "exact", showlegend: false,
    line: exactLine, xaxis: "x2", yaxis: "y2",
  });
  if (dots) {
    for (const [ax, key] of [["", "value"], ["2", "grad"]]) {
      const names = Object.keys(dots.rows);
      traces.push({
        x: names.map(() => dots.z), y: names.map((n) => num(dots.rows[n][key])),
        text: names, mode: "markers", showlegend: false, hoverinfo: "text+y",
        marker: { size: 8, color: names.map((n) => colors[n] || "black") },
        xaxis: "x" + ax, yaxis: "y" + ax,
      });
    }
  }
  const lo = z[0], hi = z[z.length - 1];
  const shapes = [];
  const sat = curve.saturation || {};
  for (const yref of ["y domain", "y2 domain"]) {
    const xref = yref === "y domain" ? "x" : "x2";
    if (sat.one_from != null && num(sat.one_from) < hi)
      shapes.push({ type: "rect", xref, yref, x0: Math.max(num(sat.one_from), lo), x1: hi, y0: 0, y1: 1,
        fillcolor: "#d32f2f", opacity: 0.1, line: { width: 0 } });
    if (sat.zero_up_to != null && num(sat.zero_up_to) > lo)
      shapes.push({ type: "rect", xref, yref, x0: lo, x1: Math.min(num(sat.zero_up_to), hi), y0: 0, y1: 1,
        fillcolor: "#d32f2f", opacity: 0.1, line: { width: 0 } });
    if (markerZ != null)
      shapes.push({ type: "line", xref, yref, x0: markerZ, x1: markerZ, y0: 0, y1: 1,
        line: { color: "black", width: 1, dash: "dot" } });
  }
  const layout = {
    height: 520, margin: { l: 70, r: 20, t: 40, b: 50 },
    title: { text: curve.title || "", font: { size: 13 } },
    grid: { rows: 2, columns: 1, pattern: "independent" },
    xaxis: { range: [lo, hi], matches: "x2", showticklabels: false },
    xaxis2: { range: [lo, hi], title: { text: curve.x_label || "logit z" } },
    yaxis: { title: { text: "loss (nats)" }, type: logY ? "log" : "linear", exponentformat: "power" },
    yaxis2: { title: { text: "d loss / dz (nats per unit z)" } },
    legend: { orientation: "h", y: 1.12 },
    shapes,
  };
  return { traces, layout };
}

function render({ model, el }) {
  const Plotly = plotlyFrom(model.get("_plotly"));
  const note = document.createElement("div");
  note.className = "logitlab-plot-note";
  note.style.fontSize = "12px";
  note.style.color = "#555";
  const div = document.createElement("div");
  div.className = "logitlab-plot";
  el.appendChild(div);
  el.appendChild(note);
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["toImage"] };

  // Clicking on a plot sets z there (the Python side clamps and recomputes).  Plotly gives
  // the div its `on` with the first plot and drops the listeners on purge: listen after
  // each draw that needs it.
  let listening = false;
  function listen() {
    if (listening || !div.on) return;
    div.on("plotly_click", (ev) => {
      if (ev && ev.points && ev.points.length) {
        model.set("clicked_z", ev.points[0].x);
        model.save_changes();
      }
    });
    listening = true;
  }

  function draw() {
    const curve = model.get("curve");
    if (!curve || !curve.z) {
      // No curve (its input was refused; the note under the plot says why).
      Plotly.purge(div);
      listening = false;
      div.dataset.marker = "";
      note.textContent = "";
      return;
    }
    const dots = model.get("dots");
    const markerZ = model.get("marker");
    const { traces, layout } = figure(curve, dots && dots.rows ? dots : null, markerZ, model.get("log_y"));
    Plotly.react(div, traces, layout, config);
    listen();
    div.dataset.quantity = curve.quantity || "bce";
    // For tests and curious users: what is drawn, as the widget received it.
    div.dataset.marker = markerZ == null ? "" : String(markerZ);
    div.dataset.target = String(curve.target);
    div.dataset.dtype = curve.dtype;
    note.textContent = dots && dots.label ? dots.label : "";
  }
  draw();
  // One message from Python can change several traits (the dots and the marker together):
  // draw once, after the model has taken them all.
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      draw();
    });
  }
  for (const name of ["curve", "dots", "marker", "log_y"]) model.on("change:" + name, schedule);
  return () => {
    try {
      Plotly.purge(div);
    } catch (e) {
      /* already gone */
    }
  };
}

export default { render };
