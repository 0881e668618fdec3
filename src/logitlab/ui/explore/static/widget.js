// logitlab's notebook plot: an anywidget ESM module.
//
// It draws what Python sends and computes nothing: `curve` is
// `logitlab.analysis.curves.bce_curve(...).to_dict()` plus the dtype's saturation thresholds
// (binary CE), or the dictionary of `logitlab.analysis.curves_softmax.softmax_curve` /
// `focal_curve` (the other two losses), with a title and an x label; `dots` the plotted
// element's own values from the same comparison functions at the current z.
// `errors` (binary CE) is `logitlab.ui.explore._notebook.error_plot_data(...)`: the "where it
// breaks" plot's error of every row against z (ULPs or relative, loss or gradient), the
// core's flag intervals, the NaN/inf runs and the breakpoint onsets in view, with its note.
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

// The "where it breaks" plot: each row's error on a log axis, the core's flag intervals as
// lanes along the top, NaN/inf runs as lanes along the bottom, torch.sigmoid's saturation
// shaded, and a dotted line with a ▼ at each breakpoint onset in view.
const ERR_KEYS = {
  value: { ulp: "ulp_error", rel: "relative_error" },
  grad: { ulp: "grad_ulp_error", rel: "grad_relative_error" },
};
// A log axis draws positive numbers; zero, NaN and infinities are left as gaps.
function positive(a) {
  return a.map((v) => (typeof v === "number" && v > 0 ? v : null));
}

