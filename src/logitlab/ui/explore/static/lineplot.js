// logitlab explore: a small 2D canvas line-plot renderer for the explorer's plots.
//
// It draws the subset of a Plotly-style figure (`traces` + `layout`) that the page uses, in a
// few milliseconds: line traces (null gaps, colour, width, dash), marker traces (square /
// triangle-down) on an overlay axis `y2` with range [0, 1], a linear x axis with a fixed
// range, a linear (autorange) or log (decades as powers of ten) y axis, rect and line shapes,
// annotations, a horizontal legend below the plot, hover (the nearest point) and a
// "download PNG" button.  Numbers are never computed here: it places what it is given.
//
//   LinePlot.react(div, traces, layout) -> Promise   draw (or redraw) the figure into div
//   LinePlot.purge(div)                               remove it
//   LinePlot.hoverAt(div, px, py)                     the nearest point to (px, py) in div
//
// After a draw the div keeps `data` and `layout` (what was given) and `_fullLayout` with
// `xaxis`, `yaxis`, `yaxis2` ({range, type, _offset, _length, c2p, p2c, tickvals, ticktext}),
// as Plotly's graph divs do; it fires an "afterplot" event after every draw (a resize redraw
// included).  Plain JS, no build step, no dependencies.
"use strict";
(function (global) {
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  const AXIS_COLOR = "#444", GRID_COLOR = "#eceff2", TEXT_COLOR = "#333";
  const SUP = { "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷",
    "8": "⁸", "9": "⁹", "-": "⁻" };
  const MINUS = "\u2212";

  // ---- numbers on axes ------------------------------------------------------------------
  const sup = (n) => String(n).split("").map((c) => SUP[c]).join("");
  const withMinus = (s) => (s.startsWith("-") ? MINUS + s.slice(1) : s);
  // The smallest of 1, 2, 5 x 10^k that is at least `raw`.
  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw * (1 - 1e-9)) return m * p;
    return 10 * p;
  }
  const nextStep = (step) => niceStep(step * 1.0001);
  // Tick values k * step inside [lo, hi] and their labels (decimals enough for the step).
  function linearTicks(lo, hi, step) {
    const vals = [], text = [];
    const k0 = Math.ceil(lo / step - 1e-9), k1 = Math.floor(hi / step + 1e-9);
    const e = Math.floor(Math.log10(step) + 1e-9);
    const big = Math.max(Math.abs(lo), Math.abs(hi));
    const sci = big >= 1e5 || e < -4;
    for (let k = k0; k <= k1 && vals.length < 1000; k++) {
      const v = k * step;
      vals.push(v);
      if (k === 0) { text.push("0"); continue; }
      if (sci) {
        const ex = Math.floor(Math.log10(Math.abs(v)) + 1e-9);
        const digits = Math.max(0, ex - e);
        let m = (v / Math.pow(10, ex)).toFixed(digits);
        if (m.includes(".")) m = m.replace(/0+$/, "").replace(/\.$/, "");
        text.push(withMinus((m === "1" ? "" : m === "-1" ? "-" : m + "×") + "10" + sup(ex)));
      } else {
        let t = v.toFixed(Math.max(0, -e));
        if (t.includes(".")) t = t.replace(/0+$/, "").replace(/\.$/, "");
        text.push(withMinus(t));
      }
    }
    return { vals, text };
  }
  // Decades 10^n inside [lo, hi] (log10 units), every `every`-th one.
  function logTicks(lo, hi, every) {
    const vals = [], text = [];
    for (let n = Math.ceil(lo - 1e-9); n <= Math.floor(hi + 1e-9); n++) {
      if (n % every !== 0) continue;
      vals.push(n);
      text.push(n === 0 ? "1" : "10" + sup(n));
    }
    return { vals, text };
  }
  // Short text for a hovered value.
  function short(v, fmt) {
    if (v == null) return "";
    if (typeof v !== "number") return String(v);
    const m = fmt && /^\.(\d+)([gef])$/.exec(fmt);
    if (m) {
      const d = Number(m[1]);
      return m[2] === "e" ? v.toExponential(d) : m[2] === "f" ? v.toFixed(d) : String(Number(v.toPrecision(d)));
    }
    return String(Number(v.toPrecision(8)));
  }

  // ---- styles ------------------------------------------------------------------------------
  // Plotly's dash patterns, scaled with the line width as Plotly does.
  function dashArray(dash, width) {
    const w = Math.max(width, 3);
    switch (dash) {
      case "dot": return [w, w];
      case "dash": return [3 * w, 3 * w];
      case "longdash": return [5 * w, 5 * w];
      case "dashdot": return [3 * w, w, w, w];
      case "longdashdot": return [5 * w, 2 * w, w, 2 * w];
      default: return [];
    }
  }
  const font = (size, weight) => `${weight ? weight + " " : ""}${size}px ${FONT}`;
  // Setting a context's font parses it each time: set only a change (the canvas's state is
  // reset, and the cache with it, when its size changes).
  function setFont(ctx, f) { if (ctx._lpFont !== f) { ctx.font = f; ctx._lpFont = f; } }
  function injectStyle() {
    if (document.getElementById("lineplot-style")) return;
    const s = document.createElement("style");
    s.id = "lineplot-style";
    s.textContent = [
      ".lp-canvas { position: absolute; left: 0; top: 0; display: block; }",
      ".lp-tip { position: absolute; z-index: 10; pointer-events: none; background: rgba(255,255,255,.95);",
      "  border: 1px solid #888; border-radius: 3px; padding: 2px 5px; font: 11px " + FONT + ";",
      "  white-space: pre; color: #111; box-shadow: 0 1px 3px rgba(0,0,0,.15); }",
      ".lp-png { position: absolute; right: 4px; top: 2px; z-index: 11; display: none; font: 11px " + FONT + ";",
      "  padding: 0 5px; border: 1px solid #ccd; border-radius: 3px; background: rgba(255,255,255,.9); cursor: pointer; }",
      "@media (hover: hover) and (pointer: fine) and (min-width: 700px) { :hover > .lp-png { display: block; } }",
    ].join("\n");
    document.head.append(s);
  }

  // ---- axes -------------------------------------------------------------------------------
  // An axis mapping data values to pixels inside the plot area (Plotly's names: c2p maps a
  // data value to a pixel from the area's start, p2c is its inverse; `range` of a log axis is
  // in log10 units, as Plotly's).
  function makeAxis(type, range, offset, length, flip) {
    const [r0, r1] = range;
    const lin = type === "log" ? (v) => (v > 0 ? Math.log10(v) : NaN) : (v) => v;
    const unlin = type === "log" ? (l) => Math.pow(10, l) : (l) => l;
    const span = r1 - r0;
    const l2p = flip ? (l) => ((r1 - l) / span) * length : (l) => ((l - r0) / span) * length;
    const p2l = flip ? (p) => r1 - (p / length) * span : (p) => r0 + (p / length) * span;
    return { type, range: [r0, r1], _offset: offset, _length: length,
      c2p: (v) => l2p(lin(v)), p2c: (p) => unlin(p2l(p)), l2p, tickvals: [], ticktext: [] };
  }
  // Autorange of a y axis over the line traces' finite values (positive ones on a log axis),
  // padded by 5% of the span on each side (`key` "x": the x axis, unpadded, as Plotly's for lines).
  function autorange(traces, log, key = "y", padding = 0.05) {
    let lo = Infinity, hi = -Infinity;
    for (const t of traces) {
      if (t.yaxis === "y2" || !t[key]) continue;
      for (const v of t[key]) {
        if (v == null || !Number.isFinite(v) || (log && !(v > 0))) continue;
        const l = log ? Math.log10(v) : v;
        if (l < lo) lo = l;
        if (l > hi) hi = l;
      }
    }
    if (lo === Infinity) return log ? [0, 1] : [-1, 1];
    if (lo === hi) { const d = log ? 0.5 : Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    const pad = padding * (hi - lo);
    return [lo - pad, hi + pad];
  }

  // ---- the figure --------------------------------------------------------------------------
  function text(ctx, s, x, y, align, baseline) {
    ctx.textAlign = align; ctx.textBaseline = baseline; ctx.fillText(s, x, y);
  }
  function fitText(ctx, s, size, weight, maxWidth) {
    for (let f = size; f >= 8; f--) {
      setFont(ctx, font(f, weight));
      if (ctx.measureText(s).width <= maxWidth) return s;
    }
    let t = s;
    while (t.length > 1 && ctx.measureText(t + "…").width > maxWidth) t = t.slice(0, -1);
    return t + "…";
  }
  const titleText = (t) => (t == null ? "" : typeof t === "string" ? t : t.text || "");
  const titleSize = (t, d) => (t && t.font && t.font.size) || d;
  function legendItems(traces, layout) {
    const items = traces.filter((t) => t.showlegend !== false && t.name != null && t.mode !== "markers");
    const show = layout.showlegend != null ? layout.showlegend : items.length > 1;
    return show ? items : [];
  }
  // Legend entries laid out in rows across `width`: [{t, x, row}], rows.
  function layoutLegend(ctx, items, width, size) {
    setFont(ctx, font(size));
    const out = [];
    let x = 0, row = 0;
    for (const t of items) {
      const w = 34 + ctx.measureText(t.name).width + 12;
      if (x > 0 && x + w > width) { x = 0; row += 1; }
      out.push({ t, x, row });
      x += w;
    }
    return { entries: out, rows: items.length ? row + 1 : 0 };
  }

  function draw(gd) {
    const st = gd._lp;
    const traces = gd.data, layout = gd.layout;
    const W = Math.max(10, st.w), H = Math.max(10, st.h);
    const dpr = global.devicePixelRatio || 1;
    const cv = st.canvas;
    const pw = Math.round(W * dpr), ph = Math.round(H * dpr);
    if (cv.width !== pw || cv.height !== ph) { cv.width = pw; cv.height = ph; st.ctx._lpFont = null; }
    cv.style.width = W + "px"; cv.style.height = H + "px";
    const ctx = st.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);

    const m = { l: 52, r: 8, t: 26, b: 34, ...(layout.margin || {}) };
    const xl = layout.xaxis || {}, yl = layout.yaxis || {};
    const tickSize = 11;
    const xTitle = titleText(xl.title), yTitle = titleText(yl.title);
    const xTitleSize = titleSize(xl.title, 12), yTitleSize = titleSize(yl.title, 12);
    // bottom: x tick labels, the x title, the legend
    const items = legendItems(traces, layout);
    const legendSize = (layout.legend && layout.legend.font && layout.legend.font.size) || 11;
    const legend = layoutLegend(ctx, items, W - 12, legendSize);
    const legendH = legend.rows * (legendSize + 7);
    const xBand = tickSize + 6 + (xTitle ? xTitleSize + 4 : 0);
    const b = Math.max(legend.rows ? xBand + legendH + 6 : m.b, xBand + 2);
    const top = m.t, plotH = Math.max(10, H - top - b);

    // y axis: range, ticks, and the left margin its labels need
    const ylog = yl.type === "log";
    const yrange = yl.range && yl.autorange !== true ? yl.range.slice() : autorange(traces, ylog);
    let yt;
    if (ylog) {
      const decades = Math.floor(yrange[1]) - Math.ceil(yrange[0]) + 1;
      let every = 1;
      while (decades / every > Math.max(2, plotH / (tickSize + 14))) every += 1;
      yt = logTicks(yrange[0], yrange[1], every);
    } else {
      let step = niceStep((yrange[1] - yrange[0]) / Math.max(2, plotH / 40));
      yt = linearTicks(yrange[0], yrange[1], step);
      while (yt.vals.length > 1 && plotH / ((yrange[1] - yrange[0]) / step) < tickSize + 6) {
        step = nextStep(step); yt = linearTicks(yrange[0], yrange[1], step);
      }
    }
    setFont(ctx, font(tickSize));
    const yTickW = Math.max(0, ...yt.text.map((s) => ctx.measureText(s).width));
    const l = Math.max(m.l, Math.ceil(yTickW + 6 + (yTitle ? yTitleSize + 6 : 0) + 2));
    const r = m.r;
    const plotW = Math.max(10, W - l - r);

    const xrange = xl.range ? xl.range.slice() : autorange(traces, false, "x", 0);
    const xa = makeAxis("linear", xrange, l, plotW, false);
    const ya = makeAxis(ylog ? "log" : "linear", yrange, top, plotH, true);
    const y2 = makeAxis("linear", [0, 1], top, plotH, true);
    ya.tickvals = yt.vals; ya.ticktext = yt.text;
    // x ticks: about one per 60 px, wider apart until their labels (centred under the tick,
    // moved inwards at the canvas's edges) keep 8 px apart
    const labelBoxes = (t) => t.vals.map((v, k) => {
      const w = ctx.measureText(t.text[k]).width;
      const x = Math.min(W - w / 2 - 1, Math.max(w / 2 + 1, l + xa.c2p(v)));
      return [x - w / 2, x + w / 2];
    });
    let xstep = niceStep((xrange[1] - xrange[0]) / Math.max(1, plotW / 60));
    let xt = linearTicks(xrange[0], xrange[1], xstep), boxes = labelBoxes(xt);
    for (let k = 0; k < 20 && xt.vals.length > 2; k++) {
      if (boxes.every((bx, i) => i === 0 || boxes[i - 1][1] + 8 <= bx[0])) break;
      xstep = nextStep(xstep); xt = linearTicks(xrange[0], xrange[1], xstep); boxes = labelBoxes(xt);
    }
    xa.tickvals = xt.vals; xa.ticktext = xt.text; xa._labelboxes = boxes;
    gd._fullLayout = { width: W, height: H, margin: { l, r, t: top, b }, xaxis: xa, yaxis: ya, yaxis2: y2 };

    const X = (v) => l + xa.c2p(v);
    const Yp = (f) => top + (1 - f) * plotH;  // paper fraction
    // grid
    ctx.lineWidth = 1;
    ctx.strokeStyle = GRID_COLOR;
    ctx.beginPath();
    for (const v of xt.vals) { const x = Math.round(X(v)) + 0.5; ctx.moveTo(x, top); ctx.lineTo(x, top + plotH); }
    for (const v of yt.vals) { const y = Math.round(top + ya.l2p(v)) + 0.5; ctx.moveTo(l, y); ctx.lineTo(l + plotW, y); }
    ctx.stroke();
    if (!ylog && yl.zeroline !== false && yrange[0] < 0 && yrange[1] > 0) {
      ctx.strokeStyle = yl.zerolinecolor || "#bbb";
      ctx.beginPath();
      const y = Math.round(top + ya.c2p(0)) + 0.5;
      ctx.moveTo(l, y); ctx.lineTo(l + plotW, y); ctx.stroke();
    }

    const shapes = layout.shapes || [];
    ctx.save();
    ctx.beginPath(); ctx.rect(l, top, plotW, plotH); ctx.clip();
    for (const s of shapes) if (s.layer === "below") drawShape(ctx, s, X, Yp, ya, top);
    for (const t of traces) if (t.yaxis !== "y2" && t.mode !== "markers") drawLine(ctx, t, X, ya, top);
    for (const s of shapes) if (s.layer !== "below") drawShape(ctx, s, X, Yp, ya, top);
    ctx.restore(); ctx._lpFont = null;  // the font too
    for (const t of traces) if (t.mode === "markers") drawMarkers(ctx, t, X, t.yaxis === "y2" ? y2 : ya, top, l, plotW);
    for (const a of layout.annotations || []) drawAnnotation(ctx, a, X, Yp, ya, top);

    // axes lines, ticks and labels
    ctx.strokeStyle = AXIS_COLOR; ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(l, top + plotH + 0.5); ctx.lineTo(l + plotW, top + plotH + 0.5);
    ctx.moveTo(l - 0.5, top); ctx.lineTo(l - 0.5, top + plotH);
    for (const v of xt.vals) { const x = Math.round(X(v)) + 0.5; ctx.moveTo(x, top + plotH); ctx.lineTo(x, top + plotH + 4); }
    for (const v of yt.vals) { const y = Math.round(top + ya.l2p(v)) + 0.5; ctx.moveTo(l - 4, y); ctx.lineTo(l, y); }
    ctx.stroke();
    ctx.fillStyle = TEXT_COLOR;
    setFont(ctx, font(tickSize));
    xt.vals.forEach((v, k) => text(ctx, xt.text[k], (boxes[k][0] + boxes[k][1]) / 2, top + plotH + 5, "center", "top"));
    yt.vals.forEach((v, k) => text(ctx, yt.text[k], l - 6, top + ya.l2p(v), "right", "middle"));
    if (xTitle) {
      const s = fitText(ctx, xTitle, xTitleSize, "", plotW);
      text(ctx, s, l + plotW / 2, top + plotH + tickSize + 7, "center", "top");
    }
    if (yTitle) {
      ctx.save();
      ctx.translate(l - yTickW - 8 - yTitleSize / 2, top + plotH / 2);
      ctx.rotate(-Math.PI / 2);
      const s = fitText(ctx, yTitle, yTitleSize, "", plotH);
      text(ctx, s, 0, 0, "center", "middle");
      ctx.restore(); ctx._lpFont = null;  // the font too
    }
    // the plot's title
    const tl = layout.title || {};
    const title = titleText(tl);
    if (title) {
      const size = titleSize(tl, 13);
      const anchor = tl.xanchor === "left" ? "left" : tl.xanchor === "right" ? "right" : "center";
      const x = (tl.x != null ? tl.x : 0.5) * W;
      const room = anchor === "center" ? 2 * Math.min(x, W - x) : anchor === "left" ? W - x - 4 : x;
      const s = fitText(ctx, title, size, "", room);
      const y = tl.y != null ? (1 - tl.y) * H : Math.max(2, (top - size) / 2);
      text(ctx, s, x, y, anchor, "top");
    }
    // legend
    if (legend.rows) {
      const y0 = top + plotH + xBand + 4;
      setFont(ctx, font(legendSize));
      for (const { t, x, row } of legend.entries) {
        const y = y0 + row * (legendSize + 7) + (legendSize + 4) / 2;
        const ln = t.line || {};
        const w = Math.min(ln.width || 2, 3);
        ctx.strokeStyle = ln.color || "#444"; ctx.lineWidth = w;
        ctx.setLineDash(dashArray(ln.dash, w));
        ctx.beginPath(); ctx.moveTo(8 + x, y); ctx.lineTo(8 + x + 28, y); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = TEXT_COLOR;
        text(ctx, t.name, 8 + x + 34, y, "left", "middle");
      }
    }
    st.canvas.setAttribute("aria-label", describe(traces, layout, xa, ya));
  }

  function drawLine(ctx, t, X, ya, top) {
    const ln = t.line || {};
    const w = ln.width != null ? ln.width : 2;
    ctx.strokeStyle = ln.color || "#1f77b4";
    ctx.lineWidth = w;
    ctx.lineJoin = "round"; ctx.lineCap = "butt";
    ctx.setLineDash(dashArray(ln.dash, w));
    ctx.beginPath();
    const xs = t.x, ys = t.y;
    let pen = false;
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      const py = v == null ? NaN : ya.c2p(v);
      if (!Number.isFinite(py) || xs[i] == null) { pen = false; continue; }
      const px = X(xs[i]), y = top + py;
      if (pen) ctx.lineTo(px, y);
      else {
        const next = ys[i + 1];
        if (next == null || !Number.isFinite(ya.c2p(next))) { ctx.moveTo(px - w / 2, y); ctx.lineTo(px + w / 2, y); }
        else ctx.moveTo(px, y);
        pen = true;
      }
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  function drawMarkers(ctx, t, X, ax, top, l, plotW) {
    const mk = t.marker || {};
    const size = mk.size || 6;
    ctx.globalAlpha = mk.opacity != null ? mk.opacity : 1;
    for (let i = 0; i < t.x.length; i++) {
      const x = X(t.x[i]), y = top + ax.c2p(t.y[i]);
      if (!Number.isFinite(x) || !Number.isFinite(y) || x < l - size || x > l + plotW + size) continue;
      ctx.fillStyle = Array.isArray(mk.color) ? mk.color[i] : mk.color || "#1f77b4";
      ctx.beginPath();
      const h = size / 2;
      if (mk.symbol === "triangle-down") { ctx.moveTo(x - h, y - h); ctx.lineTo(x + h, y - h); ctx.lineTo(x, y + h); ctx.closePath(); }
      else if (mk.symbol === "square") ctx.rect(x - h, y - h, size, size);
      else ctx.arc(x, y, h, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
  // y of a shape / annotation: paper fraction (yref "paper") or data value on the y axis
  const shapeY = (ref, v, Yp, ya, top) => (ref === "paper" ? Yp(v) : top + ya.c2p(v));
  function drawShape(ctx, s, X, Yp, ya, top) {
    const x0 = X(s.x0), x1 = X(s.x1);
    const y0 = shapeY(s.yref, s.y0, Yp, ya, top), y1 = shapeY(s.yref, s.y1, Yp, ya, top);
    ctx.globalAlpha = s.opacity != null ? s.opacity : 1;
    if (s.type === "rect") {
      if (s.fillcolor) { ctx.fillStyle = s.fillcolor; ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0)); }
    }
    const ln = s.line || {};
    const w = ln.width != null ? ln.width : s.type === "line" ? 2 : 0;
    if (w > 0) {
      ctx.strokeStyle = ln.color || "#444"; ctx.lineWidth = w;
      ctx.setLineDash(dashArray(ln.dash, w));
      ctx.beginPath();
      if (s.type === "rect") ctx.rect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      else { ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); }
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.globalAlpha = 1;
  }
  function drawAnnotation(ctx, a, X, Yp, ya, top) {
    const f = a.font || {};
    const size = f.size || 12;
    setFont(ctx, font(size));
    const s = String(a.text);
    const w = ctx.measureText(s).width, h = size + 2;
    const x = X(a.x), y = shapeY(a.yref, a.y, Yp, ya, top);
    const fl = ctx.canvas.parentNode._fullLayout;  // kept inside the canvas
    const want = a.xanchor === "left" ? x : a.xanchor === "right" ? x - w - 2 : x - w / 2 - 1;
    const left = Math.max(0, Math.min(fl.width - w - 2, want));
    const up = a.yanchor === "top" ? y : a.yanchor === "bottom" ? y - h : y - h / 2;
    if (a.bgcolor) { ctx.fillStyle = a.bgcolor; ctx.fillRect(left, up, w + 2, h); }
    ctx.fillStyle = f.color || TEXT_COLOR;
    text(ctx, s, left + 1, up + h / 2, "left", "middle");
  }
  function describe(traces, layout, xa, ya) {
    const names = traces.filter((t) => t.mode !== "markers" && t.name).map((t) => t.name);
    const fmt = (v) => String(Number(v.toPrecision(3)));
    const yr = ya.type === "log" ? `10^${fmt(ya.range[0])} to 10^${fmt(ya.range[1])} (log)` : `${fmt(ya.range[0])} to ${fmt(ya.range[1])}`;
    return `${titleText(layout.title) || "plot"}: ${names.join(", ") || "no curves"}; `
      + `${titleText((layout.xaxis || {}).title) || "x"} from ${fmt(xa.range[0])} to ${fmt(xa.range[1])}, `
      + `${titleText((layout.yaxis || {}).title) || "y"} from ${yr}`;
  }

  // ---- hover -------------------------------------------------------------------------------
  // The nearest drawn point to (px, py) (pixels from the div's top-left) within 40 px:
  // {trace, index, name, x, y, text}, or null.
  function hoverAt(gd, px, py) {
    const fl = gd._fullLayout;
    if (!fl) return null;
    const xa = fl.xaxis;
    let best = null, bestD = 40 * 40;
    gd.data.forEach((t, ti) => {
      const ax = t.yaxis === "y2" ? fl.yaxis2 : fl.yaxis;
      for (let i = 0; i < t.x.length; i++) {
        if (t.y[i] == null) continue;
        const x = xa._offset + xa.c2p(t.x[i]), y = ax._offset + ax.c2p(t.y[i]);
        if (!Number.isFinite(y) || y < ax._offset - 2 || y > ax._offset + ax._length + 2) continue;
        const d = (x - px) * (x - px) + (y - py) * (y - py);
        if (d < bestD) { bestD = d; best = [ti, i]; }
      }
    });
    if (!best) return null;
    const [ti, i] = best;
    const t = gd.data[ti];
    return { trace: ti, index: i, name: t.name, x: t.x[i], y: t.y[i], text: hoverText(t, i) };
  }
  // The trace's hovertemplate filled in (%{x}, %{y}, %{y:.3g}, %{text}; <br> a new line;
  // <extra>NAME</extra> the name, first), or "name: x, y".
  function hoverText(t, i) {
    const tpl = t.hovertemplate;
    const val = (k) => (k === "x" ? t.x[i] : k === "y" ? t.y[i] : Array.isArray(t.text) ? t.text[i] : t.text);
    if (!tpl) return `${t.name}\nz=${short(t.x[i])}, ${short(t.y[i])}`;
    let extra = "";
    let body = tpl.replace(/<extra>(.*?)<\/extra>/, (_, e) => { extra = e; return ""; });
    body = body.replace(/%\{(\w+)(?::([^}]*))?\}/g, (_, k, f) => short(val(k), f)).replace(/<br\s*\/?>/g, "\n");
    return extra ? `${extra}\n${body}` : body;
  }
  function onMove(gd, e) {
    const st = gd._lp;
    const box = gd.getBoundingClientRect();
    const px = e.clientX - box.left, py = e.clientY - box.top;
    const h = hoverAt(gd, px, py);
    if (!h) { st.tip.hidden = true; return; }
    st.tip.textContent = h.text;
    st.tip.hidden = false;
    const t = gd.data[h.trace];
    const fl = gd._fullLayout;
    const ax = t.yaxis === "y2" ? fl.yaxis2 : fl.yaxis;
    const x = fl.xaxis._offset + fl.xaxis.c2p(h.x), y = ax._offset + ax.c2p(h.y);
    const w = st.tip.offsetWidth;
    st.tip.style.left = (x + 10 + w > st.w ? x - 10 - w : x + 10) + "px";
    st.tip.style.top = Math.max(0, y - 10) + "px";
    st.tip.style.borderColor = (t.line && t.line.color) || "#888";
  }

  // ---- the div ------------------------------------------------------------------------------
  function setup(gd) {
    injectStyle();
    const canvas = document.createElement("canvas");
    canvas.className = "lp-canvas";
    canvas.setAttribute("role", "img");
    const tip = document.createElement("div");
    tip.className = "lp-tip"; tip.hidden = true;
    const png = document.createElement("button");
    png.type = "button"; png.className = "lp-png"; png.textContent = "PNG";
    png.title = "download this plot as PNG";
    png.setAttribute("aria-label", "download this plot as PNG");
    png.addEventListener("click", (e) => {
      e.stopPropagation();
      canvas.toBlob((blob) => {
        if (!blob) return;
        const a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = (gd.id || "plot") + ".png";
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 1000);
      });
    });
    gd.prepend(canvas);
    gd.append(tip, png);
    const st = { canvas, ctx: canvas.getContext("2d"), tip, png, w: gd.clientWidth, h: gd.clientHeight, ro: null };
    gd._lp = st;
    if (!drawn.size) watchRatio();
    drawn.add(gd);
    canvas.addEventListener("mousemove", (e) => onMove(gd, e));
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    if (typeof ResizeObserver !== "undefined") {
      st.ro = new ResizeObserver(() => {
        st.observed = true;
        const w = gd.clientWidth, h = gd.clientHeight;
        if (w === st.w && h === st.h) return;
        st.w = w; st.h = h;
        if (gd.data) { draw(gd); afterplot(gd); }
      });
      st.ro.observe(gd);
    }
    return st;
  }
  function afterplot(gd) { gd.dispatchEvent(new CustomEvent("afterplot")); }
  // Every drawn div is redrawn when the device pixel ratio changes (browser zoom, another
  // screen), so the canvases stay crisp.
  const drawn = new Set();
  function watchRatio() {
    if (!global.matchMedia) return;
    const mq = global.matchMedia(`(resolution: ${global.devicePixelRatio || 1}dppx)`);
    const again = () => {
      mq.removeEventListener("change", again);
      for (const gd of drawn) if (gd.isConnected && gd.data) { draw(gd); afterplot(gd); }
      watchRatio();
    };
    mq.addEventListener("change", again);
  }
  function react(gd, traces, layout) {
    if (typeof gd === "string") gd = document.getElementById(gd);
    const st = gd._lp || setup(gd);
    // The size the resize observer last reported (reading it here would force a layout of
    // the page on every redraw); a change not yet reported is redrawn when it is, before
    // the frame is painted.
    if (!st.observed) { st.w = gd.clientWidth; st.h = gd.clientHeight; }
    gd.data = traces;
    gd.layout = layout || {};
    draw(gd);
    st.tip.hidden = true;
    afterplot(gd);
    return Promise.resolve(gd);
  }
  function purge(gd) {
    if (typeof gd === "string") gd = document.getElementById(gd);
    const st = gd && gd._lp;
    if (!st) return;
    if (st.ro) st.ro.disconnect();
    drawn.delete(gd);
    st.canvas.remove(); st.tip.remove(); st.png.remove();
    delete gd._lp; delete gd._fullLayout; delete gd.data; delete gd.layout;
  }

  global.LinePlot = { react, purge, hoverAt, niceStep, linearTicks, logTicks };
})(window);
