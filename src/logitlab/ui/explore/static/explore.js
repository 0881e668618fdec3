// logitlab explore: the page.  Plain JS, no build step.  Every number shown comes from the
// server (/api/compare, /api/curve, /api/breakpoints, /api/lesson, which call the analysis
// core and the frameworks); this file only formats and places them.
"use strict";
// The loss mode (bce | softmax-ce | focal) from the link; the modes code at the end runs them.
window.__lossMode = (function () {
  const m = new URLSearchParams(location.search).get("mode");
  return m === "softmax-ce" || m === "focal" ? m : "bce";
})();
(function () {
  const Z_LIMIT = 1000;  // the API's largest |z| for a curve (MAX_CURVE_Z)
  const MAX_UI_ELEMENTS = 16;
  const DEFAULTS = {
    z: [-2, 2], y: [0.3, 0.7], dtype: "float32", reduction: "mean",
    weight: "", pos_weight: "", zlo: -30, zhi: 30, sel: 0, fw: "", f: [],
    step: "agree", errq: "value", errk: "ulp",
  };
  const DTYPES = ["float16", "bfloat16", "float32", "float64"];
  const REDUCTIONS = ["mean", "sum", "none"];
  const STEP_KEYS = ["agree", "break", "naive", "vanish"];
  const COLORS = {
    "torch.probabilities": "#d32f2f", "torch.logits": "#1565c0", "torch.naive": "#ef8f00",
    "stable.bce": "#2e7d32", "numpy.naive": "#6a1b9a",
  };
  const PALETTE = ["#00897b", "#5d4037", "#c2185b", "#558b2f", "#455a64", "#f9a825",
    "#26c6da", "#8d6e63", "#283593", "#ad1457"];
  // Overlapping curves stay distinguishable: each row its own dash pattern and width.
  const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
  const WIDTHS = [4, 2.5, 2, 2, 1.8, 1.8];
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

  // ---- numbers typed by people ------------------------------------------------------------
  // {ok, value} for a whole number (Infinity / -Infinity / inf included), {partial} for text on
  // the way to one ("-", "1e", "1.", "Inf"), {bad} otherwise, {empty} for nothing.
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  const PARTIAL = /^[+-]?(\d*\.?\d*(e[+-]?)?)$/i;
  const INF = /^[+-]?(inf|infinity)$/i;
  const INF_PARTIAL = /^[+-]?(i(n(f(i(n(i(t(y)?)?)?)?)?)?)?)?$/i;
  function parseNum(text) {
    const t = String(text).trim();
    if (t === "") return { empty: true };
    if (INF.test(t)) return { ok: true, value: t.startsWith("-") ? -Infinity : Infinity };
    if (NUMBER.test(t)) return { ok: true, value: Number(t) };
    if (PARTIAL.test(t) || INF_PARTIAL.test(t)) return { partial: true };
    return { bad: true };
  }
  const show = (v) => (v === Infinity ? "Infinity" : v === -Infinity ? "-Infinity" : String(v));
  // JSON with the API's non-standard Infinity literals (JSON.stringify writes null for them).
  function toJSON(obj) {
    return JSON.stringify(obj, (k, v) => (typeof v === "number" && !Number.isFinite(v)
      ? (v > 0 ? "__+INF__" : "__-INF__") : v))
      .replace(/"__\+INF__"/g, "Infinity").replace(/"__-INF__"/g, "-Infinity");
  }

  // ---- state <-> URL ------------------------------------------------------------------
  // A bad parameter is reported by name and ignored; everything else in the URL is kept.
  function parseList(text, name, errors) {
    const items = text.split(",").map((s) => s.trim());
    const out = [];
    for (const s of items) {
      const p = parseNum(s);
      if (!p.ok) { errors.push(`${name}: “${s}” is not a number`); return null; }
      out.push(p.value);
    }
    return out.length ? out : null;
  }
  function readQuery(q) {
    const s = JSON.parse(JSON.stringify(DEFAULTS));
    const errors = [];
    const has = (k) => q.get(k) !== null && q.get(k) !== "";
    if (has("step")) {
      if (STEP_KEYS.includes(q.get("step"))) s.step = q.get("step");
      else errors.push(`step: “${q.get("step")}” is not one of ${STEP_KEYS.join(", ")}`);
    } else if (q.toString() !== "") s.step = "";
    const z = has("z") ? parseList(q.get("z"), "z", errors) : null;
    const y = has("y") ? parseList(q.get("y"), "y", errors) : null;
    if (z) s.z = z.slice(0, MAX_UI_ELEMENTS);
    if (y) s.y = y.slice(0, MAX_UI_ELEMENTS);
    while (s.y.length < s.z.length) s.y.push(s.y[s.y.length - 1] ?? 0.5);
    s.y.length = s.z.length;
    for (const [key, list] of [["dtype", DTYPES], ["reduction", REDUCTIONS]]) {
      if (!has(key)) continue;
      if (list.includes(q.get(key))) s[key] = q.get(key);
      else errors.push(`${key}: “${q.get(key)}” is not one of ${list.join(", ")}`);
    }
    for (const [key, name] of [["w", "weight"], ["pw", "pos_weight"]]) {
      if (!has(key)) continue;
      if (parseNum(q.get(key)).ok) s[name] = q.get(key).trim();
      else errors.push(`${key}: “${q.get(key)}” is not a number`);
    }
    if (q.get("fw") === "all") s.fw = "all";
    if (has("f")) s.f = q.get("f").split(",").map((t) => t.trim()).filter((t) => t);
    if (q.get("view") === "full") { s.zlo = -300; s.zhi = 300; }
    const range = {};
    for (const k of ["zlo", "zhi"]) {
      if (!has(k)) continue;
      const p = parseNum(q.get(k));
      if (p.ok && Number.isFinite(p.value) && Math.abs(p.value) <= Z_LIMIT) range[k] = p.value;
      else errors.push(`${k}: “${q.get(k)}” is not a finite number in [−${Z_LIMIT}, ${Z_LIMIT}]`);
    }
    const lo = range.zlo ?? s.zlo, hi = range.zhi ?? s.zhi;
    if (lo < hi) { s.zlo = lo; s.zhi = hi; } else errors.push(`zlo, zhi: ${lo} is not below ${hi}`);
    if (has("sel")) {
      const sel = Number(q.get("sel"));
      if (Number.isInteger(sel) && sel >= 0 && sel < s.z.length) s.sel = sel;
      else errors.push(`sel: “${q.get("sel")}” is not an element (0 … ${s.z.length - 1})`);
    }
    if (q.get("err") === "rel") s.errk = "rel";
    if (q.get("errq") === "grad") s.errq = "grad";
    return { state: s, errors };
  }
  function stateQuery() {
    const q = new URLSearchParams();
    if (state.step) q.set("step", state.step);
    q.set("z", state.z.map(show).join(","));
    q.set("y", state.y.map(show).join(","));
    q.set("dtype", state.dtype);
    q.set("reduction", state.reduction);
    if (state.weight !== "") q.set("w", state.weight);
    if (state.pos_weight !== "") q.set("pw", state.pos_weight);
    q.set("zlo", state.zlo);
    q.set("zhi", state.zhi);
    if (state.sel) q.set("sel", state.sel);
    if (state.fw) q.set("fw", state.fw);
    if (state.f.length) q.set("f", state.f.join(","));
    if (state.errk !== "ulp") q.set("err", state.errk);
    if (state.errq !== "value") q.set("errq", state.errq);
    return q.toString().replace(/%2C/g, ",");
  }
  let urlTimer = null;
  function writeURL(now) {
    // Browsers throttle history.replaceState; while a slider moves, update at most 4x a second.
    const write = () => {
      urlTimer = null;
      // The multi-class and focal modes own the URL while they are shown.
      if (window.__lossMode && window.__lossMode !== "bce") return;
      history.replaceState(null, "", location.pathname + "?" + stateQuery());
      $("link").value = location.href;
    };
    if (now) { if (urlTimer) clearTimeout(urlTimer); write(); return; }
    if (urlTimer) return;
    urlTimer = setTimeout(write, 250);
  }
  function showUrlErrors(errors) {
    const box = $("url-error");
    box.hidden = !errors.length;
    box.textContent = errors.length
      ? "Ignored in the link: " + errors.join("; ") + ". The rest of the link is applied." : "";
  }

  const first = readQuery(new URLSearchParams(location.search));
  let state = first.state;

  // ---- controls -------------------------------------------------------------------------
  function sliderStep() {
    // Resolution tied to the visible range: about 1000-6000 steps across it.
    const span = state.zhi - state.zlo;
    return Math.pow(10, Math.floor(Math.log10(span / 2000)));
  }
  function clampToView(v) { return Math.min(state.zhi, Math.max(state.zlo, v)); }
  // A text box that waits: partial text is no error until blur or Enter.
  function numberBox(input, onValue, opts) {
    const hint = opts && opts.hint;
    const report = (msg) => {
      input.classList.toggle("invalid", !!msg);
      input.title = msg || "";
      if (hint) { hint.textContent = msg || ""; hint.hidden = !msg; }
    };
    input.addEventListener("input", () => {
      const p = parseNum(input.value);
      if (p.ok || (p.empty && opts && opts.allowEmpty)) { report(""); onValue(p.ok ? p.value : null, input.value.trim()); }
      else if (p.partial || p.empty) report("");
    });
    const commit = () => {
      const p = parseNum(input.value);
      if (p.bad || p.partial || (p.empty && !(opts && opts.allowEmpty)))
        report(`${input.getAttribute("aria-label") || input.id}: “${input.value}” is not a number`);
    };
    input.addEventListener("blur", commit);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") commit(); });
  }
  function buildElements() {
    const box = $("elements");
    box.textContent = "";
    const step = sliderStep();
    state.z.forEach((z, i) => {
      const n = sub(i + 1);
      const zr = el("input", { type: "range", min: state.zlo, max: state.zhi, step, class: "z-range",
        value: Number.isFinite(z) ? clampToView(z) : (z > 0 ? state.zhi : state.zlo),
        "data-i": i, ariaLabel: `logit z${i + 1}` });
      const zn = el("input", { type: "text", inputMode: "decimal", autocomplete: "off", class: "num z-num",
        value: show(z), "data-i": i, ariaLabel: `z${i + 1}` });
      const yr = el("input", { type: "range", min: 0, max: 1, step: 0.01, class: "y-range",
        value: state.y[i], "data-i": i, ariaLabel: `target y${i + 1}` });
      const yn = el("input", { type: "text", inputMode: "decimal", autocomplete: "off", class: "num y-num",
        value: show(state.y[i]), "data-i": i, ariaLabel: `y${i + 1}` });
      const hint = el("span", { class: "field-error", hidden: true });
      const rm = el("button", { type: "button", class: "remove", text: "×", title: "remove element",
        disabled: state.z.length <= 1 });
      zr.addEventListener("input", () => { zn.value = zr.value; zn.classList.remove("invalid"); setZ(i, Number(zr.value)); });
      numberBox(zn, (v) => { zr.value = Number.isFinite(v) ? clampToView(v) : (v > 0 ? state.zhi : state.zlo); setZ(i, v); }, { hint });
      yr.addEventListener("input", () => { yn.value = yr.value; yn.classList.remove("invalid"); setY(i, Number(yr.value)); });
      numberBox(yn, (v) => { if (Number.isFinite(v)) yr.value = v; setY(i, v); }, { hint });
      rm.addEventListener("click", () => removeElement(i));
      box.append(el("div", { class: "element", "data-i": i },
        el("span", { class: "lbl", text: "z" + n }), zr, zn, el("span"),
        el("span", { class: "lbl y-lbl", text: "y" + n }), yr, yn,
        state.z.length > 1 ? rm : el("span"), hint));
    });
    $("add").disabled = state.z.length >= MAX_UI_ELEMENTS;
    const sel = $("sel");
    sel.textContent = "";
    state.z.forEach((_, i) => sel.append(el("option", { value: i, text: "z" + sub(i + 1) })));
    sel.value = String(state.sel);
    $("range-note").textContent = `sliders: ${state.zlo} … ${state.zhi} in steps of ${step}`;
  }
  function syncControls() {
    $("dtype").value = state.dtype;
    $("reduction").value = state.reduction;
    $("weight").value = state.weight;
    $("pos_weight").value = state.pos_weight;
    $("all-frameworks").checked = state.fw === "all";
    $("zlo").value = state.zlo;
    $("zhi").value = state.zhi;
    $("errq").value = state.errq;
    $("errk").value = state.errk;
    for (const b of [$("zoom-30"), $("zoom-300")])
      b.classList.toggle("on", Number(b.dataset.lo) === state.zlo && Number(b.dataset.hi) === state.zhi);
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
  function setY(i, v) { state.y[i] = v; changed(i === state.sel); prefetchCompares(i); }
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
  function setView(lo, hi) {
    state.zlo = lo; state.zhi = hi;
    syncControls();
    writeURL();
    scheduleCurve();
  }

  // ---- requests: one in flight per kind; the newest state wins ------------------------
  const optional = (s) => (s === "" ? null : parseNum(s).value);
  const rowsWanted = () => ({
    frameworks: state.fw && !state.f.length ? [state.fw] : null,
    formulations: state.f.length ? state.f : null,
  });
  function compareBody() {
    return {
      logits: state.z, targets: state.y, dtype: state.dtype, reduction: state.reduction,
      weight: optional(state.weight), pos_weight: optional(state.pos_weight),
      // The dots' own values come with the numbers where that costs no second run (one
      // element, or no reduction); otherwise they are asked for once the slider rests.
      element: cheapDots() ? state.sel : null, ...rowsWanted(),
    };
  }
  const cheapDots = () => state.reduction === "none" || (state.z.length === 1 && state.reduction === "mean");
  const dotsReq = { timer: null, seq: 0 };
  function scheduleDots() {
    clearTimeout(dotsReq.timer);
    if (cheapDots()) return;
    const seq = inputSeq;
    dotsReq.timer = setTimeout(async () => {
      if (seq !== inputSeq || localProblem()) return;
      try {
        // The selected element alone, unreduced: the server's one run for it (the whole
        // comparison is already shown), answered from its cache when the slider comes back.
        const i = state.sel;
        const body = { ...compareBody(), logits: [state.z[i]], targets: [state.y[i]],
          reduction: "none", element: 0 };
        const r = await fetch("/api/compare", { method: "POST", headers: { "content-type": "application/json" },
          body: toJSON(body) });
        const data = await r.json();
        if (r.ok && seq === inputSeq) { dots = { ...data.element, index: i }; placeMarkers(); }
      } catch (err) { /* the dots stay hidden; the numbers are shown */ }
    }, 150);
  }
  const cmp = { wanted: 0, inFlight: false, rendered: 0 };
  const waiters = [];
  const idleWaiters = [];
  function scheduleCompare() {
    cmp.wanted = inputSeq;
    if (!cmp.inFlight) sendCompare();
  }
  let busyCount = 0;
  function busy(on) {
    busyCount += on ? 1 : -1;
    if (on) setTimeout(() => { if (busyCount > 0) $("busy").hidden = false; }, 400);
    else if (busyCount === 0) $("busy").hidden = true;
  }
  function localProblem() {
    // Values still being typed are not sent; the page waits for a number.
    for (const v of [...state.z, ...state.y]) if (v == null || Number.isNaN(v)) return true;
    return false;
  }
  async function sendCompare() {
    const seq = cmp.wanted;
    if (localProblem()) { markRendered(seq); return; }
    cmp.inFlight = true;
    busy(true);
    try {
      const r = await fetch("/api/compare", {
        method: "POST", headers: { "content-type": "application/json" }, body: toJSON(compareBody()),
      });
      const data = await r.json();
      if (seq > cmp.rendered) {
        if (r.ok) renderCompare(data); else showError(data, r.status);
        markRendered(seq);
      }
    } catch (err) {
      showError({ detail: String(err) }, 0);
      markRendered(seq);
    } finally {
      busy(false);
      cmp.inFlight = false;
      if (cmp.wanted > seq) sendCompare(); else checkIdle();
    }
  }
  function markRendered(seq) {
    cmp.rendered = Math.max(cmp.rendered, seq);
    window.__explore.rendered = cmp.rendered;
    for (let k = waiters.length - 1; k >= 0; k--) {
      if (waiters[k].seq <= cmp.rendered) { waiters[k].resolve(performance.now()); waiters.splice(k, 1); }
    }
    checkIdle();
  }
  const isIdle = () => cmp.rendered >= inputSeq && !cmp.inFlight
    && crv.shownKey === crv.wantedKey && !crv.inFlight;
  function checkIdle() {
    if (!isIdle()) return;
    while (idleWaiters.length) idleWaiters.pop()(performance.now());
  }

  // Curves answered, kept by request (least recently used first out): a slider going back
  // over values it passed redraws without asking the server again.
  const CURVES_KEPT = 48;
  const crv = { wantedKey: null, shownKey: null, inFlight: false, data: null, kept: new Map() };
  function keepCurve(key, data) {
    crv.kept.delete(key);
    crv.kept.set(key, data);
    while (crv.kept.size > CURVES_KEPT) crv.kept.delete(crv.kept.keys().next().value);
  }
  function curveBody() {
    const span = state.zhi - state.zlo;
    const y = state.y[state.sel];
    return {
      target: Number.isFinite(y) ? y : 0.5, dtype: state.dtype,
      weight: optional(state.weight), pos_weight: optional(state.pos_weight),
      z_min: state.zlo, z_max: state.zhi, points: span <= 100 ? 301 : 601,
      ...rowsWanted(),
    };
  }
  function scheduleCurve() {
    crv.wantedKey = toJSON(curveBody());
    if (!crv.inFlight && crv.wantedKey !== crv.shownKey) sendCurve();
    scheduleBreakpoints();
  }
  async function sendCurve() {
    crv.inFlight = true;
    busy(true);
    const key = crv.wantedKey;
    try {
      let data = crv.kept.get(key), ok = true;
      if (!data) {
        const r = await fetch("/api/curve", {
          method: "POST", headers: { "content-type": "application/json" }, body: key,
        });
        data = await r.json();
        ok = r.ok;
      }
      if (ok) {
        keepCurve(key, data);
        crv.data = data;
        if (crv.wantedKey === key) { await drawCurves(); schedulePrefetch(); }
        crv.shownKey = key;
      } else { crv.shownKey = key; $("curve-note").textContent = "curves: " + errorText(data); }
    } catch (err) {
      console.warn("curves:", err);
      crv.shownKey = key;
      $("curve-note").textContent = "curves: " + String(err);
    } finally {
      busy(false);
      crv.inFlight = false;
      if (crv.wantedKey !== key) sendCurve(); else checkIdle();
    }
  }

  // The y slider's own values (min + k step, as the decimal it shows), nearest `y` first.
  function ySliderValues(i, y) {
    const slider = document.querySelector(`.element[data-i='${i}'] .y-range`);
    if (!slider) return null;
    const lo = Number(slider.min), hi = Number(slider.max), step = Number(slider.step);
    const targets = [];
    for (let k = 0; k <= Math.round((hi - lo) / step); k++) targets.push(Number((lo + k * step).toPrecision(12)));
    targets.sort((a, b) => Math.abs(a - y) - Math.abs(b - y));
    return targets;
  }
  // The y slider's other positions: once the curves have rested, the server computes theirs
  // in the background (nearest first), so that moving y is answered from its cache.
  const pre = { timer: null, key: null };
  function schedulePrefetch() {
    clearTimeout(pre.timer);
    pre.timer = setTimeout(async () => {
      const body = curveBody();
      const { target, ...rest } = body;
      const key = toJSON(rest);
      if (key === pre.key) return;
      const targets = ySliderValues(state.sel, target);
      if (!targets) return;
      const wanted = targets.filter((t) => t !== target && !crv.kept.has(toJSON({ ...body, target: t })));
      if (!wanted.length) return;
      try {
        const r = await fetch("/api/curve/prefetch", {
          method: "POST", headers: { "content-type": "application/json" }, body: toJSON({ ...rest, targets: wanted }),
        });
        if (r.ok) pre.key = key;
      } catch (err) { /* only a cache left cold */ }
    }, 250);
  }

  // The numbers at the y slider's other positions, likewise: when an element's y starts to
  // move, the server computes the comparison with its target at each slider value (nearest
  // first, the rest of the state as shown), so the rest of the drag finds its numbers kept.
  // Asked again only once something else has changed.
  const preCmp = { key: null };
  async function prefetchCompares(i) {
    if (localProblem()) return;
    const compare = compareBody();
    const y = compare.targets[i];
    const key = toJSON({ ...compare, targets: compare.targets.map((t, k) => (k === i ? null : t)), i });
    if (key === preCmp.key) return;  // every input event of a drag: nothing more to do
    const targets = ySliderValues(i, y);
    if (!targets) return;
    preCmp.key = key;
    try {
      const r = await fetch("/api/compare/prefetch", {
        method: "POST", headers: { "content-type": "application/json" },
        body: toJSON({ compare, element: i, targets: targets.filter((t) => t !== y) }),
      });
      if (!r.ok && preCmp.key === key) preCmp.key = null;
    } catch (err) { if (preCmp.key === key) preCmp.key = null; /* only a cache left cold */ }
  }

  // Breakpoints: the core's exact search takes a second or more, so it is asked for after
  // the target rests, answers are kept, and the plots never wait for it.
  const bp = { cache: new Map(), timer: null, key: null, abort: null, inFlight: null };
  function bpKey() {
    const b = curveBody();
    return toJSON({ target: b.target, dtype: b.dtype, weight: b.weight, pos_weight: b.pos_weight,
      frameworks: b.frameworks, formulations: b.formulations });
  }
  function scheduleBreakpoints() {
    const key = bpKey();
    bp.key = key;
    clearTimeout(bp.timer);
    // A search for a target the page has left is stale: abort it (the server then drops
    // it if it has not started), so a fast drag never queues searches.
    if (bp.inFlight !== null && bp.inFlight !== key && bp.abort) bp.abort.abort();
    if (bp.cache.has(key)) return;
    bp.timer = setTimeout(() => fetchBreakpoints(key), 700);
  }
  async function fetchBreakpoints(key) {
    if (bp.cache.has(key)) return;
    bp.cache.set(key, null);  // in flight
    const abort = new AbortController();
    bp.abort = abort; bp.inFlight = key;
    try {
      const r = await fetch("/api/breakpoints", { method: "POST", headers: { "content-type": "application/json" },
        body: key, signal: abort.signal });
      const data = await r.json();
      bp.cache.set(key, r.ok ? data : { error: errorText(data) });
    } catch (err) {
      bp.cache.delete(key);  // aborted or failed: asked again when the target comes back
      return;
    } finally {
      if (bp.abort === abort) { bp.abort = null; bp.inFlight = null; }
    }
    if (key === bp.key && crv.data) drawErr();
  }

  // ---- lesson -----------------------------------------------------------------------------
  // The lesson's steps per dtype, fetched once each (switching dtypes back and forth asks
  // the server nothing new).
  const lesson = { data: null, dtype: null, byDtype: new Map() };
  async function loadLesson() {
    const d = ["float32", "bfloat16", "float16"].includes(state.dtype) ? state.dtype : "float32";
    if (lesson.dtype !== d) {
      let data = lesson.byDtype.get(d);
      if (!data) {
        try {
          const r = await fetch("/api/lesson?dtype=" + d);
          if (!r.ok) return;
          data = await r.json();
        } catch (err) { return; }
        lesson.byDtype.set(d, data);
      }
      if (lesson.dtype === d) return;  // another call got there first
      lesson.data = data;
      lesson.dtype = d;
      fillPresets();
    }
    renderLesson();
  }
  function fillPresets() {
    const sel = $("preset");
    if (sel.options.length > 1) return;
    for (const p of lesson.data.presets) sel.append(el("option", { value: p.query, text: p.label }));
  }
  function currentStep() {
    return lesson.data && lesson.data.steps.find((s) => s.key === state.step);
  }
  function renderLesson() {
    if (!lesson.data) return;
    const links = $("step-links");
    links.replaceChildren(...lesson.data.steps.map((s) => el("a", {
      href: "?" + s.query, text: String(s.number), title: s.title,
      class: s.key === state.step ? "current" : "", "data-step": s.key,
    })));
    for (const a of links.querySelectorAll("a")) {
      a.addEventListener("click", (e) => { e.preventDefault(); applyQuery(a.getAttribute("href").slice(1)); });
    }
    const s = currentStep();
    $("step-title").textContent = s ? `Step ${s.number} of ${lesson.data.steps.length}: ${s.title}` : "Free exploration";
    $("step-move").textContent = s ? s.move : "Pick a step (1-4) or a preset to follow the lesson.";
    $("step-watch").textContent = s ? s.watch : "";
    if (s && s.dtype !== state.dtype) $("step-watch").textContent += ` (the step is written for ${s.dtype}; you chose ${state.dtype}.)`;
    $("step-prev").disabled = !s || s.number <= 1;
    $("step-next").disabled = s ? s.number >= lesson.data.steps.length : false;
    renderWhy();
  }
  function renderWhy() {
    const s = currentStep();
    const box = $("step-why");
    if (!s || !lastData) { box.hidden = true; return; }
    const said = lastData.explanation.filter((t) => t.includes(s.focus));
    box.hidden = !said.length;
    box.setAttribute("data-step", s.key);
    $("step-why-list").replaceChildren(...said.map((t) => el("li", { text: t })));
  }
  function applyQuery(query) {
    const r = readQuery(new URLSearchParams(query));
    state = r.state;
    showUrlErrors(r.errors);
    $("preset").value = "";
    syncControls();
    writeURL(true);
    loadLesson();
    changed(true);
  }
  function gotoStep(delta) {
    const steps = lesson.data ? lesson.data.steps : [];
    const k = steps.findIndex((s) => s.key === state.step);
    const next = steps[k < 0 ? 0 : k + delta];
    if (next) applyQuery(next.query);
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
  // Colour: the worse of the ULP grade and the relative-error grade, with the reason.
  const ULP_OK = 4, ULP_BAD = 1000, REL_BAD = 1e-2;
  function grade(ulp, rel, relOk) {
    const rank = { good: 0, warn: 1, bad: 2 };
    ulp = num(ulp); rel = num(rel);
    let g = "good", why = [];
    const worse = (c, text) => { if (rank[c] > rank[g]) { g = c; } if (c !== "good") why.push(text); };
    if (ulp != null) {
      const c = !(ulp <= ULP_BAD) ? "bad" : ulp > ULP_OK ? "warn" : "good";
      worse(c, `${fmtUlp(ulp)} ULP ${c === "bad" ? "> " + ULP_BAD : "> " + ULP_OK}`);
    }
    if (rel != null && relOk != null) {
      const c = !(rel <= REL_BAD) ? "bad" : rel > relOk ? "warn" : "good";
      worse(c, `relative error ${fmtRel(rel)} ${c === "bad" ? "> " + REL_BAD : "> " + relOk}`);
    }
    return { cls: g, why: why.length ? `${g === "bad" ? "red" : "amber"}: ` + why.join(", ") : "green: within both limits" };
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

  // One colour and dash per row, the same in the table and every plot.
  let styles = {};
  function styleRows(rows) {
    const prev = styles;
    styles = {};
    let k = 0, j = 0;
    for (const r of rows) {
      styles[r.name] = { color: COLORS[r.name] || PALETTE[k++ % PALETTE.length],
        dash: DASHES[j % DASHES.length], width: WIDTHS[Math.min(j, WIDTHS.length - 1)] };
      j += 1;
    }
    for (const [name, st] of Object.entries(prev)) if (!styles[name]) styles[name] = st;
  }
  function gradCell(r, relOk) {
    const td = el("td", { class: "grad", text: r.grad_repr ? r.grad_repr.join(", ") : "—" });
    td.setAttribute("data-label", "d loss/dz");
    if (r.grad_ulp_error && r.grad_ulp_error.length) {
      const worst = r.grad_ulp_error.map(num).reduce((a, b) => (b > a || Number.isNaN(b) ? b : a), 0);
      const worstRel = (r.grad_relative_error || []).map(num).reduce((a, b) => (b > a || Number.isNaN(b) ? b : a), 0);
      const g = grade(worst, worstRel, relOk);
      if (g.cls !== "good") {
        const text = Number.isNaN(worst) ? "NaN where exact is finite" : "off by " + fmtUlp(worst) + " ULP";
        td.append(el("span", { class: "grad-err " + g.cls, text, title: g.why }));
      }
    }
    return td;
  }
  let lastData = null;
  function renderCompare(data) {
    lastData = data;
    $("error").hidden = true;
    const dt = data.dtype;
    const ex = data.exact;
    const exactText = ex.value_repr.join(", ");
    const n = data.inputs.logits.length;
    const red = data.reduction === "none" ? "per element" : `${data.reduction} over ${n} element${n > 1 ? "s" : ""}`;
    $("exact").replaceChildren(
      el("b", { text: "exact loss: " }),
      el("span", { class: "exact-value", text: exactText }),
      ` (${red}, rounded to ${dt}) `,
      el("span", { class: "digits", text: "= " + ex.value.join(", ") + "…" }));
    styleRows(data.rows);
    const relOk = data.relative_threshold;
    const tbody = $("table").tBodies[0];
    const cell = (cls, text, label) => { const td = el("td", { class: cls, text }); td.setAttribute("data-label", label); return td; };
    const rows = [];
    rows.push(el("tr", { class: "exact-row", "data-name": "exact" },
      el("td", { class: "name" }, el("span", { class: "swatch", style: "border-top: 2px dashed #111" }), el("b", { text: "exact" }),
        el("code", { text: "mpmath, rounded once to " + dt })),
      cell("loss", exactText, "loss"), cell("ulp", "≤ 0.5", "ULP"), cell("rel", "", "rel."),
      cell("grad", ex.grad_repr.join(", "), "d loss/dz"), cell("flags", "", "flags")));
    for (const r of data.rows) {
      const st = styles[r.name];
      const tr = el("tr", { "data-name": r.name, class: r.flags.length ? "flagged" : "" });
      const sw = el("span", { class: "swatch" });
      sw.style.borderTop = `3px ${st.dash === "solid" ? "solid" : st.dash === "dot" ? "dotted" : "dashed"} ${st.color}`;
      tr.append(el("td", { class: "name", title: r.code }, sw, el("b", { text: r.name }), el("code", { text: r.code })));
      if (r.status !== "ok") {
        tr.append(cell("loss", "—", "loss"), el("td", { colSpan: 4, class: "reason", text: `${r.status}: ${r.reason}` }));
      } else {
        const g = grade(r.max_ulp_error, r.max_relative_error, relOk);
        const flags = cell("flags", "", "flags");
        for (const f of r.flags) flags.append(el("span", { class: "flag", text: f, title: data.flags[f] || "" }));
        const u = cell("ulp " + g.cls, fmtUlp(r.max_ulp_error), "ULP");
        const rel = cell("rel " + g.cls, fmtRel(r.max_relative_error), "rel.");
        u.title = rel.title = g.why;
        tr.append(cell("loss", r.value_repr.join(", "), "loss"), u, rel, gradCell(r, relOk), flags);
      }
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    $("colour-note").textContent = `Colour: the worse of the ULP error (amber > ${ULP_OK}, red > ${ULP_BAD}) `
      + `and the relative error (amber > ${relOk} for ${dt}, red > ${REL_BAD}); hover a cell to see which.`;
    $("explanation").replaceChildren(...data.explanation.map((t) => el("li", { text: t })));
    renderWhy();
    dots = data.element || null;
    if (!dots) scheduleDots();
    placeMarkers();
  }

  // ---- plots -------------------------------------------------------------------------------
  let dots = null;
  let plotsReady = false;
  let drawing = false;
  function currentZ() { return state.z[state.sel]; }
  const finite = (arr) => arr.map((v) => { const x = num(v); return Number.isFinite(x) ? x : null; });
  const positive = (arr) => arr.map((v) => { const x = num(v); return Number.isFinite(x) && x > 0 ? x : null; });
  const nonFinite = (v) => typeof v === "string" || v == null;
  // Runs of points whose value is NaN or infinite, as [z_first, z_last, label].
  function badRuns(z, values) {
    const out = [];
    let start = -1;
    for (let i = 0; i <= values.length; i++) {
      const bad = i < values.length && nonFinite(values[i]);
      if (bad && start < 0) start = i;
      if (!bad && start >= 0) {
        const kinds = new Set(values.slice(start, i).map((v) => (v === "Infinity" ? "+inf" : v === "-Infinity" ? "−inf" : "NaN")));
        out.push([z[start], z[i - 1], [...kinds].join("/")]);
        start = -1;
      }
    }
    return out;
  }
  function satShapes(lo, hi, sat) {
    const s = [], a = [];
    const shade = { type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below",
      fillcolor: "rgba(120,120,120,0.10)", line: { width: 0 } };
    const base = { yref: "paper", y: 1, yanchor: "top", showarrow: false, font: { size: 9, color: "#555" }, bgcolor: "rgba(255,255,255,0.7)" };
    if (sat && sat.one_from != null && sat.one_from < hi) {
      s.push({ ...shade, x0: Math.max(sat.one_from, lo), x1: hi });
      a.push({ ...base, x: Math.max(sat.one_from, lo), xanchor: sat.one_from > (lo + hi) / 2 ? "right" : "left", text: `σ = 1 from ${Number(sat.one_from.toPrecision(8))}` });
    }
    if (sat && sat.zero_up_to != null && sat.zero_up_to > lo) {
      s.push({ ...shade, x0: lo, x1: Math.min(sat.zero_up_to, hi) });
      a.push({ ...base, x: Math.min(sat.zero_up_to, hi), xanchor: sat.zero_up_to < (lo + hi) / 2 ? "left" : "right", text: `σ = 0 up to ${Number(sat.zero_up_to.toPrecision(8))}` });
    }
    return [s, a];
  }
  // NaN / inf bands: one lane per row along the bottom, in the row's colour, labelled.
  function bandShapes(d, key, rows) {
    const s = [], a = [];
    rows.forEach((r, k) => {
      if (!r[key]) return;
      const y0 = 0.02 + 0.07 * k, y1 = y0 + 0.06;
      for (const [x0, x1, kind] of badRuns(d.z, r[key])) {
        const st = styles[r.name] || { color: "#999" };
        s.push({ type: "rect", xref: "x", yref: "paper", x0, x1: x1 === x0 ? x0 + (d.z[1] - d.z[0]) : x1, y0, y1,
          fillcolor: st.color, opacity: 0.28, line: { width: 0 } });
        a.push({ xref: "x", yref: "paper", x: (x0 + x1) / 2, y: (y0 + y1) / 2, text: `${r.name}: ${kind}`,
          showarrow: false, font: { size: 10, color: st.color } });
      }
    });
    return [s, a];
  }
  function sameArray(a, b) {
    if (!a || !b || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  // Curves that coincide on the whole range, named under the plots ("identical to ...").
  const twins = {};
  function lineTraces(d, key, rows) {
    const out = [];
    const shown = [];
    twins[key] = [];
    for (const r of rows) {
      const twin = shown.find((o) => sameArray(o[key], r[key]));
      if (twin) twins[key].push(`${r.name}'s ${key === "value" ? "loss" : "gradient"} is identical to ${twin.name}'s`);
      const st = styles[r.name];
      out.push({ x: d.z, y: finite(r[key]), name: twin ? `${r.name} (identical to ${twin.name})` : r.name,
        mode: "lines", type: "scatter", line: { color: st.color, width: st.width, dash: st.dash },
        hovertemplate: "z=%{x}<br>%{y}<extra>" + r.name + "</extra>" });
      shown.push(r);
    }
    return out;
  }
  function xaxis(lo, hi) {
    return { range: [lo, hi], title: { text: "logit z (log-odds, nats)", standoff: 2, font: { size: 11 } }, zeroline: false };
  }
  function baseLayout(title, lo, hi) {
    return {
      title: { text: title, font: { size: 12 }, x: 0.01, xanchor: "left", y: 0.99, yanchor: "top" },
      margin: { l: 52, r: 8, t: 26, b: 34 }, dragmode: false, hovermode: "closest",
      xaxis: xaxis(lo, hi), showlegend: false, uirevision: "keep",
    };
  }
  function okRows(d, key) { return d.rows.filter((r) => r.status === "ok" && r[key]); }
  function plotLayout(d, key, title, ytitle) {
    const lo = d.z[0], hi = d.z[d.z.length - 1];
    const [s1, a1] = satShapes(lo, hi, d.saturation);
    const [s2, a2] = bandShapes(d, key, okRows(d, key));
    return { ...baseLayout(title, lo, hi), shapes: [...s1, ...s2], annotations: [...a1, ...a2],
      yaxis: { title: { text: ytitle, font: { size: 11 }, standoff: 2 }, zeroline: true, zerolinecolor: "#ccc" } };
  }
  function curveTraces(d, key) {
    const t = lineTraces(d, key, okRows(d, key));
    t.push({ x: d.z, y: finite(d.exact[key]), name: "exact", mode: "lines", type: "scatter",
      line: { color: "#111", width: 1.2, dash: "dash" }, hovertemplate: "z=%{x}<br>%{y}<extra>exact</extra>" });
    return t;
  }
  function label(d) {
    const short = (v) => Number(v.toPrecision(7));
    return `${d.dtype}, y = ${short(d.target)}` + (d.weight != null ? `, w = ${short(d.weight)}` : "")
      + (d.pos_weight != null ? `, pos_weight = ${short(d.pos_weight)}` : "");
  }
  const ERR_KEYS = { value: { ulp: "ulp_error", rel: "relative_error" }, grad: { ulp: "grad_ulp_error", rel: "grad_relative_error" } };
  function errFigure(d) {
    const key = ERR_KEYS[state.errq][state.errk];
    const rows = okRows(d, key);
    const lo = d.z[0], hi = d.z[d.z.length - 1];
    const traces = [];
    const shown = [];
    for (const r of rows) {
      const twin = shown.find((o) => sameArray(o[key], r[key]));
      const st = styles[r.name];
      traces.push({ x: d.z, y: positive(r[key]), name: twin ? `${r.name} (identical to ${twin.name})` : r.name,
        mode: "lines", type: "scatter", line: { color: st.color, width: st.width, dash: st.dash },
        hovertemplate: "z=%{x}<br>%{y:.3g}<extra>" + r.name + "</extra>" });
      shown.push(r);
    }
    const [s1, a1] = satShapes(lo, hi, d.saturation);
    const [s2, a2] = bandShapes(d, key, rows);
    // Flag intervals from the core (curve rows' flags): one lane per row along the top, with
    // a hover marker naming the flag and its z interval.
    const s3 = [];
    const fx = [], fy = [], ftext = [], fcol = [];
    rows.forEach((r, k) => {
      const y1 = 0.97 - 0.06 * k, y0 = y1 - 0.04;
      const st = styles[r.name];
      for (const [flag, ivs] of Object.entries(r.flags || {})) {
        for (const [x0, x1] of ivs) {
          s3.push({ type: "rect", xref: "x", yref: "paper", x0, x1: x1 === x0 ? x0 + (d.z[1] - d.z[0]) : x1, y0, y1,
            fillcolor: st.color, opacity: 0.2, line: { width: 0 } });
          fx.push((x0 + x1) / 2); fy.push((y0 + y1) / 2); fcol.push(st.color);
          ftext.push(`${r.name}: ${flag}, z = ${x0} … ${x1}`);
        }
      }
    });
    traces.push({ x: fx, y: fy, yaxis: "y2", mode: "markers", type: "scatter", name: "flags",
      marker: { symbol: "square", size: 7, color: fcol, opacity: 0.8 }, text: ftext,
      hovertemplate: "%{text}<extra></extra>", showlegend: false });
    // Breakpoints from the core's exact search: a dashed line at each onset in view.
    const bpData = bp.cache.get(bpKey());
    const s4 = [];
    const bx = [], by = [], btext = [], bcol = [];
    let bpNote = "breakpoints: searching…";
    if (bpData && bpData.error) bpNote = "breakpoints: " + bpData.error;
    else if (bpData) {
      const prefix = state.errq === "value" ? "loss" : "gradient";
      let inView = 0, beyond = 0;
      for (const o of bpData.onsets) {
        if (o.z == null || !o.criterion.startsWith(prefix) || !styles[o.formulation]) continue;
        if (!rows.find((r) => r.name === o.formulation)) continue;
        if (o.z < lo || o.z > hi) { beyond += 1; continue; }
        inView += 1;
        const st = styles[o.formulation];
        s4.push({ type: "line", xref: "x", yref: "paper", x0: o.z, x1: o.z, y0: 0, y1: 1, line: { color: st.color, width: 1.2, dash: "dot" } });
        bx.push(o.z); by.push(0.99); bcol.push(st.color);
        btext.push(`${o.formulation}: ${o.criterion} from z = ${o.z} (${o.side} the target)`);
      }
      bpNote = `breakpoints (dotted, ▼): ${inView} onset${inView === 1 ? "" : "s"} of ${prefix} criteria in view`
        + (beyond ? `, ${beyond} beyond it` : "") + `; threshold ${bpData.threshold}`;
    }
    traces.push({ x: bx, y: by, yaxis: "y2", mode: "markers", type: "scatter", name: "breakpoints",
      marker: { symbol: "triangle-down", size: 10, color: bcol }, text: btext, hovertemplate: "%{text}<extra></extra>", showlegend: false });
    const what = state.errq === "value" ? "loss" : "gradient";
    const ytitle = state.errk === "ulp" ? `|error| of the ${what} in ULPs of ${d.dtype} (log)` : `relative error of the ${what} (log)`;
    const layout = { ...baseLayout(`where it breaks: ${what} error against z (${label(d)})`, lo, hi),
      shapes: [...s1, ...s2, ...s3, ...s4], annotations: [...a1, ...a2],
      yaxis: { type: "log", title: { text: ytitle, font: { size: 11 }, standoff: 2 }, exponentformat: "power" },
      yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true },
      showlegend: true, legend: { orientation: "h", x: 0, y: -0.09, yanchor: "top", font: { size: 10 } } };
    layout.margin = { ...layout.margin, b: 80 };
    return { traces, layout, note: bpNote };
  }
  // The plots are drawn by lineplot.js (a canvas renderer for this figure description).
  function react(id, traces, layout) {
    return LinePlot.react($(id), traces, layout);
  }
  let errNote = "";
  async function drawErr(alone = true) {
    const d = crv.data;
    if (!d || typeof LinePlot === "undefined") return;
    const f = errFigure(d);
    errNote = f.note;
    await react("plot-err", f.traces, f.layout);
    if (alone) placeMarkers();
  }
  function writeCurveNote() {
    const d = crv.data;
    if (!d) return;
    const who = "z" + sub(state.sel + 1);
    const n = state.z.length;
    const same = n === 1 || state.reduction === "none";
    $("curve-note").textContent = `Curves: ${who}'s own loss and gradient (one element, no reduction), ${d.points} points, `
      + `each path run by its framework at ${d.dtype}. Dots: ${who} = ${show(currentZ())} alone`
      + (same ? " (the table's values)" : `, not the table's ${state.reduction} over ${n} elements; they follow once the slider rests`) + ". "
      + "Grey: torch.sigmoid is exactly 0 or 1. Coloured lanes: NaN/inf (bottom) and the core's flag intervals (top). "
      + errNote + ". "
      + [...(twins.value || []), ...(twins.grad || [])].map((t) => t + " (drawn dashed over it). ").join("")
      + "Click a plot to move " + who + " there.";
  }
  async function drawCurves() {
    const d = crv.data;
    if (!d || typeof LinePlot === "undefined") return;
    styleRows(d.rows);  // the same rows in the same order as the table's
    const who = "z" + sub(state.sel + 1);
    // The markers are placed once, after the three plots (not after each one).
    drawing = true;
    try {
      await Promise.all([
        react("plot-loss", curveTraces(d, "value"), plotLayout(d, "value", `loss of ${who} against z (${label(d)})`, "loss (nats)")),
        react("plot-grad", curveTraces(d, "grad"), plotLayout(d, "grad", `d loss / dz of ${who}`, "d loss / dz (nats per unit z)")),
      ]);
      await drawErr(false);
    } finally { drawing = false; }
    if (!plotsReady) {
      for (const id of ["plot-loss", "plot-grad", "plot-err"]) {
        // The renderer redraws on its own when the plot is resized: the markers follow.
        $(id).addEventListener("afterplot", () => { if (!drawing) placeMarker(id); });
        $(id).addEventListener("click", (e) => clickPlot(id, e));
      }
    }
    plotsReady = true;
    placeMarkers();
  }
  function clickPlot(id, e) {
    const gd = $(id);
    const xa = gd._fullLayout && gd._fullLayout.xaxis;
    if (!xa || typeof xa.p2c !== "function") return;
    const box = gd.getBoundingClientRect();
    const px = e.clientX - box.left - xa._offset;
    if (px < 0 || px > xa._length) return;
    const step = sliderStep();
    const z = Number((Math.round(xa.p2c(px) / step) * step).toFixed(6));
    const i = state.sel;
    const row = document.querySelector(`.element[data-i='${i}']`);
    if (row) { row.querySelector(".z-range").value = z; row.querySelector(".z-num").value = show(z); }
    setZ(i, z);
  }
  // The current-z marker and the dots are plain elements laid over each plot, placed with the
  // plot's own axis mapping: moving them costs no redraw.
  function dotValue(id, name) {
    if (!dots) return null;
    const r = name === "exact" ? dots.exact : dots.rows[name];
    if (!r) return null;
    if (id === "plot-loss") return r.value;
    if (id === "plot-grad") return r.grad;
    if (name === "exact") return null;
    return r[ERR_KEYS[state.errq][state.errk]];
  }
  // Each plot's marker and dots, kept (not re-created).
  const overlays = {};
  function overlay(gd) {
    let o = overlays[gd.id];
    if (!o || !o.mark.isConnected) {
      o = overlays[gd.id] = { mark: el("div", { class: "zmark" }), dots: new Map() };
      gd.append(o.mark);
    }
    return o;
  }
  function placeMarker(id) {
    const gd = $(id);
    const fl = gd._fullLayout;
    const o = overlay(gd);
    const mark = o.mark;
    const used = new Set();
    const hideRest = () => { for (const [name, dot] of o.dots) if (!used.has(name)) { dot.remove(); o.dots.delete(name); } };
    if (!fl || !fl.xaxis || !fl.yaxis || typeof fl.xaxis.c2p !== "function") { mark.hidden = true; hideRest(); return; }
    const z = currentZ();
    const [lo, hi] = fl.xaxis.range;
    const inView = Number.isFinite(z) && z >= Math.min(lo, hi) && z <= Math.max(lo, hi);
    mark.hidden = !inView;
    if (!inView || !dots || dots.z !== z) { hideRest(); if (!inView) return; }
    const x = fl.xaxis._offset + fl.xaxis.c2p(z);
    mark.style.left = x + "px";
    mark.style.top = fl.yaxis._offset + "px";
    mark.style.height = fl.yaxis._length + "px";
    mark.title = "current z" + sub(state.sel + 1) + " = " + z;
    if (!dots || dots.z !== z) return;
    const names = [...Object.keys(dots.rows), "exact"];
    for (const name of names) {
      const v = num(dotValue(id, name));
      if (!Number.isFinite(v) || (fl.yaxis.type === "log" && !(v > 0))) continue;
      const py = fl.yaxis.c2p(v);
      if (!Number.isFinite(py) || py < -1 || py > fl.yaxis._length + 1) continue;
      let dot = o.dots.get(name);
      if (!dot) { dot = el("div", { class: "zdot", "data-name": name }); o.dots.set(name, dot); gd.append(dot); }
      used.add(name);
      dot.title = `${name}: ${dotValue(id, name)}`;
      dot.style.left = x + "px";
      dot.style.top = (fl.yaxis._offset + py) + "px";
      dot.style.background = name === "exact" ? "#111" : (styles[name] || { color: "#999" }).color;
    }
    hideRest();
  }
  function placeMarkers() {
    if (!plotsReady) return;
    placeMarker("plot-loss");
    placeMarker("plot-grad");
    placeMarker("plot-err");
    writeCurveNote();
  }

  // ---- wiring ------------------------------------------------------------------------------
  function wire() {
    $("add").addEventListener("click", addElement);
    $("dtype").addEventListener("change", () => { state.dtype = $("dtype").value; loadLesson(); changed(true); });
    $("reduction").addEventListener("change", () => { state.reduction = $("reduction").value; changed(false); });
    for (const name of ["weight", "pos_weight"]) {
      numberBox($(name), (v, text) => { state[name] = text; changed(true); }, { allowEmpty: true });
    }
    $("all-frameworks").addEventListener("change", () => {
      state.fw = $("all-frameworks").checked ? "all" : ""; state.f = []; changed(true);
    });
    for (const b of [$("zoom-30"), $("zoom-300")]) {
      b.addEventListener("click", () => setView(Number(b.dataset.lo), Number(b.dataset.hi)));
    }
    for (const k of ["zlo", "zhi"]) {
      $(k).addEventListener("change", () => {
        const p = parseNum($(k).value);
        const lo = k === "zlo" ? p.value : state.zlo, hi = k === "zhi" ? p.value : state.zhi;
        if (p.ok && Number.isFinite(p.value) && Math.abs(p.value) <= Z_LIMIT && lo < hi) { $(k).classList.remove("invalid"); setView(lo, hi); }
        else { $(k).classList.add("invalid"); $(k).title = `${k}: a finite number in [−${Z_LIMIT}, ${Z_LIMIT}], from below to`; }
      });
    }
    $("sel").addEventListener("change", () => { state.sel = Number($("sel").value); changed(true); });
    $("errq").addEventListener("change", () => { state.errq = $("errq").value; writeURL(); drawErr(); });
    $("errk").addEventListener("change", () => { state.errk = $("errk").value; writeURL(); drawErr(); });
    $("preset").addEventListener("change", () => { if ($("preset").value) applyQuery($("preset").value); });
    $("reset").addEventListener("click", () => applyQuery(""));
    $("step-prev").addEventListener("click", () => gotoStep(-1));
    $("step-next").addEventListener("click", () => gotoStep(+1));
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
    // Resolves (with performance.now()) once the numbers and the plot markers show input `seq`.
    waitFor(seq) {
      return new Promise((resolve) => {
        if (cmp.rendered >= seq) resolve(performance.now()); else waiters.push({ seq, resolve });
      });
    },
    // Resolves once numbers and curves both show the latest input.
    waitIdle() {
      return new Promise((resolve) => { if (isIdle()) resolve(performance.now()); else idleWaiters.push(resolve); });
    },
    curveShown() { return crv.shownKey !== null && crv.shownKey === crv.wantedKey && !crv.inFlight; },
    breakpointsShown() { const v = bp.cache.get(bpKey()); return v != null; },
    lessonShown() { return lesson.data !== null; },
    stateQuery,
    writeURL,
  };

  syncControls();
  wire();
  showUrlErrors(first.errors);
  $("link").value = location.origin + location.pathname + "?" + stateQuery();
  const q0 = new URLSearchParams(location.search);
  if (q0.get("step") && STEP_KEYS.includes(q0.get("step")) && !q0.get("z")) {
    // A bare ?step=...: the step's own state, once the lesson says what it is.
    loadLesson().then(() => {
      const s = currentStep();
      if (s) applyQuery(s.query); else changed(true);
    });
  } else {
    loadLesson();
    changed(true);
  }
})();

// ---- multi-class (softmax cross-entropy) and focal modes -------------------------------------
// Every number comes from /api/compare_loss and /api/curve_loss (the analysis core's
// compare_softmax, compare_focal and curves_softmax); this code places them.
(function () {
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
  const MODES = ["bce", "softmax-ce", "focal"];
  const DTYPES = ["float16", "bfloat16", "float32", "float64"];
  const COLORS = ["#1565c0", "#d32f2f", "#ef8f00", "#6a1b9a", "#2e7d32", "#00897b", "#5d4037",
    "#c2185b", "#558b2f", "#455a64", "#f9a825", "#26c6da", "#283593", "#ad1457"];
  const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
  const num = (t) => {
    const s = String(t).trim();
    if (/^-(inf|infinity)$/i.test(s)) return -Infinity;
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) return null;
    return Number(s);
  };
  const fromJSON = (v) => (v === "NaN" ? NaN : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v);
  const fmt = (v) => {
    v = fromJSON(v);
    if (v == null) return "—";
    if (typeof v === "string") return v;  // the core's shortest repr at the dtype
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toPrecision(5) : String(+v.toPrecision(7));
  };
  const showLogit = (v) => (v === -Infinity ? "-inf" : String(v));

  const DEF = {
    mode: "bce", dtype: "float32", fw: "",
    lz: [2, 0, -1], t: 0, td: null, ls: 0, sw: 0,
    fz: 3, fy: 1, a: 0.25, g: 2, zlo: -30, zhi: 30, ly: false,
  };
  const st = JSON.parse(JSON.stringify(DEF));
  st.mode = window.__lossMode;

  function readURL() {
    const q = new URLSearchParams(location.search);
    const errors = [];
    const has = (k) => q.get(k) !== null && q.get(k) !== "";
    if (has("dtype") && DTYPES.includes(q.get("dtype"))) st.dtype = q.get("dtype");
    if (q.get("fw") === "all") st.fw = "all";
    if (st.mode === "softmax-ce") {
      if (has("lz")) {
        const v = q.get("lz").split(",").map(num);
        if (v.length >= 2 && v.length <= 6 && v.every((x) => x !== null)) st.lz = v;
        else errors.push(`lz: “${q.get("lz")}” is not 2 to 6 logits (numbers or -inf)`);
      }
      if (has("td")) {
        const v = q.get("td").split(",").map(num);
        if (v.length === st.lz.length && v.every((x) => x !== null && Number.isFinite(x))) st.td = v;
        else errors.push(`td: “${q.get("td")}” is not ${st.lz.length} probabilities`);
      } else if (has("t")) {
        const t = Number(q.get("t"));
        if (Number.isInteger(t) && t >= 0 && t < st.lz.length) st.t = t;
        else errors.push(`t: “${q.get("t")}” is not a class (0 … ${st.lz.length - 1})`);
      }
      if (has("ls")) { const v = num(q.get("ls")); if (v !== null) st.ls = v; else errors.push(`ls: “${q.get("ls")}” is not a number`); }
      if (has("sw")) {
        const v = Number(q.get("sw"));
        if (Number.isInteger(v) && v >= 0 && v < st.lz.length) st.sw = v;
        else errors.push(`sw: “${q.get("sw")}” is not a class`);
      } else st.sw = st.td ? 0 : st.t;
    } else if (st.mode === "focal") {
      for (const [k, name] of [["fz", "fz"], ["fy", "fy"], ["g", "g"]]) {
        if (!has(k)) continue;
        const v = num(q.get(k));
        if (v !== null) st[name] = v; else errors.push(`${k}: “${q.get(k)}” is not a number`);
      }
      if (q.get("a") === "none") st.a = null;
      else if (has("a")) { const v = num(q.get("a")); if (v !== null) st.a = v; else errors.push(`a: “${q.get("a")}” is not a number`); }
    }
    if (q.get("ly") === "1") st.ly = true;
    for (const k of ["zlo", "zhi"]) if (has(k)) { const v = num(q.get(k)); if (v !== null && Number.isFinite(v)) st[k] = v; }
    return errors;
  }
  function query() {
    const q = new URLSearchParams();
    q.set("mode", st.mode);
    if (st.mode === "softmax-ce") {
      q.set("lz", st.lz.map(showLogit).join(","));
      if (st.td) q.set("td", st.td.join(",")); else q.set("t", st.t);
      q.set("ls", st.ls);
      q.set("sw", st.sw);
    } else {
      q.set("fz", st.fz); q.set("fy", st.fy); q.set("a", st.a === null ? "none" : st.a); q.set("g", st.g);
    }
    q.set("dtype", st.dtype);
    if (st.fw) q.set("fw", st.fw);
    q.set("zlo", st.zlo); q.set("zhi", st.zhi);
    if (st.ly) q.set("ly", "1");
    return q.toString().replace(/%2C/g, ",");
  }
  function writeURL() {
    if (st.mode === "bce") return;
    history.replaceState(null, "", location.pathname + "?" + query());
    $("mode-link").value = location.href;
  }

  // ---- mode switch ---------------------------------------------------------------------
  function applyMode() {
    document.body.dataset.mode = st.mode;
    for (const b of document.querySelectorAll("button.mode")) b.classList.toggle("on", b.dataset.mode === st.mode);
    $("mc-controls").hidden = st.mode !== "softmax-ce";
    $("fc-controls").hidden = st.mode !== "focal";
    for (const id of ["mode-options", "mode-why", "mode-results", "mode-plots"]) $(id).hidden = st.mode === "bce";
  }
  function setMode(m) {
    if (!MODES.includes(m) || m === st.mode) return;
    st.mode = m;
    window.__lossMode = m;
    applyMode();
    if (m === "bce") {
      if (window.__explore && window.__explore.writeURL) window.__explore.writeURL(true);
      return;
    }
    if (m === "softmax-ce") buildLogits();
    syncFocal();
    changed();
  }

  // ---- multi-class controls ---------------------------------------------------------------
  function buildLogits() {
    const K = st.lz.length;
    $("mc-k").value = String(K);
    const tsel = $("mc-target");
    tsel.replaceChildren(...Array.from({ length: K }, (_, i) => el("option", { value: String(i), text: `class ${i}` })),
      el("option", { value: "dist", text: "distribution" }));
    tsel.value = st.td ? "dist" : String(st.t);
    const ssel = $("mc-sweep");
    ssel.replaceChildren(...Array.from({ length: K }, (_, i) => el("option", { value: String(i), text: `z${i}` })));
    ssel.value = String(st.sw);
    const box = $("mc-logits");
    box.replaceChildren();
    st.lz.forEach((v, i) => {
      const masked = v === -Infinity;
      const range = el("input", { type: "range", min: "-120", max: "120", step: "0.5", disabled: masked, "data-i": String(i) });
      range.value = masked ? "0" : String(Math.max(-120, Math.min(120, v)));
      range.setAttribute("aria-label", `z${i} slider`);
      const text = el("input", { type: "text", class: "num", value: showLogit(v), inputmode: "decimal", autocomplete: "off" });
      text.setAttribute("aria-label", `z${i}`);
      text.id = `mc-z${i}`;
      const mask = el("input", { type: "checkbox", checked: masked, title: "mask: set this logit to -inf" });
      mask.id = `mc-mask${i}`;
      mask.setAttribute("aria-label", `mask z${i}`);
      range.addEventListener("input", () => { st.lz[i] = Number(range.value); text.value = range.value; changed(); });
      text.addEventListener("input", () => {
        const x = num(text.value);
        text.classList.toggle("invalid", x === null);
        if (x === null) return;
        st.lz[i] = x;
        mask.checked = x === -Infinity;
        range.disabled = mask.checked;
        if (Number.isFinite(x)) range.value = String(x);
        changed();
      });
      mask.addEventListener("change", () => {
        st.lz[i] = mask.checked ? -Infinity : Number(range.value);
        text.value = showLogit(st.lz[i]);
        range.disabled = mask.checked;
        changed();
      });
      box.append(el("div", { class: "mode-element mc-logit" }, el("span", { class: "lbl", text: `z${i}` }), range, text,
        el("label", { class: "mask", title: "mask (-inf)" }, mask, "mask")));
    });
    const dist = $("mc-dist");
    dist.hidden = !st.td;
    dist.replaceChildren();
    if (st.td) st.td.forEach((p, i) => {
      const inp = el("input", { type: "text", class: "num", value: String(p), inputmode: "decimal", autocomplete: "off" });
      inp.setAttribute("aria-label", `target probability of class ${i}`);
      inp.addEventListener("input", () => { const x = num(inp.value); inp.classList.toggle("invalid", x === null); if (x !== null) { st.td[i] = x; changed(); } });
      dist.append(el("label", null, `p${i} `, inp));
    });
    $("mc-ls").value = String(st.ls);
  }
  function wireSoftmax() {
    $("mc-k").addEventListener("change", () => {
      const K = Number($("mc-k").value);
      while (st.lz.length < K) st.lz.push(0);
      st.lz.length = K;
      if (st.t >= K) st.t = 0;
      if (st.sw >= K) st.sw = 0;
      if (st.td) { st.td = Array.from({ length: K }, () => 1 / K); }
      buildLogits(); changed();
    });
    $("mc-target").addEventListener("change", () => {
      const v = $("mc-target").value;
      if (v === "dist") {
        const K = st.lz.length;
        st.td = Array.from({ length: K }, (_, i) => (i === st.t ? 1 : 0));
      } else { st.td = null; st.t = Number(v); st.sw = st.t; }
      buildLogits(); changed();
    });
    $("mc-sweep").addEventListener("change", () => { st.sw = Number($("mc-sweep").value); changed(); });
    $("mc-ls").addEventListener("input", () => { const x = num($("mc-ls").value); $("mc-ls").classList.toggle("invalid", x === null); if (x !== null) { st.ls = x; changed(); } });
  }

  // ---- focal controls ------------------------------------------------------------------
  function syncFocal() {
    $("fc-z").value = String(st.fz); $("fc-z-range").value = String(st.fz);
    $("fc-y").value = String(st.fy); $("fc-y-range").value = String(st.fy);
    $("fc-alpha").value = st.a === null ? "" : String(st.a);
    $("fc-gamma").value = String(st.g);
    $("mode-dtype").value = st.dtype;
    $("mode-all").checked = st.fw === "all";
    $("mode-zlo").value = String(st.zlo); $("mode-zhi").value = String(st.zhi);
    $("mode-logy").checked = st.ly;
  }
  function wireFocal() {
    for (const [k, key] of [["z", "fz"], ["y", "fy"]]) {
      const r = $(`fc-${k}-range`), t = $(`fc-${k}`);
      r.addEventListener("input", () => { st[key] = Number(r.value); t.value = r.value; changed(); });
      t.addEventListener("input", () => { const x = num(t.value); t.classList.toggle("invalid", x === null); if (x !== null) { st[key] = x; if (Number.isFinite(x)) r.value = String(x); changed(); } });
    }
    $("fc-alpha").addEventListener("input", () => {
      const s = $("fc-alpha").value.trim(); const x = s === "" ? null : num(s);
      $("fc-alpha").classList.toggle("invalid", s !== "" && x === null);
      if (s === "" || x !== null) { st.a = x; changed(); }
    });
    $("fc-gamma").addEventListener("input", () => { const x = num($("fc-gamma").value); $("fc-gamma").classList.toggle("invalid", x === null); if (x !== null) { st.g = x; changed(); } });
  }
  function wireCommon() {
    for (const b of document.querySelectorAll("button.mode")) b.addEventListener("click", () => setMode(b.dataset.mode));
    $("mode-dtype").addEventListener("change", () => { st.dtype = $("mode-dtype").value; changed(); });
    $("mode-logy").addEventListener("change", () => { st.ly = $("mode-logy").checked; changed(); });
    $("mode-all").addEventListener("change", () => { st.fw = $("mode-all").checked ? "all" : ""; changed(); });
    for (const k of ["zlo", "zhi"]) $(`mode-${k}`).addEventListener("input", () => { const x = num($(`mode-${k}`).value); if (x !== null && Number.isFinite(x)) { st[k] = x; changed(); } });
  }

  // ---- requests ------------------------------------------------------------------------
  function bodies() {
    const common = { dtype: st.dtype };
    if (st.fw) common.frameworks = ["all"];
    const logit = (v) => (v === -Infinity ? "-inf" : v);
    if (st.mode === "softmax-ce") {
      const target = st.td ? st.td : st.t;
      return {
        compare: { loss: "softmax-ce", logits: st.lz.map(logit), target, label_smoothing: st.ls, ...common },
        curve: { loss: "softmax-ce", logits: st.lz.map(logit), target, label_smoothing: st.ls, sweep: st.sw, z_min: st.zlo, z_max: st.zhi, ...common },
      };
    }
    return {
      compare: { loss: "focal", logits: [st.fz], targets: [st.fy], alpha: st.a, gamma: st.g, reduction: "none", ...common },
      curve: { loss: "focal", target: st.fy, alpha: st.a, gamma: st.g, z_min: st.zlo, z_max: st.zhi, ...common },
    };
  }
  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) {
      const d = Array.isArray(j.detail) ? j.detail[0] : { loc: [], msg: String(j.detail) };
      const where = (d.loc || []).filter((x) => x !== "body").join(".");
      throw new Error(where ? `${where}: ${d.msg}` : d.msg);
    }
    return j;
  }
  const api = { seq: 0, rendered: 0, curveSeq: 0, curveRendered: 0 };
  let timer = null;
  function changed() {
    if (st.mode === "bce") return;
    writeURL();
    api.seq += 1;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, 60);
  }
  async function run() {
    timer = null;
    const seq = api.seq;
    const b = bodies();
    const mode = st.mode;
    try {
      const c = await post("/api/compare_loss", b.compare);
      if (seq !== api.seq) return;
      renderCompare(c);
      $("mode-error").hidden = true;
    } catch (err) {
      if (seq !== api.seq) return;
      $("mode-error").hidden = false;
      $("mode-error").textContent = String(err.message || err);
      $("mode-table").tBodies[0].replaceChildren();
      $("mode-explanation").replaceChildren();
      $("mode-exact").textContent = "";
    }
    api.rendered = seq;
    try {
      const d = await post("/api/curve_loss", b.curve);
      if (seq !== api.seq || mode !== st.mode) return;
      renderCurve(d);
      $("mode-curve-note").textContent = "";
    } catch (err) {
      if (seq !== api.seq) return;
      $("mode-curve-note").textContent = "curve: " + String(err.message || err);
      if (window.LinePlot) LinePlot.purge("mode-plot");
    }
    api.curveRendered = seq;
  }

  // ---- rendering ----------------------------------------------------------------------
  function renderCompare(c) {
    const ex = c.exact.value_rounded;
    $("mode-exact").replaceChildren(el("b", { text: "exact: " }),
      el("span", { class: "digits", text: (c.exact.value_repr || ex).map(fmt).join(", ") }),
      ` (${c.quantity}, ${c.dtype}, reduction ${c.reduction})`);
    const tbody = $("mode-table").tBodies[0];
    tbody.replaceChildren(...c.rows.map((r) => {
      const tr = el("tr", { "data-name": r.name });
      tr.classList.toggle("flagged", (r.flags || []).length > 0);
      const name = el("td", { class: "name" }, el("b", { text: r.name }));
      name.title = r.code || "";
      if (r.status !== "ok") {
        tr.append(name, el("td", { colSpan: 4, class: "note", text: `${r.status}: ${r.reason || ""}` }));
        return tr;
      }
      const grads = (r.grad || []).map(fmt);
      const gerr = r.grad_ulp_error ? Math.max(...r.grad_ulp_error.map((v) => { v = fromJSON(v); return v == null || Number.isNaN(v) ? Infinity : v; })) : null;
      // data-label: what each value is, shown before it where the rows are cards (phones)
      tr.append(
        name,
        el("td", { class: "loss", "data-label": "loss", text: (r.value_repr || r.value || []).map(fmt).join(", ") }),
        el("td", { class: "ulp", "data-label": "error (ULP)", text: (r.ulp_error || []).map(fmt).join(", ") }),
        el("td", { class: "grad", "data-label": "gradient", text: `[${grads.join(", ")}]` }, gerr === null ? null : el("span", { class: "grad-err", text: `max ${fmt(gerr)} ULP` })),
        el("td", { class: "flags", "data-label": "flags" }, ...(r.flags || []).map((f) => el("span", { class: "flag", text: f }))),
      );
      return tr;
    }));
    $("mode-explanation").replaceChildren(...(c.explanation || []).map((t) => el("li", { text: t })));
  }
  function renderCurve(d) {
    if (!window.LinePlot) return;
    const z = d.z.map(fromJSON);
    const ys = (a) => (a || []).map((v) => { v = fromJSON(v); return Number.isFinite(v) ? v : null; });
    const traces = [{ x: z, y: ys(d.exact.value), name: "exact", mode: "lines", line: { color: "#000", width: 1.5, dash: "dot" } }];
    d.rows.filter((r) => r.status === "ok").forEach((r, i) => {
      const flags = Object.keys(r.flags || {});
      traces.push({ x: z, y: ys(r.value), name: r.name + (flags.length ? ` (${flags.join(", ")})` : ""), mode: "lines",
        line: { color: COLORS[i % COLORS.length], dash: DASHES[i % DASHES.length], width: i === 0 ? 3.5 : 2 } });
    });
    const who = d.quantity === "softmax_ce" ? `z${d.sweep}` : "z";
    const here = d.quantity === "softmax_ce" ? st.lz[d.sweep] : st.fz;
    const shapes = Number.isFinite(here) && here >= st.zlo && here <= st.zhi ? [{ type: "line", x0: here, x1: here, yref: "paper", y0: 0, y1: 1, line: { color: "#888", width: 1 } }] : [];
    LinePlot.react($("mode-plot"), traces, {
      title: { text: `loss against ${who} (${d.dtype}; gaps: NaN or inf)`, font: { size: 13 } },
      margin: { l: 50, r: 10, t: 30, b: 40 }, xaxis: { title: { text: who } }, yaxis: { title: { text: "loss (nats)" }, type: st.ly ? "log" : "linear", exponentformat: "power" },
      legend: { orientation: "h", y: -0.25, font: { size: 11 } }, shapes,
    });
  }

  window.__modes = {
    get state() { return st; },
    get seq() { return api.seq; },
    shown() { return api.rendered >= api.seq && api.curveRendered >= api.seq; },
    query,
    setMode,
  };

  const errors = readURL();
  wireCommon(); wireSoftmax(); wireFocal();
  buildLogits(); syncFocal();
  applyMode();
  const box = st.mode === "focal" ? $("fc-url-error") : $("mc-url-error");
  if (errors.length) { box.hidden = false; box.textContent = "Ignored in the link: " + errors.join("; ") + "."; }
  if (st.mode !== "bce") changed();
})();
