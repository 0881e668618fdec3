// logitlab explore: the page.  Plain JS, no build step.  Every number shown comes from the
// server (/api/compare and /api/curve, which call logitlab.compare and the framework).
"use strict";
(function () {
  const Z_MIN = -300, Z_MAX = 300;
  const MAX_UI_ELEMENTS = 16;
  const DEFAULTS = {
    z: [-2, 2], y: [0.3, 0.7], dtype: "float32", reduction: "mean",
    weight: "", pos_weight: "", view: "full", zlo: -30, zhi: 30, sel: 0, fw: "",
  };
  const DTYPES = ["float16", "bfloat16", "float32", "float64"];
  const REDUCTIONS = ["mean", "sum", "none"];
  const COLORS = {
    "torch.probabilities": "#d32f2f", "torch.logits": "#1565c0", "torch.naive": "#ef8f00",
  };
  const PALETTE = ["#6a1b9a", "#00897b", "#5d4037", "#c2185b", "#558b2f", "#455a64", "#f9a825",
    "#26c6da", "#8d6e63", "#283593"];
  const SUB = "₀₁₂₃₄₅₆₇₈₉";
  const sub = (n) => String(n).split("").map((d) => SUB[+d]).join("");

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    if (props) for (const [k, v] of Object.entries(props)) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  };

  // ---- state <-> URL ------------------------------------------------------------------
  function parseList(text) {
    if (text == null || text === "") return null;
    const out = text.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
    return out.length && out.every((v) => !Number.isNaN(v)) ? out : null;
  }
  function readURL() {
    const q = new URLSearchParams(location.search);
    const s = JSON.parse(JSON.stringify(DEFAULTS));
    const z = parseList(q.get("z")), y = parseList(q.get("y"));
    if (z) s.z = z.slice(0, MAX_UI_ELEMENTS);
    if (y) s.y = y.slice(0, MAX_UI_ELEMENTS);
    while (s.y.length < s.z.length) s.y.push(s.y[s.y.length - 1] ?? 0.5);
    s.y.length = s.z.length;
    if (DTYPES.includes(q.get("dtype"))) s.dtype = q.get("dtype");
    if (REDUCTIONS.includes(q.get("reduction"))) s.reduction = q.get("reduction");
    for (const [key, name] of [["w", "weight"], ["pw", "pos_weight"]]) {
      const v = q.get(key);
      if (v !== null && v !== "" && !Number.isNaN(Number(v))) s[name] = v;
    }
    if (q.get("view") === "zoom") s.view = "zoom";
    if (q.get("fw") === "all") s.fw = "all";
    for (const k of ["zlo", "zhi"]) {
      const v = Number(q.get(k));
      if (q.get(k) !== null && q.get(k) !== "" && Number.isFinite(v)) s[k] = v;
    }
    const sel = Number(q.get("sel"));
    if (Number.isInteger(sel) && sel >= 0 && sel < s.z.length) s.sel = sel;
    return s;
  }
  function stateQuery() {
    const q = new URLSearchParams();
    q.set("z", state.z.join(","));
    q.set("y", state.y.join(","));
    q.set("dtype", state.dtype);
    q.set("reduction", state.reduction);
    if (state.weight !== "") q.set("w", state.weight);
    if (state.pos_weight !== "") q.set("pw", state.pos_weight);
    q.set("view", state.view);
    if (state.view === "zoom") { q.set("zlo", state.zlo); q.set("zhi", state.zhi); }
    if (state.sel) q.set("sel", state.sel);
    if (state.fw) q.set("fw", state.fw);
    return q.toString().replace(/%2C/g, ",");
  }
  let urlTimer = null;
  function writeURL() {
    // Browsers throttle history.replaceState; while a slider moves, update at most 4x a second.
    if (urlTimer) return;
    urlTimer = setTimeout(() => {
      urlTimer = null;
      const url = location.pathname + "?" + stateQuery();
      history.replaceState(null, "", url);
      $("link").value = location.href;
    }, 250);
  }

  let state = readURL();

  // ---- controls -------------------------------------------------------------------------
  function buildElements() {
    const box = $("elements");
    box.textContent = "";
    state.z.forEach((z, i) => {
      const n = sub(i + 1);
      const zr = el("input", { type: "range", min: Z_MIN, max: Z_MAX, step: 0.01, class: "z-range",
        value: z, "data-i": i, ariaLabel: `logit z${i + 1}` });
      const zn = el("input", { type: "number", min: Z_MIN, max: Z_MAX, step: 0.01, class: "z-num",
        value: z, "data-i": i, ariaLabel: `logit z${i + 1} value` });
      const yr = el("input", { type: "range", min: 0, max: 1, step: 0.01, class: "y-range",
        value: state.y[i], "data-i": i, ariaLabel: `target y${i + 1}` });
      const yn = el("input", { type: "number", min: 0, max: 1, step: "any", class: "y-num",
        value: state.y[i], "data-i": i, ariaLabel: `target y${i + 1} value` });
      const rm = el("button", { type: "button", class: "remove", text: "×", title: "remove element",
        disabled: state.z.length <= 1 });
      zr.addEventListener("input", () => { zn.value = zr.value; setZ(i, Number(zr.value)); });
      zn.addEventListener("input", () => {
        const v = zn.value === "" ? NaN : Number(zn.value);
        if (Number.isFinite(v)) zr.value = v;
        setZ(i, v);
      });
      yr.addEventListener("input", () => { yn.value = yr.value; setY(i, Number(yr.value)); });
      yn.addEventListener("input", () => {
        const v = yn.value === "" ? NaN : Number(yn.value);
        if (Number.isFinite(v)) yr.value = v;
        setY(i, v);
      });
      rm.addEventListener("click", () => removeElement(i));
      box.append(el("div", { class: "element", "data-i": i },
        el("span", { class: "lbl", text: "z" + n }), zr, zn,
        el("span", { class: "lbl y-lbl", text: "y" + n }), yr, yn, rm));
    });
    $("add").disabled = state.z.length >= MAX_UI_ELEMENTS;
    const sel = $("sel");
    sel.textContent = "";
    state.z.forEach((_, i) => sel.append(el("option", { value: i, text: "z" + sub(i + 1) })));
    sel.value = String(state.sel);
  }
  function syncControls() {
    $("dtype").value = state.dtype;
    $("reduction").value = state.reduction;
    $("weight").value = state.weight;
    $("pos_weight").value = state.pos_weight;
    $("view").value = state.view;
    $("all-frameworks").checked = state.fw === "all";
    $("zlo").value = state.zlo;
    $("zhi").value = state.zhi;
    $("zlo").disabled = $("zhi").disabled = state.view !== "zoom";
    buildElements();
  }

  let inputSeq = 0;
  function changed(curvesToo) {
    inputSeq += 1;
    writeURL();
    scheduleCompare();
    if (curvesToo) scheduleCurve();
  }
  function setZ(i, v) { state.z[i] = v; changed(false); }
  function setY(i, v) { state.y[i] = v; changed(i === state.sel); }
  function removeElement(i) {
    if (state.z.length <= 1) return;
    state.z.splice(i, 1); state.y.splice(i, 1);
    if (state.sel >= state.z.length) state.sel = state.z.length - 1;
    buildElements(); changed(true);
  }
  function addElement() {
    if (state.z.length >= MAX_UI_ELEMENTS) return;
    state.z.push(0); state.y.push(0.5);
    buildElements(); changed(false);
  }

  // ---- requests: one in flight per kind; the newest state wins ------------------------
  const optional = (s) => (s === "" ? null : Number(s));
  function compareBody() {
    return {
      logits: state.z, targets: state.y, dtype: state.dtype, reduction: state.reduction,
      weight: optional(state.weight), pos_weight: optional(state.pos_weight),
      frameworks: state.fw ? [state.fw] : null,
    };
  }
  const cmp = { wanted: 0, inFlight: false, rendered: 0 };
  const waiters = [];
  function scheduleCompare() {
    cmp.wanted = inputSeq;
    if (!cmp.inFlight) sendCompare();
  }
  // Say so when a request takes long (a framework's first import), never for quick ones.
  let busyCount = 0;
  function busy(on) {
    busyCount += on ? 1 : -1;
    if (on) setTimeout(() => { if (busyCount > 0) $("busy").hidden = false; }, 400);
    else if (busyCount === 0) $("busy").hidden = true;
  }
  async function sendCompare() {
    cmp.inFlight = true;
    busy(true);
    const seq = cmp.wanted;
    try {
      const r = await fetch("/api/compare", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify(compareBody()),
      });
      const data = await r.json();
      if (seq > cmp.rendered) {
        if (r.ok) await renderCompare(data); else showError(data, r.status);
        markRendered(seq);
      }
    } catch (err) {
      showError({ detail: String(err) }, 0);
      markRendered(seq);
    } finally {
      busy(false);
      cmp.inFlight = false;
      if (cmp.wanted > seq) sendCompare();
    }
  }
  function markRendered(seq) {
    cmp.rendered = Math.max(cmp.rendered, seq);
    window.__explore.rendered = cmp.rendered;
    for (let k = waiters.length - 1; k >= 0; k--) {
      if (waiters[k].seq <= cmp.rendered) { waiters[k].resolve(performance.now()); waiters.splice(k, 1); }
    }
  }

  const crv = { wantedKey: null, shownKey: null, inFlight: false, data: null };
  function curveBody() {
    const full = state.view !== "zoom";
    let lo = full ? Z_MIN : state.zlo, hi = full ? Z_MAX : state.zhi;
    if (!(Number.isFinite(lo) && Number.isFinite(hi))) { lo = -30; hi = 30; }
    return {
      target: state.y[state.sel], dtype: state.dtype,
      weight: optional(state.weight), pos_weight: optional(state.pos_weight),
      z_min: lo, z_max: hi, points: full ? 1201 : 801,
      frameworks: state.fw ? [state.fw] : null,
    };
  }
  function scheduleCurve() {
    crv.wantedKey = JSON.stringify(curveBody());
    if (!crv.inFlight && crv.wantedKey !== crv.shownKey) sendCurve();
  }
  async function sendCurve() {
    crv.inFlight = true;
    busy(true);
    const key = crv.wantedKey;
    try {
      const r = await fetch("/api/curve", {
        method: "POST", headers: { "content-type": "application/json" }, body: key,
      });
      const data = await r.json();
      if (r.ok) { crv.data = data; crv.shownKey = key; await drawCurves(); }
      else { crv.shownKey = key; $("curve-note").textContent = "curves: " + errorText(data); }
    } catch (err) {
      $("curve-note").textContent = "curves: " + String(err);
    } finally {
      busy(false);
      crv.inFlight = false;
      if (crv.wantedKey !== key) sendCurve();
    }
  }

  // ---- rendering -------------------------------------------------------------------------
  const num = (v) => (typeof v === "string" ? Number(v) : v);
  function fmtUlp(v) {
    v = num(v);
    if (v == null) return "";
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return "∞";
    if (v === 0) return "0";
    if (v < 1e4) return String(Number(v.toPrecision(3)));
    return v.toExponential(2).replace("e+", "e");
  }
  function fmtRel(v) {
    v = num(v);
    if (v == null) return "";
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return "∞";
    if (v === 0) return "0";
    return v.toExponential(1).replace("e+", "e");
  }
  function ulpClass(v) {
    v = num(v);
    if (v == null) return "";
    if (!(v <= 4)) return v > 1e3 || !Number.isFinite(v) ? "bad" : "warn";
    return "good";
  }
  function errorText(data) {
    if (data && Array.isArray(data.detail)) {
      return data.detail.map((d) => {
        const loc = (d.loc || []).filter((p) => p !== "body").join(".");
        return (loc ? loc + ": " : "") + d.msg;
      }).join("; ");
    }
    return data && data.detail ? String(data.detail) : "request failed";
  }
  function showError(data, status) {
    const box = $("error");
    box.hidden = false;
    box.textContent = (status ? status + " " : "") + errorText(data);
  }

  function gradCell(r) {
    const td = el("td", { class: "grad", text: r.grad_repr ? r.grad_repr.join(", ") : "—" });
    if (r.grad_ulp_error && r.grad_ulp_error.length) {
      const worst = r.grad_ulp_error.map(num).reduce((a, b) => (b > a || Number.isNaN(b) ? b : a), 0);
      if (!(worst <= 4)) {
        const text = Number.isNaN(worst) ? "NaN where exact is finite" : "off by " + fmtUlp(worst) + " ULP";
        td.append(el("span", { class: "grad-err " + ulpClass(worst), text }));
      }
    }
    return td;
  }
  let lastData = null;
  async function renderCompare(data) {
    lastData = data;
    $("error").hidden = true;
    const dt = data.dtype;
    const ex = data.exact;
    const exactText = ex.value_repr.join(", ");
    $("exact").replaceChildren(
      el("b", { text: "exact loss: " }),
      el("span", { class: "exact-value", text: exactText }),
      ` (rounded to ${dt}) `,
      el("span", { class: "digits", text: "= " + ex.value.join(", ") + "…" }));
    const tbody = $("table").tBodies[0];
    const rows = [];
    rows.push(el("tr", { class: "exact-row", "data-name": "exact" },
      el("td", { class: "name" }, el("b", { text: "exact" }), el("code", { text: "mpmath, rounded once to " + dt })),
      el("td", { class: "loss", text: exactText }),
      el("td", { class: "ulp", text: "≤ 0.5" }), el("td", { class: "rel", text: "" }),
      el("td", { class: "grad", text: ex.grad_repr.join(", ") }), el("td", { class: "flags" })));
    for (const r of data.rows) {
      const tr = el("tr", { "data-name": r.name, class: r.flags.length ? "flagged" : "" });
      tr.append(el("td", { class: "name" }, el("b", { text: r.name }), el("code", { text: r.code })));
      if (r.status !== "ok") {
        tr.append(el("td", { class: "loss", text: "—" }),
          el("td", { colSpan: 4, class: "reason", text: `${r.status}: ${r.reason}` }));
      } else {
        const maxUlp = r.max_ulp_error;
        const flags = el("td", { class: "flags" });
        for (const f of r.flags) flags.append(el("span", { class: "flag", text: f, title: data.flags[f] || "" }));
        tr.append(
          el("td", { class: "loss", text: r.value_repr.join(", ") }),
          el("td", { class: "ulp " + ulpClass(maxUlp), text: fmtUlp(maxUlp) }),
          el("td", { class: "rel", text: fmtRel(r.max_relative_error) }),
          gradCell(r),
          flags);
      }
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    const ul = $("explanation");
    ul.replaceChildren(...data.explanation.map((t) => el("li", { text: t })));
    saturationInfo = data.saturation;
    await moveMarker();
  }

  // ---- plots -------------------------------------------------------------------------------
  let saturationInfo = null;
  let plotsReady = false;
  const plotConfig = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  function currentZ() {
    const z = state.z[state.sel];
    return Number.isFinite(z) ? z : 0;
  }
  function shapes(lo, hi, sat) {
    const s = [];
    const shade = { type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below",
      fillcolor: "rgba(211,47,47,0.10)", line: { width: 0 } };
    if (sat && sat.one_from != null && sat.one_from < hi) s.push({ ...shade, x0: Math.max(sat.one_from, lo), x1: hi });
    if (sat && sat.zero_up_to != null && sat.zero_up_to > lo) s.push({ ...shade, x0: lo, x1: Math.min(sat.zero_up_to, hi) });
    return s;
  }
  function annotations(lo, hi, sat) {
    const a = [];
    const base = { yref: "paper", y: 1, yanchor: "bottom", showarrow: false, font: { size: 11, color: "#b71c1c" } };
    if (sat && sat.one_from != null && sat.one_from < hi)
      a.push({ ...base, x: Math.max(sat.one_from, lo), xanchor: "left", text: `σ = 1 from ${sat.one_from.toFixed(2)}` });
    if (sat && sat.zero_up_to != null && sat.zero_up_to > lo)
      a.push({ ...base, x: Math.min(sat.zero_up_to, hi), xanchor: "right", text: `σ = 0 below ${sat.zero_up_to.toFixed(2)}` });
    return a;
  }
  const finite = (arr) => arr.map((v) => { const x = num(v); return Number.isFinite(x) ? x : null; });
  function traces(data, key) {
    const out = [];
    // One colour per row, the same in both plots (rows without a gradient take theirs along).
    const colors = {};
    let k = 0;
    for (const r of data.rows) colors[r.name] = COLORS[r.name] || PALETTE[k++ % PALETTE.length];
    for (const r of data.rows) {
      if (r.status !== "ok" || !r[key]) continue;
      out.push({ x: data.z, y: finite(r[key]), name: r.name, mode: "lines", type: "scatter",
        line: { color: colors[r.name], width: 2 },
        hovertemplate: "z=%{x}<br>%{y}<extra>" + r.name + "</extra>" });
    }
    out.push({ x: data.z, y: finite(data.exact[key]), name: "exact", mode: "lines", type: "scatter",
      line: { color: "#111", width: 1.5, dash: "dash" }, hovertemplate: "z=%{x}<br>%{y}<extra>exact</extra>" });
    return out;
  }
  function layout(title, lo, hi, sat) {
    return {
      title: { text: title, font: { size: 14 }, x: 0.01, xanchor: "left" },
      margin: { l: 50, r: 10, t: 36, b: 36 },
      xaxis: { range: [lo, hi], title: { text: "z", standoff: 4 }, zeroline: false },
      yaxis: { zeroline: true, zerolinecolor: "#ccc" },
      legend: { orientation: "h", y: -0.18, font: { size: 11 } },
      shapes: shapes(lo, hi, sat), annotations: annotations(lo, hi, sat),
      uirevision: "keep",
    };
  }
  async function drawCurves() {
    const d = crv.data;
    if (!d || typeof Plotly === "undefined") return;
    const lo = d.z[0], hi = d.z[d.z.length - 1];
    const sat = d.saturation;
    const who = "z" + sub(state.sel + 1);
    const short = (v) => Number(v.toPrecision(7));
    const label = `${d.dtype}, y = ${short(d.target)}` + (d.weight != null ? `, w = ${short(d.weight)}` : "")
      + (d.pos_weight != null ? `, pos_weight = ${short(d.pos_weight)}` : "");
    await Promise.all([
      Plotly.react("plot-loss", traces(d, "value"), layout(`loss of ${who} against z (${label})`, lo, hi, sat), plotConfig),
      Plotly.react("plot-grad", traces(d, "grad"), layout(`d loss / dz (${label})`, lo, hi, sat), plotConfig),
    ]);
    if (!plotsReady) {
      for (const id of ["plot-loss", "plot-grad"]) $(id).on("plotly_afterplot", () => placeMarker(id));
    }
    plotsReady = true;
    await moveMarker();
    $("curve-note").textContent = `${d.points} points, each path run once over all of them by its framework at ${d.dtype}; `
      + `reference: ${d.reference}. Shaded: torch.sigmoid is exactly 0 or 1. Dotted line: current ${who}. `
      + "Per-element loss (no reduction).";
  }
  // The current-z marker is a plain element laid over each plot, placed with the plot's own
  // axis mapping: moving it costs no Plotly redraw (a relayout of 2 x 4 x 1201 points does).
  function placeMarker(id) {
    const gd = $(id);
    const fl = gd._fullLayout;
    let mark = gd.querySelector(".zmark");
    if (!mark) {
      mark = el("div", { class: "zmark" });
      gd.append(mark);
    }
    if (!fl || !fl.xaxis || !fl.yaxis || typeof fl.xaxis.l2p !== "function") { mark.hidden = true; return; }
    const z = currentZ();
    const [lo, hi] = fl.xaxis.range;
    mark.hidden = !(z >= Math.min(lo, hi) && z <= Math.max(lo, hi));
    mark.style.left = (fl.xaxis._offset + fl.xaxis.l2p(z)) + "px";
    mark.style.top = fl.yaxis._offset + "px";
    mark.style.height = fl.yaxis._length + "px";
    mark.title = "current z" + sub(state.sel + 1) + " = " + z;
  }
  async function moveMarker() {
    if (!plotsReady) return;
    placeMarker("plot-loss");
    placeMarker("plot-grad");
  }

  // ---- wiring ------------------------------------------------------------------------------
  function wire() {
    $("add").addEventListener("click", addElement);
    $("dtype").addEventListener("change", () => { state.dtype = $("dtype").value; changed(true); });
    $("reduction").addEventListener("change", () => { state.reduction = $("reduction").value; changed(false); });
    for (const name of ["weight", "pos_weight"]) {
      $(name).addEventListener("input", () => { state[name] = $(name).value.trim(); changed(true); });
    }
    $("all-frameworks").addEventListener("change", () => {
      state.fw = $("all-frameworks").checked ? "all" : ""; changed(true);
    });
    $("view").addEventListener("change", () => {
      state.view = $("view").value;
      $("zlo").disabled = $("zhi").disabled = state.view !== "zoom";
      writeURL(); scheduleCurve();
    });
    for (const k of ["zlo", "zhi"]) {
      $(k).addEventListener("change", () => {
        const v = Number($(k).value);
        if ($(k).value !== "" && Number.isFinite(v)) { state[k] = v; writeURL(); scheduleCurve(); }
      });
    }
    $("sel").addEventListener("change", () => { state.sel = Number($("sel").value); changed(true); });
    $("copy-link").addEventListener("click", async () => {
      const url = location.origin + location.pathname + "?" + stateQuery();
      $("link").value = url;
      try { await navigator.clipboard.writeText(url); $("copy-link").textContent = "Copied"; }
      catch (err) { $("link").select(); }
      setTimeout(() => { $("copy-link").textContent = "Copy link"; }, 1500);
    });
  }

  window.__explore = {
    get state() { return state; },
    get inputSeq() { return inputSeq; },
    rendered: 0,
    // Resolves (with performance.now()) once the numbers and the plot marker show input `seq`.
    waitFor(seq) {
      return new Promise((resolve) => {
        if (cmp.rendered >= seq) resolve(performance.now()); else waiters.push({ seq, resolve });
      });
    },
    curveShown() { return crv.shownKey !== null && crv.shownKey === crv.wantedKey && !crv.inFlight; },
    stateQuery,
  };

  syncControls();
  wire();
  $("link").value = location.origin + location.pathname + "?" + stateQuery();
  changed(true);
})();