function errFigure(errors, colors, dots, markerZ) {
  const z = nums(errors.z);
  const lo = z[0], hi = z[z.length - 1];
  const step = z.length > 1 ? z[1] - z[0] : 0;
  const traces = [];
  const shapes = [];
  const annotations = [];
  errors.rows.forEach((r, i) => {
    const color = colors[r.name] || "#999";
    traces.push({
      x: z, y: positive(r.error), name: r.name, mode: "lines", type: "scatter",
      line: { color, width: 1.8, dash: DASHES[i % DASHES.length] },
      hovertemplate: "z=%{x}<br>%{y:.3g}<extra>" + r.name + "</extra>",
    });
  });
  const sat = errors.saturation || {};
  const shade = { type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below",
    fillcolor: "rgba(120,120,120,0.10)", line: { width: 0 } };
  if (sat.one_from != null && num(sat.one_from) < hi)
    shapes.push({ ...shade, x0: Math.max(num(sat.one_from), lo), x1: hi });
  if (sat.zero_up_to != null && num(sat.zero_up_to) > lo)
    shapes.push({ ...shade, x0: lo, x1: Math.min(num(sat.zero_up_to), hi) });
  // NaN / inf runs: one lane per row along the bottom, labelled.
  errors.rows.forEach((r, k) => {
    const y0 = 0.02 + 0.07 * k, y1 = y0 + 0.06;
    const color = colors[r.name] || "#999";
    for (const [x0, x1, kind] of r.nonfinite) {
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0, x1: x1 === x0 ? x0 + step : x1, y0, y1,
        fillcolor: color, opacity: 0.28, line: { width: 0 } });
      annotations.push({ xref: "x", yref: "paper", x: (x0 + x1) / 2, y: (y0 + y1) / 2,
        text: `${r.name}: ${kind}`, showarrow: false, font: { size: 10, color } });
    }
  });
  // The core's flag intervals: one lane per row along the top, a hover marker naming each.
  const fx = [], fy = [], ftext = [], fcol = [];
  errors.rows.forEach((r, k) => {
    const y1 = 0.97 - 0.06 * k, y0 = y1 - 0.04;
    const color = colors[r.name] || "#999";
    for (const [flag, ivs] of Object.entries(r.flags || {})) {
      for (const [x0, x1] of ivs) {
        shapes.push({ type: "rect", xref: "x", yref: "paper", x0, x1: x1 === x0 ? x0 + step : x1, y0, y1,
          fillcolor: color, opacity: 0.2, line: { width: 0 } });
        fx.push((x0 + x1) / 2); fy.push((y0 + y1) / 2); fcol.push(color);
        ftext.push(`${r.name}: ${flag}, z = ${x0} … ${x1}`);
      }
    }
  });
  traces.push({ x: fx, y: fy, yaxis: "y2", mode: "markers", type: "scatter", name: "flags",
    marker: { symbol: "square", size: 7, color: fcol, opacity: 0.8 }, text: ftext,
    hovertemplate: "%{text}<extra></extra>", showlegend: false });
  // The breakpoint onsets in view, from the core's exact search.
  const bx = [], by = [], btext = [], bcol = [];
  for (const o of errors.onsets) {
    const color = colors[o.formulation] || "#999";
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: o.z, x1: o.z, y0: 0, y1: 1,
      line: { color, width: 1.2, dash: "dot" } });
    bx.push(o.z); by.push(0.99); bcol.push(color); btext.push(o.text);
  }
  traces.push({ x: bx, y: by, yaxis: "y2", mode: "markers", type: "scatter", name: "breakpoints",
    marker: { symbol: "triangle-down", size: 10, color: bcol }, text: btext,
    hovertemplate: "%{text}<extra></extra>", showlegend: false });
  if (markerZ != null)
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: markerZ, x1: markerZ, y0: 0, y1: 1,
      line: { color: "black", width: 1, dash: "dot" } });
  if (dots && dots.rows) {
    const key = ERR_KEYS[errors.quantity][errors.kind];
    const names = Object.keys(dots.rows).filter((n) => {
      const v = dots.rows[n][key];
      return typeof v === "number" && v > 0;
    });
    traces.push({
      x: names.map(() => dots.z), y: names.map((n) => dots.rows[n][key]), text: names,
      mode: "markers", showlegend: false, hoverinfo: "text+y", name: "dots",
      marker: { size: 8, color: names.map((n) => colors[n] || "black") },
    });
  }
  const layout = {
    height: 420, margin: { l: 70, r: 20, t: 40, b: 80 },
    title: { text: errors.title || "", font: { size: 13 } },
    xaxis: { range: [lo, hi], title: { text: "logit z (log-odds, nats)" }, zeroline: false },
    yaxis: { type: "log", title: { text: errors.y_label || "" }, exponentformat: "power" },
    yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true },
    showlegend: true, legend: { orientation: "h", x: 0, y: -0.15, yanchor: "top", font: { size: 10 } },
    shapes, annotations,
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
  const errDiv = document.createElement("div");
  errDiv.className = "logitlab-err-plot";
  const errNote = document.createElement("div");
  errNote.className = "logitlab-err-note";
  errNote.style.fontSize = "12px";
  errNote.style.color = "#555";
  el.appendChild(div);
  el.appendChild(note);
  el.appendChild(errDiv);
  el.appendChild(errNote);
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["toImage"] };

  // Clicking on a plot sets z there (the Python side clamps and recomputes).  Plotly gives
  // the div its `on` with the first plot and drops the listeners on purge: listen after
  // each draw that needs it.
  const listening = new Set();
  function listen(d) {
    if (listening.has(d) || !d.on) return;
    d.on("plotly_click", (ev) => {
      if (ev && ev.points && ev.points.length) {
        model.set("clicked_z", ev.points[0].x);
        model.save_changes();
      }
    });
    listening.add(d);
  }

  function drawErrors(colors) {
    const errors = model.get("errors");
    if (!errors || !errors.z) {
      // No error plot (another loss, or no curve).
      Plotly.purge(errDiv);
      listening.delete(errDiv);
      errDiv.dataset.breakpoints = "";
      errDiv.dataset.quantity = "";
      errDiv.dataset.kind = "";
      errNote.textContent = "";
      return;
    }
    const dots = model.get("dots");
    const { traces, layout } = errFigure(errors, colors, dots && dots.rows ? dots : null, model.get("marker"));
    Plotly.react(errDiv, traces, layout, config);
    listen(errDiv);
    // For tests and curious users: what is drawn, as the widget received it.
    errDiv.dataset.quantity = errors.quantity;
    errDiv.dataset.kind = errors.kind;
    errDiv.dataset.dtype = errors.dtype;
    errDiv.dataset.target = String(errors.target);
    errDiv.dataset.breakpoints = errors.searching ? "searching" : String(errors.onsets.length);
    errNote.textContent = [errors.legend, errors.note].filter((t) => t).join(" ");
  }

  function draw() {
    const curve = model.get("curve");
    if (!curve || !curve.z) {
      // No curve (its input was refused; the note under the plot says why).
      Plotly.purge(div);
      listening.delete(div);
      div.dataset.marker = "";
      note.textContent = "";
      drawErrors({});
      return;
    }
    const dots = model.get("dots");
    const markerZ = model.get("marker");
    const { traces, layout } = figure(curve, dots && dots.rows ? dots : null, markerZ, model.get("log_y"));
    Plotly.react(div, traces, layout, config);
    listen(div);
    div.dataset.quantity = curve.quantity || "bce";
    // For tests and curious users: what is drawn, as the widget received it.
    div.dataset.marker = markerZ == null ? "" : String(markerZ);
    div.dataset.target = String(curve.target);
    div.dataset.dtype = curve.dtype;
    note.textContent = dots && dots.label ? dots.label : "";
    drawErrors(colorMap(curve.rows));
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
  for (const name of ["curve", "dots", "marker", "log_y", "errors"]) model.on("change:" + name, schedule);
  return () => {
    for (const d of [div, errDiv]) {
      try {
        Plotly.purge(d);
      } catch (e) {
        /* already gone */
      }
    }
  };
}

export default { render };
