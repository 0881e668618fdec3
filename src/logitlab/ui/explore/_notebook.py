"""The post's sliders in a notebook: an ipywidgets explorer over the analysis core.

The controls are ipywidgets, the table an ``HTML`` widget, and the plot an anywidget
(:class:`CurvePlot`, ``static/widget.js``) that draws the analysis core's curve with the
plotly.js bundled in the installed ``plotly`` package, so it is interactive and works offline
wherever anywidget renders (JupyterLab, Jupyter Notebook 7, VS Code, Colab).  It has the
page's three losses: binary cross-entropy (:func:`~logitlab.analysis.compare.compare` and
:func:`~logitlab.analysis.curves.bce_curve`), softmax cross-entropy
(:func:`~logitlab.analysis.compare_softmax.compare_softmax` and
:func:`~logitlab.analysis.curves_softmax.softmax_curve`) and binary focal loss
(:func:`~logitlab.analysis.compare_focal.compare_focal` and
:func:`~logitlab.analysis.curves_softmax.focal_curve`), the same functions the web API
calls.  Every number it shows is theirs; the JavaScript only draws.

Like the page it has, for binary CE, the "where it breaks" plot (:func:`error_plot_data`):
each formulation's error against z in ULPs or relative (the curve's own
:attr:`~logitlab.analysis.curves.CurveRow.ulp_error` or
:func:`~logitlab.analysis.lesson.relative_errors`, as ``/api/curve`` answers them), the
core's flag intervals and the exact breakpoint onsets of
:func:`~logitlab.analysis.lesson.breakpoints` (the ``/api/breakpoints`` search, run in a
background thread because it takes seconds), and the lesson's presets
(:func:`~logitlab.analysis.lesson.presets`, the ``/api/lesson`` list) with a reset.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from logitlab.analysis.compare import Comparison, compare
from logitlab.analysis.curves import Curve, bce_curve
from logitlab.analysis.explain import explain
from logitlab.analysis.lesson import relative_errors
from logitlab.analysis.saturation import saturation
from logitlab.core.background import end_at_exit
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES
from logitlab.core.inputs import REDUCTIONS
from logitlab.core.numbers import json_number, json_numbers
from logitlab.ui.html import comparison_html

__all__ = [
    "LOSSES",
    "MAX_ELEMENTS",
    "CurvePlot",
    "NotebookExplorer",
    "comparison_html",
    "curve_data",
    "error_plot_data",
    "notebook_explorer",
]

_CURVE_POINTS = 601
#: Points of a softmax or focal curve (the page's, each point costs an exact evaluation).
_MODE_POINTS = 121
#: Most BCE elements, as on the page.
MAX_ELEMENTS = 16
#: The losses, as the page's buttons and ``logitlab compare --loss`` name them.
LOSSES = (("binary CE", "bce"), ("multi-class (softmax CE)", "softmax-ce"), ("focal", "focal"))
#: Classes a softmax row may have, and its logit sliders' range and step (the page's).
SOFTMAX_CLASSES = (2, 3, 4, 5, 6)
_SOFTMAX_Z = 120.0
_SOFTMAX_STEP = 0.5

_STATIC = Path(__file__).parent / "static"


@functools.lru_cache(maxsize=1)
def _plotly_source() -> str:
    """plotly.js as shipped inside the installed ``plotly`` package (no CDN)."""
    root = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    return root.read_text(encoding="utf-8")


def curve_data(curve: Curve) -> dict[str, Any]:
    """What the plot draws: ``curve.to_dict()`` with the dtype's saturation thresholds and a
    title; NaN and infinities are the strings of :func:`~logitlab.core.numbers.json_number`."""
    sat = saturation(curve.dtype.name)
    data = curve.to_dict()
    data["saturation"] = sat.to_dict()
    data["title"] = (
        f"{curve.dtype.name}, y = {curve.target:.7g}; shaded: torch.sigmoid is exactly 0 or 1"
    )
    data["x_label"] = "logit z (log-odds, nats)"
    return data


#: The error plot's choices, as the page's two selects name them: the quantity (loss or
#: gradient) and the kind (ULPs of the dtype or relative).
ERROR_QUANTITIES = (("loss", "value"), ("gradient", "grad"))
ERROR_KINDS = (("in ULPs", "ulp"), ("relative", "rel"))


def _error_array(curve: Curve, row: Any, quantity: str, kind: str) -> np.ndarray | None:
    """One curve row's error: the curve's ULP error, or the relative error against the
    exact curve of :func:`~logitlab.analysis.lesson.relative_errors` (``/api/curve``'s)."""
    if kind == "ulp":
        return row.ulp_error if quantity == "value" else row.grad_ulp_error
    if quantity == "value":
        return relative_errors(row.value, curve.exact_value)
    return relative_errors(row.grad, curve.exact_grad)


def _nonfinite_runs(z: np.ndarray, error: np.ndarray) -> list[list[Any]]:
    """Runs of consecutive points whose error is NaN or infinite: ``[z_first, z_last,
    kinds]`` (the page's NaN / inf lanes)."""
    bad = ~np.isfinite(error)
    out: list[list[Any]] = []
    idx = np.flatnonzero(bad)
    if idx.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    for a, b in zip(starts, ends):
        part = error[a : b + 1]
        kinds = [k for k, m in (("+inf", np.isposinf(part)), ("NaN", np.isnan(part))) if m.any()]
        out.append([float(z[a]), float(z[b]), "/".join(kinds)])
    return out


def error_plot_data(
    curve: Curve, quantity: str = "value", kind: str = "ulp", breakpoints: Any = None
) -> dict[str, Any]:
    """What the "where it breaks" plot draws, as the page's ``errFigure`` draws it.

    ``rows``: per formulation that ran, its ``error`` at each of the curve's ``z``
    (``quantity`` ``"value"`` or ``"grad"``, ``kind`` ``"ulp"`` (the curve's ULP errors) or
    ``"rel"`` (:func:`~logitlab.analysis.lesson.relative_errors` against the exact
    curve)), the core's flag intervals ``flags`` and the ``nonfinite`` runs of its error.
    ``breakpoints`` is :func:`~logitlab.analysis.lesson.breakpoints`' answer for the
    curve's target and dtype, a message (its search failed or is off) or ``None`` (still
    searching); of its onsets ``onsets`` keeps those of the quantity's criteria (``loss
    ...`` or ``gradient ...``) for the rows drawn and inside the curve's range, ``beyond``
    counts the others that hold somewhere.  NaN and infinities are the strings of
    :func:`~logitlab.core.numbers.json_number`.
    """
    if quantity not in {v for _, v in ERROR_QUANTITIES}:
        raise InputError("quantity", f"{quantity!r} is not value or grad")
    if kind not in {v for _, v in ERROR_KINDS}:
        raise InputError("kind", f"{kind!r} is not ulp or rel")
    rows = []
    for r in curve.rows:
        if r.status != "ok":
            continue
        error = _error_array(curve, r, quantity, kind)
        if error is None:
            continue
        rows.append(
            {
                "name": r.name,
                "error": json_numbers(error),
                "flags": {k: [list(iv) for iv in v] for k, v in r.flags.items()},
                "nonfinite": _nonfinite_runs(curve.z, error),
            }
        )
    lo, hi = float(curve.z[0]), float(curve.z[-1])
    what = "loss" if quantity == "value" else "gradient"
    label = f"{curve.dtype.name}, y = {curve.target:.7g}"
    if curve.weight is not None:
        label += f", w = {curve.weight:.7g}"
    if curve.pos_weight is not None:
        label += f", pos_weight = {curve.pos_weight:.7g}"
    onsets: list[dict[str, Any]] = []
    beyond = 0
    if breakpoints is None:
        note = "breakpoints: searching…"
    elif isinstance(breakpoints, str):
        note = "breakpoints: " + breakpoints
    else:
        names = {r["name"] for r in rows}
        for o in breakpoints["onsets"]:
            z = o["z"]
            if z is None or not o["criterion"].startswith(what) or o["formulation"] not in names:
                continue
            if not lo <= z <= hi:
                beyond += 1
                continue
            onsets.append(
                {
                    "formulation": o["formulation"],
                    "criterion": o["criterion"],
                    "side": o["side"],
                    "z": z,
                    "text": (
                        f"{o['formulation']}: {o['criterion']} from z = {z!r} "
                        f"({o['side']} the target)"
                    ),
                }
            )
        n = len(onsets)
        note = (
            f"breakpoints (dotted, ▼): {n} onset{'' if n == 1 else 's'} of {what} criteria "
            f"in view"
            + (f", {beyond} beyond it" if beyond else "")
            + f"; threshold {breakpoints['threshold']!r}"
        )
    if kind == "ulp":
        y_label = f"|error| of the {what} in ULPs of {curve.dtype.name} (log)"
    else:
        y_label = f"relative error of the {what} (log)"
    return {
        "quantity": quantity,
        "kind": kind,
        "dtype": curve.dtype.name,
        "target": curve.target,
        "z": json_numbers(curve.z),
        "rows": rows,
        "saturation": saturation(curve.dtype.name).to_dict(),
        "searching": breakpoints is None,
        "onsets": onsets,
        "beyond": beyond,
        "note": note,
        "legend": (
            "Grey: torch.sigmoid is exactly 0 or 1. Coloured lanes: NaN/inf (bottom) and the "
            "core's flag intervals (top); hover for their names."
        ),
        "title": f"where it breaks: {what} error against z ({label})",
        "y_label": y_label,
    }


class CurvePlot(anywidget.AnyWidget):
    """Loss and gradient against z drawn by plotly.js in the front end (an anywidget).

    ``curve`` is :func:`curve_data` of a :class:`~logitlab.analysis.curves.Curve` (or a
    softmax / focal curve's dictionary), ``marker`` the z of the dotted line, ``dots`` the
    per-element values at that z, ``log_y`` a log loss axis, ``errors`` the "where it
    breaks" plot's :func:`error_plot_data` (empty: none); the JavaScript in
    ``static/widget.js`` only draws them.  A click on a plot sets ``clicked_z``.
    """

    _esm = _STATIC / "widget.js"
    _plotly = traitlets.Unicode("").tag(sync=True)
    curve = traitlets.Dict().tag(sync=True)
    marker = traitlets.Float(None, allow_none=True).tag(sync=True)
    dots = traitlets.Dict().tag(sync=True)
    log_y = traitlets.Bool(False).tag(sync=True)
    errors = traitlets.Dict().tag(sync=True)
    clicked_z = traitlets.Float(None, allow_none=True).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_plotly=_plotly_source(), **kwargs)


def _optional_number(text: str, argument: str) -> float | None:
    """A box's text: empty is none; ``Infinity`` and ``-inf`` are numbers, as in the API."""
    t = text.strip()
    if not t:
        return None
    try:
        return float(t)
    except ValueError:
        raise InputError(argument, f"{t!r} is not a number") from None


def _number(text: str, argument: str) -> float:
    value = _optional_number(text, argument)
    if value is None:
        raise InputError(argument, "give a number")
    return value


#: The zoom choices: label -> (range, slider step); the step follows the range.
ZOOMS = {"±30": ((-30.0, 30.0), 0.01), "±300": ((-300.0, 300.0), 0.1)}


def _step_for(lo: float, hi: float) -> float:
    return 0.01 if hi - lo <= 100 else 0.1


def _slider(value: float, lo: float, hi: float, step: float, label: str, css: str) -> Any:
    s = widgets.FloatSlider(
        value=min(max(float(value), lo), hi),
        min=lo,
        max=hi,
        step=step,
        description=label,
        continuous_update=True,
        readout_format=".2f",
        layout=widgets.Layout(width="46%"),
        style={"description_width": "2.5em"},
    )
    s.add_class(css)
    return s


def _close(ws: Sequence[Any]) -> None:
    """Close replaced widgets, so their front-end models go too."""
    for w in ws:
        w.close()


def _dots(c: Comparison, column: int | None, label: str, errors: bool = False) -> dict[str, Any]:
    """The dots from a one-element (or one-row) unreduced comparison ``c``: each row's loss
    and its gradient (with respect to logit ``column`` of the row, for softmax); with
    ``errors`` also the comparison's own ULP and relative errors of both (the dots of the
    "where it breaks" plot)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in c.rows:
        if r.status != "ok" or r.value is None or r.grad is None:
            continue
        grad = r.grad.ravel()
        rows[r.formulation.name] = {
            "value": json_number(float(r.value.ravel()[0])),
            "grad": json_number(float(grad[0 if column is None else column])),
        }
        if errors:
            for key in _DOT_ERRORS:
                a = getattr(r, key)
                rows[r.formulation.name][key] = (
                    None if a is None else json_number(float(np.asarray(a).ravel()[0]))
                )
    return {"rows": rows, "label": label}


#: The comparison's error arrays a BCE dot carries, by (quantity, kind) of the error plot.
_DOT_ERRORS = ("ulp_error", "relative_error", "grad_ulp_error", "grad_relative_error")
#: Seconds the plotted target must rest before the breakpoint search starts (the page
#: waits 0.7 s): a drag of a target slider searches once, where it stops.
BREAKPOINT_DELAY = 0.5
#: Breakpoint answers one explorer keeps (the core's search keeps its own too).
BREAKPOINT_RESULTS = 256


class NotebookExplorer(widgets.VBox):
    """The page's controls in a notebook: the loss (binary CE, multi-class softmax CE, focal);
    the lesson's steps, its presets (every step at float32, bfloat16 and float16, from
    :func:`~logitlab.analysis.lesson.presets`) and Reset (:meth:`reset`); for binary CE up
    to :data:`MAX_ELEMENTS` elements (a logit and a target slider each), weight, pos_weight
    and the error plot's choice (loss or gradient, in ULPs or relative); for softmax CE a
    row of K logits (each one can be masked to -inf), the target class or a target
    distribution, label smoothing and the logit the curve sweeps; for focal z, y, alpha and
    gamma; and for all: dtype, reduction, every framework, the ±30 / ±300 zoom and a log
    loss axis.  Below them the table from the core's comparison with its explanation, a
    plot of the loss and gradient against the plotted logit and, for binary CE, the "where
    it breaks" plot (:func:`error_plot_data`) with the breakpoints of the plotted target,
    searched in a background thread (``breakpoints=False``: not searched;
    :meth:`wait_breakpoints` waits for them).  ``comparison`` holds the last result,
    ``error`` the last input error.
    """

    def __init__(
        self,
        logits: Sequence[float] = (-2.0, 2.0),
        targets: Sequence[float] = (0.3, 0.7),
        dtype: str = "float32",
        reduction: str = "mean",
        z_range: tuple[float, float] = (-30.0, 30.0),
        weight: float | None = None,
        pos_weight: float | None = None,
        every_framework: bool = False,
        loss: str = "bce",
        breakpoints: bool = True,
    ) -> None:
        if not 1 <= len(logits) <= MAX_ELEMENTS or len(targets) != len(logits):
            raise InputError(
                "logits",
                f"give 1 to {MAX_ELEMENTS} logits and as many targets "
                f"(got {len(logits)} and {len(targets)})",
            )
        if loss not in {v for _, v in LOSSES}:
            raise InputError(
                "loss", f"unknown loss {loss!r}; choose from {', '.join(v for _, v in LOSSES)}"
            )
        from logitlab.analysis.lesson import presets, steps

        self._initial: dict[str, Any] = {
            "loss": loss,
            "z": [float(v) for v in logits],
            "y": [float(v) for v in targets],
            "dtype": dtype,
            "reduction": reduction,
            "z_range": (float(z_range[0]), float(z_range[1])),
            "weight": weight,
            "pos_weight": pos_weight,
            "every_framework": every_framework,
        }
        self.z_range = (float(z_range[0]), float(z_range[1]))
        #: Search the core's breakpoints (seconds each) in a background thread.
        self.search_breakpoints = bool(breakpoints)
        self._bce_curve: Curve | None = None
        self._bp_key: tuple[Any, ...] | None = None
        self._bp_results: dict[tuple[Any, ...], Any] = {}
        self._bp_cond = threading.Condition(threading.RLock())
        self._bp_thread: threading.Thread | None = None
        self._bp_closed = False
        end_at_exit(self._end_breakpoints)
        self.formulations: list[str] | None = None
        self.comparison: Comparison | None = None
        self.error: str | None = None
        self._curve_key: tuple[Any, ...] | None = None
        self._quiet = False

        self.loss = widgets.ToggleButtons(options=list(LOSSES), value=loss, description="loss")
        # ---- binary cross-entropy --------------------------------------------------------
        self._steps = {s.key: s for s in steps("float32")}
        self.step = widgets.Dropdown(
            options=[("free", "")]
            + [(f"{s.number}. {s.title}", s.key) for s in self._steps.values()],
            value="",
            description="lesson",
        )
        self.step_text = widgets.HTML()
        # The lesson's presets: every step at float32, bfloat16 and float16, from the same
        # function as the page's /api/lesson; picking one sets its state, as on the page.
        self._presets = presets()
        self.preset = widgets.Dropdown(
            options=[("presets…", "")] + [(p["label"], p["query"]) for p in self._presets],
            value="",
            description="preset",
        )
        self.reset_button = widgets.Button(
            description="Reset", tooltip="every control back to how this explorer started"
        )
        self.preset.add_class("logitlab-preset")
        self.reset_button.add_class("logitlab-reset")
        self.step.add_class("logitlab-step")
        self.logit_sliders: list[Any] = []
        self.target_sliders: list[Any] = []
        self.remove_buttons: list[Any] = []
        self.elements = widgets.VBox()
        self.add_element = widgets.Button(description="+ add element")
        self.element = widgets.Dropdown(options=[("1", 0)], value=0, description="plot")
        box = widgets.Layout(width="14em")
        self.weight = widgets.Text(
            value="" if weight is None else repr(weight),
            placeholder="none",
            description="weight",
            layout=box,
            continuous_update=False,
        )
        self.pos_weight = widgets.Text(
            value="" if pos_weight is None else repr(pos_weight),
            placeholder="none",
            description="pos_weight",
            layout=box,
            continuous_update=False,
        )
        self.bce_box = widgets.VBox(
            [
                self.step_text,
                self.elements,
                widgets.HBox([self.add_element, self.element, self.weight, self.pos_weight]),
            ]
        )
        # ---- softmax cross-entropy ---------------------------------------------------------
        self.classes = widgets.Dropdown(options=list(SOFTMAX_CLASSES), value=3, description="K")
        self.target_class = widgets.Dropdown(description="target")
        self.sweep = widgets.Dropdown(description="sweep")
        self.class_sliders: list[Any] = []
        self.masks: list[Any] = []
        self.distribution: list[Any] = []
        self.class_rows = widgets.VBox()
        self.distribution_box = widgets.HBox()
        self.label_smoothing = widgets.Text(
            value="0", description="label smoothing", continuous_update=False, layout=box
        )
        self.label_smoothing.style.description_width = "8em"
        self.softmax_box = widgets.VBox(
            [
                widgets.HBox([self.classes, self.target_class, self.sweep]),
                self.class_rows,
                self.distribution_box,
                self.label_smoothing,
            ]
        )
        # ---- focal ------------------------------------------------------------------------
        lo, hi = self.z_range
        self.focal_z = _slider(3.0, lo, hi, _step_for(lo, hi), "z", "logitlab-focal-z")
        self.focal_y = _slider(1.0, 0.0, 1.0, 0.01, "y", "logitlab-focal-y")
        self.alpha = widgets.Text(
            value="0.25",
            placeholder="none",
            description="alpha",
            continuous_update=False,
            layout=box,
        )
        self.gamma = widgets.Text(
            value="2", description="gamma", continuous_update=False, layout=box
        )
        self.focal_box = widgets.VBox(
            [widgets.HBox([self.focal_z, self.focal_y]), widgets.HBox([self.alpha, self.gamma])]
        )
        # ---- common -----------------------------------------------------------------------
        self.dtype = widgets.Dropdown(options=list(DTYPE_NAMES), value=dtype, description="dtype")
        self.reduction = widgets.Dropdown(
            options=list(REDUCTIONS), value=reduction, description="reduction"
        )
        self.every_framework = widgets.Checkbox(
            value=every_framework, description="every framework"
        )
        zoom = next((k for k, (r, _) in ZOOMS.items() if r == self.z_range), None)
        self.zoom = widgets.ToggleButtons(options=list(ZOOMS), value=zoom, description="z range")
        self.log_y = widgets.Checkbox(value=False, description="log loss axis")
        self.err_quantity = widgets.Dropdown(
            options=list(ERROR_QUANTITIES), value="value", description="error plot"
        )
        self.err_kind = widgets.Dropdown(options=list(ERROR_KINDS), value="ulp", description="")
        self.err_kind.layout.width = "9em"
        self.error_box = widgets.HBox([self.err_quantity, self.err_kind])
        self.err_quantity.add_class("logitlab-err-quantity")
        self.err_kind.add_class("logitlab-err-kind")
        self.dtype.add_class("logitlab-dtype")
        self.table = widgets.HTML()
        self.curve_note = widgets.HTML()
        self.plot = CurvePlot(layout=widgets.Layout(width="100%"))
        super().__init__(
            [
                self.loss,
                # The lesson (its steps and presets switch to binary CE) and Reset, shown
                # with every loss, as on the page.
                widgets.HBox([self.step, self.preset, self.reset_button]),
                self.bce_box,
                self.softmax_box,
                self.focal_box,
                widgets.HBox([self.dtype, self.reduction, self.every_framework]),
                widgets.HBox([self.zoom, self.log_y, self.error_box]),
                self.table,
                self.plot,
                self.curve_note,
            ]
        )
        self._quiet = True
        try:
            self._set_elements(list(logits), list(targets))
            self._set_classes([2.0, 0.0, -1.0], 0)
        finally:
            self._quiet = False
        for w in [
            self.dtype,
            self.reduction,
            self.weight,
            self.pos_weight,
            self.element,
            self.sweep,
            self.label_smoothing,
            self.focal_z,
            self.focal_y,
            self.alpha,
            self.gamma,
        ]:
            w.observe(self._changed, names="value")
        self.loss.observe(self._loss_changed, names="value")
        self.classes.observe(self._classes_changed, names="value")
        self.target_class.observe(self._target_changed, names="value")
        self.every_framework.observe(self._every, names="value")
        self.zoom.observe(self._zoom, names="value")
        self.step.observe(self._step, names="value")
        self.preset.observe(self._preset, names="value")
        self.reset_button.on_click(lambda _: self.reset())
        self.err_quantity.observe(self._err_choice, names="value")
        self.err_kind.observe(self._err_choice, names="value")
        self.add_element.on_click(lambda _: self._add())
        self.log_y.observe(self._log_y, names="value")
        self.plot.observe(self._clicked, names="clicked_z")
        self._show_mode()
        self.update()

    # ---- building the variable parts ----------------------------------------------------------

    def _set_elements(self, zs: list[float], ys: list[float]) -> None:
        """Rebuild the BCE element rows: z_i and y_i sliders and a remove button each."""
        lo, hi = self.z_range
        step = _step_for(lo, hi)
        _close([*self.elements.children, *self.logit_sliders, *self.target_sliders])
        _close(self.remove_buttons)
        self.logit_sliders = [
            _slider(z, lo, hi, step, f"z{i + 1}", f"logitlab-z{i + 1}") for i, z in enumerate(zs)
        ]
        self.target_sliders = [
            _slider(y, 0.0, 1.0, 0.01, f"y{i + 1}", f"logitlab-y{i + 1}") for i, y in enumerate(ys)
        ]
        self.remove_buttons = []
        rows = []
        for i, (zs_, ys_) in enumerate(zip(self.logit_sliders, self.target_sliders)):
            rm = widgets.Button(
                description="×",
                tooltip=f"remove element {i + 1}",
                layout=widgets.Layout(width="2.5em"),
                disabled=len(zs) <= 1,
            )
            rm.on_click(functools.partial(self._remove, i))
            self.remove_buttons.append(rm)
            zs_.observe(self._changed, names="value")
            ys_.observe(self._changed, names="value")
            rows.append(widgets.HBox([zs_, ys_, rm]))
        self.elements.children = rows
        self.add_element.disabled = len(zs) >= MAX_ELEMENTS
        keep = self.element.value if self.element.value < len(zs) else len(zs) - 1
        was = self._quiet
        self._quiet = True
        try:
            self.element.options = [(str(i + 1), i) for i in range(len(zs))]
            self.element.value = keep
        finally:
            self._quiet = was

    def _add(self) -> None:
        if len(self.logit_sliders) >= MAX_ELEMENTS:
            return
        self._set_elements(
            [s.value for s in self.logit_sliders] + [0.0],
            [s.value for s in self.target_sliders] + [0.5],
        )
        self.update()

    def _remove(self, i: int, _button: Any = None) -> None:
        if len(self.logit_sliders) <= 1:
            return
        zs = [s.value for s in self.logit_sliders]
        ys = [s.value for s in self.target_sliders]
        del zs[i], ys[i]
        self._set_elements(zs, ys)
        self.update()

    def _set_classes(self, logits: list[float], target: int | list[float]) -> None:
        """Rebuild the softmax row: K logit sliders with a mask each, the target and sweep
        choices, and the distribution boxes when the target is a distribution."""
        k = len(logits)
        was = self._quiet
        self._quiet = True
        try:
            self.classes.value = k
            _close([*self.class_rows.children, *self.class_sliders, *self.masks])
            _close(self.distribution)
            self.class_sliders = []
            self.masks = []
            rows = []
            for i, v in enumerate(logits):
                masked = v == -math.inf
                s = _slider(
                    0.0 if masked else v,
                    -_SOFTMAX_Z,
                    _SOFTMAX_Z,
                    _SOFTMAX_STEP,
                    f"z{i}",
                    f"logitlab-class-z{i}",
                )
                s.disabled = masked
                m = widgets.Checkbox(value=masked, description="mask (-inf)", indent=False)
                m.add_class(f"logitlab-mask{i}")
                s.observe(self._changed, names="value")
                m.observe(functools.partial(self._masked, i), names="value")
                self.class_sliders.append(s)
                self.masks.append(m)
                rows.append(widgets.HBox([s, m]))
            self.class_rows.children = rows
            options: list[tuple[str, Any]] = [(f"class {i}", i) for i in range(k)]
            self.target_class.options = [*options, ("distribution", "dist")]
            self.target_class.value = "dist" if isinstance(target, list) else target
            sweep = self.sweep.value if isinstance(self.sweep.value, int) else 0
            self.sweep.options = [(f"z{i}", i) for i in range(k)]
            self.sweep.value = target if isinstance(target, int) else min(sweep, k - 1)
            self.distribution = []
            if isinstance(target, list):
                for i, p in enumerate(target):
                    box = widgets.Text(
                        value=repr(float(p)),
                        description=f"p{i}",
                        continuous_update=False,
                        layout=widgets.Layout(width="9em"),
                    )
                    box.style.description_width = "2em"
                    box.observe(self._changed, names="value")
                    self.distribution.append(box)
            self.distribution_box.children = self.distribution
            self.distribution_box.layout.display = "" if isinstance(target, list) else "none"
        finally:
            self._quiet = was

    def _class_logits(self) -> list[float]:
        return [
            -math.inf if m.value else float(s.value) for s, m in zip(self.class_sliders, self.masks)
        ]

    def _target(self) -> int | list[float]:
        if self.target_class.value == "dist":
            return [_number(b.value, f"p{i}") for i, b in enumerate(self.distribution)]
        return int(self.target_class.value)

    # ---- events ----------------------------------------------------------------------------

    def _show_mode(self) -> None:
        mode = self.loss.value
        self.bce_box.layout.display = "" if mode == "bce" else "none"
        self.softmax_box.layout.display = "" if mode == "softmax-ce" else "none"
        self.focal_box.layout.display = "" if mode == "focal" else "none"
        self.error_box.layout.display = "" if mode == "bce" else "none"

    def _loss_changed(self, change: Any) -> None:
        self._show_mode()
        if self._quiet:
            return
        self._curve_key = None
        self.update()

    def _classes_changed(self, change: Any) -> None:
        if self._quiet:
            return
        k = int(change["new"])
        old = self._class_logits()
        logits = (old + [0.0] * k)[:k]
        target: int | list[float]
        if self.target_class.value == "dist":
            target = [1.0 / k] * k
        else:
            target = int(self.target_class.value)
            target = target if target < k else 0
        self._set_classes(logits, target)
        self.update()

    def _target_changed(self, change: Any) -> None:
        if self._quiet:
            return
        new = change["new"]
        if new == "dist":
            old = change["old"] if isinstance(change["old"], int) else 0
            k = len(self.class_sliders)
            self._set_classes(self._class_logits(), [1.0 if i == old else 0.0 for i in range(k)])
        else:
            # A class target: the curve sweeps that class's logit, as on the page.
            self._set_classes(self._class_logits(), int(new))
        self.update()

    def _masked(self, i: int, change: Any) -> None:
        self.class_sliders[i].disabled = bool(change["new"])
        if not self._quiet:
            self.update()

    def _clicked(self, change: Any) -> None:
        z = change["new"]
        if z is None or not math.isfinite(z):
            return
        mode = self.loss.value
        if mode == "bce":
            s = self.logit_sliders[self.element.value]
        elif mode == "focal":
            s = self.focal_z
        else:
            s = self.class_sliders[int(self.sweep.value)]
        s.value = min(max(float(z), s.min), s.max)

    def _changed(self, change: Any) -> None:
        if not self._quiet:
            self.update()

    def _every(self, change: Any) -> None:
        if self._quiet:
            return
        self.formulations = None
        self.update()

    def _log_y(self, change: Any) -> None:
        self.plot.log_y = bool(change["new"])

    def set_range(self, lo: float, hi: float) -> None:
        """Show ``[lo, hi]``; the sliders' step follows (0.01 up to a width of 100, else 0.1)."""
        step = _step_for(lo, hi)
        self._quiet = True
        try:
            for s in [*self.logit_sliders, self.focal_z]:
                value = min(max(s.value, lo), hi)
                s.min, s.max = min(s.min, lo), max(s.max, hi)
                s.value = value
                s.min, s.max, s.step = lo, hi, step
        finally:
            self._quiet = False
        self.z_range = (lo, hi)
        self.update()

    def _zoom(self, change: Any) -> None:
        if not self._quiet and change["new"] in ZOOMS:
            (lo, hi), _ = ZOOMS[change["new"]]
            self.set_range(lo, hi)

    def _step(self, change: Any) -> None:
        if self._quiet:
            return
        key = change["new"]
        if not key:
            self.step_text.value = ""
            return
        from logitlab.analysis.lesson import LESSON_DTYPES, step

        # The step at the dtype shown, as the page's step links (float32 for float64).
        self._apply_step(
            step(key, self.dtype.value if self.dtype.value in LESSON_DTYPES else "float32")
        )

    def _preset(self, change: Any) -> None:
        query = change["new"]
        if self._quiet or not query:
            return
        self.apply_preset(query)

    def apply_preset(self, preset: str) -> None:
        """Apply one of :func:`~logitlab.analysis.lesson.presets` (its ``query`` or its
        ``label``): its step at its dtype, as the page's preset menu does; the menu goes
        back to "presets…", as the page's does."""
        from logitlab.analysis.lesson import step

        chosen = next((p for p in self._presets if preset in (p["query"], p["label"])), None)
        if chosen is None:
            raise InputError("preset", f"{preset!r} is not one of the lesson's presets")
        self._apply_step(step(chosen["step"], chosen["dtype"]))
        self._quiet = True
        try:
            self.preset.value = ""
        finally:
            self._quiet = False

    def _set_view(self, lo: float, hi: float) -> None:
        """The z range without a recomputation: the range, the zoom buttons and the focal
        slider (the BCE sliders are rebuilt by the caller)."""
        self.z_range = (lo, hi)
        self.zoom.value = next((k for k, (r, _) in ZOOMS.items() if r == (lo, hi)), None)
        s = self.focal_z
        value = min(max(s.value, lo), hi)
        s.min, s.max = min(s.min, lo), max(s.max, hi)
        s.value = value
        s.min, s.max, s.step = lo, hi, _step_for(lo, hi)

    def _apply_step(self, s: Any) -> None:
        """The state of lesson step ``s`` (a :class:`~logitlab.analysis.lesson.Step`), as
        the page applies the step's query: binary CE, its elements, dtype, rows and range,
        with the rest as the page's defaults (reduction mean, no weights, the default
        frameworks, element 1, the loss error in ULPs)."""
        lo, hi = s.view
        self._quiet = True
        try:
            self.loss.value = "bce"
            self._show_mode()
            self.step.value = s.key
            self.dtype.value = s.dtype
            self.reduction.value = "mean"
            self.weight.value = self.pos_weight.value = ""
            self.every_framework.value = False
            self.formulations = list(s.formulations) if s.formulations else None
            self._set_view(lo, hi)
            self.element.value = 0
            # The step's own elements, as the page sets them (one or two).
            self._set_elements(list(s.z), list(s.y))
            self.element.value = 0
            self.err_quantity.value = "value"
            self.err_kind.value = "ulp"
        finally:
            self._quiet = False
        self.step_text.value = (
            f"<p><b>Step {s.number}: {html.escape(s.title)}</b><br>{html.escape(s.move)}"
            f"<br><span style='color:#0d47a1'>{html.escape(s.watch)}</span></p>"
        )
        self.update()

    def reset(self) -> None:
        """Every control back to the state this explorer was built with (the loss, its
        elements, dtype, reduction, weights, frameworks, range; softmax's row (2, 0, -1)
        with target class 0; focal's z = 3, y = 1, alpha 0.25, gamma 2; linear loss axis,
        loss error in ULPs, no lesson step), as the page's Reset button does."""
        init = self._initial
        lo, hi = init["z_range"]
        self._quiet = True
        try:
            self.loss.value = init["loss"]
            self._show_mode()
            self.step.value = ""
            self.step_text.value = ""
            self.preset.value = ""
            self.dtype.value = init["dtype"]
            self.reduction.value = init["reduction"]
            w, pw = init["weight"], init["pos_weight"]
            self.weight.value = "" if w is None else repr(w)
            self.pos_weight.value = "" if pw is None else repr(pw)
            self.every_framework.value = init["every_framework"]
            self.formulations = None
            self._set_view(lo, hi)
            self.element.value = 0
            self._set_elements(list(init["z"]), list(init["y"]))
            self.element.value = 0
            self.label_smoothing.value = "0"
            self._set_classes([2.0, 0.0, -1.0], 0)
            self.sweep.value = 0
            self.focal_z.value = min(max(3.0, lo), hi)
            self.focal_y.value = 1.0
            self.alpha.value = "0.25"
            self.gamma.value = "2"
            self.log_y.value = False
            self.plot.log_y = False
            self.err_quantity.value = "value"
            self.err_kind.value = "ulp"
        finally:
            self._quiet = False
        self._curve_key = None
        self.update()

    def _err_choice(self, change: Any) -> None:
        if not self._quiet:
            self._draw_errors()

    # ---- computing -------------------------------------------------------------------------

    def _fail(self, err: InputError) -> None:
        self.error = str(err)
        self.table.value = f"<p style='color:#c62828'>{html.escape(str(err))}</p>"

    def update(self) -> None:
        """Recompute with the widgets' current values and redraw the table and plot."""
        try:
            if self.loss.value == "bce":
                self._update_bce()
                return
            # The "where it breaks" plot is binary CE's, as on the page.
            with self._bp_cond:
                self._bce_curve = None
            if self.plot.errors:
                self.plot.errors = {}
            if self.loss.value == "softmax-ce":
                self._update_softmax()
            else:
                self._update_focal()
        except InputError as err:
            self._fail(err)

    def _frameworks(self) -> list[str] | None:
        return ["all"] if self.every_framework.value else None

    def _show(self, c: Comparison, sentences: Sequence[str]) -> None:
        self.error = None
        self.comparison = c
        self.table.value = comparison_html(c, sentences)

    def _draw(self, key: tuple[Any, ...], make: Any) -> bool:
        """Send a new curve when ``key`` changed; a curve's input error goes to the note."""
        if key == self._curve_key:
            return True
        try:
            self.plot.curve = make()
        except InputError as err:
            self.curve_note.value = f"<p style='color:#c62828'>curve: {html.escape(str(err))}</p>"
            self.plot.curve = {}
            self._curve_key = None
            return False
        self.curve_note.value = ""
        self._curve_key = key
        return True

    def _mark(self, z: float, dots: dict[str, Any]) -> None:
        with self.plot.hold_sync():
            self.plot.marker = z if math.isfinite(z) else None
            self.plot.dots = {"z": json_number(z), **dots}

    def _update_bce(self) -> None:
        from logitlab.analysis.curves import select

        z = [s.value for s in self.logit_sliders]
        y = [s.value for s in self.target_sliders]
        w = _optional_number(self.weight.value, "weight")
        pw = _optional_number(self.pos_weight.value, "pos_weight")
        names = [f.name for f in select(self.formulations, self._frameworks())]
        common: dict[str, Any] = {
            "dtype": self.dtype.value,
            "weight": w,
            "pos_weight": pw,
            "formulations": names,
        }
        c = compare(z, y, reduction=self.reduction.value, **common)
        self._show(c, explain(c, saturation(c.dtype.name)))
        i = self.element.value
        lo, hi = self.z_range
        key = ("bce", self.dtype.value, y[i], self.z_range, w, pw, tuple(names))
        made: list[Curve] = []

        def make() -> dict[str, Any]:
            curve = bce_curve(
                y[i],
                dtype=self.dtype.value,
                weight=w,
                pos_weight=pw,
                z_min=lo,
                z_max=hi,
                points=_CURVE_POINTS,
                formulations=select(names),
            )
            made.append(curve)
            return curve_data(curve)

        drawn = self._draw(key, make)
        if not drawn:
            with self._bp_cond:
                self._bce_curve = None
            self.plot.errors = {}
            return
        if made:
            # A new curve: the error plot follows, and the breakpoints of its target.
            searched = [f.name for f in select(names) if not f.missing()]
            with self._bp_cond:
                self._bce_curve = made[0]
                self._bp_key = (y[i], self.dtype.value, tuple(searched), w, pw)
                self._draw_errors()
            self._want_breakpoints()
        one = compare([z[i]], [y[i]], reduction="none", **common)
        zz = float(one.case.logits.ravel()[0])
        self._mark(
            zz,
            _dots(
                one,
                None,
                f"dots: element {i + 1} alone (z{i + 1} = {zz:.7g}, y{i + 1} = {y[i]:.7g}), "
                f"per element; the table shows the {self.reduction.value}",
                errors=True,
            ),
        )

    # ---- the "where it breaks" plot and its breakpoints ----------------------------------

    def _draw_errors(self) -> None:
        """Send the error plot's :func:`error_plot_data` for the current curve, error choice
        and breakpoints (called from the main thread and from the breakpoint worker)."""
        with self._bp_cond:
            curve = self._bce_curve
            if curve is None or self.loss.value != "bce":
                data: dict[str, Any] = {}
            else:
                if not self.search_breakpoints:
                    bp: Any = "not searched (breakpoints=False)"
                else:
                    bp = self._bp_results.get(self._bp_key) if self._bp_key else None
                data = error_plot_data(
                    curve, self.err_quantity.value, self.err_kind.value, breakpoints=bp
                )
            self.plot.errors = data

    def _want_breakpoints(self) -> None:
        """Have the worker search the current key's breakpoints, unless known or off."""
        if not self.search_breakpoints:
            return
        with self._bp_cond:
            if self._bp_key is None or self._bp_key in self._bp_results:
                return
            if self._bp_thread is None:
                self._bp_thread = threading.Thread(
                    target=self._bp_worker, name="logitlab-breakpoints", daemon=True
                )
                self._bp_thread.start()
            self._bp_cond.notify_all()

    def _bp_worker(self) -> None:
        """The breakpoint search, one at a time, in a daemon thread: it waits for the
        target to rest :data:`BREAKPOINT_DELAY` seconds, skips targets left meanwhile, and
        draws the answer if its target is still the plotted one."""
        from logitlab.analysis.lesson import breakpoints

        cond = self._bp_cond
        while True:
            with cond:
                while not self._bp_closed and (
                    self._bp_key is None or self._bp_key in self._bp_results
                ):
                    cond.wait()
                if self._bp_closed:
                    return
                key = self._bp_key
            time.sleep(BREAKPOINT_DELAY)
            with cond:
                if self._bp_closed:
                    return
                if key != self._bp_key:
                    continue
            assert key is not None
            result: Any
            try:
                result = breakpoints(*key)
            except (InputError, ArithmeticError) as err:
                result = str(err)
            except Exception as err:  # shown under the plot, not lost in a thread
                result = f"the search failed ({type(err).__name__}: {err})"
            with cond:
                while len(self._bp_results) >= BREAKPOINT_RESULTS:
                    del self._bp_results[next(iter(self._bp_results))]  # the oldest
                self._bp_results[key] = result
                cond.notify_all()
                if key == self._bp_key:
                    self._draw_errors()

    def wait_breakpoints(self, timeout: float = 120.0) -> Any:
        """The breakpoints of the plotted target, once the background search has them
        (:func:`~logitlab.analysis.lesson.breakpoints`' answer, or its error message);
        ``None`` where the search is off or no binary-CE curve is drawn.  Raises
        :class:`TimeoutError` after ``timeout`` seconds."""
        with self._bp_cond:
            key = self._bp_key
            if not self.search_breakpoints or key is None or self._bce_curve is None:
                return None
            if not self._bp_cond.wait_for(lambda: key in self._bp_results, timeout):
                raise TimeoutError(f"no breakpoints after {timeout} s")
            return self._bp_results[key]

    def close(self) -> None:
        """Close the widgets and stop the breakpoint worker (a search under way finishes
        in the background)."""
        if getattr(self, "_bp_cond", None) is not None:  # None: the constructor refused
            self._stop_breakpoints()
        super().close()

    def _stop_breakpoints(self) -> threading.Thread | None:
        with self._bp_cond:
            self._bp_closed = True
            self._bp_cond.notify_all()
            return self._bp_thread

    def _end_breakpoints(self, timeout: float = 60.0) -> None:
        """At interpreter exit: stop the breakpoint worker and wait for the search it is
        in, which runs torch (:mod:`logitlab.core.background`)."""
        thread = self._stop_breakpoints()
        if thread is not None:
            thread.join(timeout)

    def _update_softmax(self) -> None:
        from logitlab.analysis.compare_softmax import compare_softmax
        from logitlab.analysis.curves_softmax import softmax_curve

        logits = self._class_logits()
        target = self._target()
        ls = _number(self.label_smoothing.value, "label_smoothing")
        common: dict[str, Any] = {
            "dtype": self.dtype.value,
            "label_smoothing": ls,
            "frameworks": self._frameworks(),
        }
        c = compare_softmax(logits, target, reduction=self.reduction.value, **common)
        self._show(c, explain(c))
        sweep = int(self.sweep.value)
        lo, hi = self.z_range

        def make() -> dict[str, Any]:
            d = softmax_curve(
                logits,
                target,
                sweep=sweep,
                z_min=lo,
                z_max=hi,
                points=_MODE_POINTS,
                **common,
            )
            d["title"] = f"softmax cross-entropy against z{sweep} ({d['dtype']}; gaps: NaN or inf)"
            d["x_label"] = f"logit z{sweep} (the other logits fixed)"
            return d

        # The curve does not depend on the swept logit's value, only on whether it is masked.
        others = tuple(v if j != sweep else v == -math.inf for j, v in enumerate(logits))
        key: tuple[Any, ...] = ("softmax-ce", others, repr(target), sweep, ls, self.z_range)
        key += (self.dtype.value, self.every_framework.value)
        if not self._draw(key, make):
            return
        one = compare_softmax(logits, target, reduction="none", **common)
        z = logits[sweep]
        self._mark(
            z,
            _dots(
                one,
                sweep,
                f"dots: the row at z{sweep} = {z:.7g}; gradient with respect to z{sweep}",
            ),
        )

    def _update_focal(self) -> None:
        from logitlab.analysis.compare_focal import compare_focal
        from logitlab.analysis.curves_softmax import focal_curve

        z = float(self.focal_z.value)
        y = float(self.focal_y.value)
        alpha = _optional_number(self.alpha.value, "alpha")
        gamma = _number(self.gamma.value, "gamma")
        common: dict[str, Any] = {
            "alpha": alpha,
            "gamma": gamma,
            "dtype": self.dtype.value,
            "frameworks": self._frameworks(),
        }
        c = compare_focal([z], [y], reduction=self.reduction.value, **common)
        self._show(c, explain(c))
        lo, hi = self.z_range

        def make() -> dict[str, Any]:
            d = focal_curve(y, z_min=lo, z_max=hi, points=_MODE_POINTS, **common)
            a = "none" if alpha is None else f"{alpha:g}"
            d["title"] = (
                f"focal loss, y = {y:.7g}, alpha = {a}, gamma = {gamma:g} "
                f"({d['dtype']}; gaps: NaN or inf)"
            )
            d["x_label"] = "logit z (log-odds, nats)"
            return d

        key = ("focal", y, alpha, gamma, self.z_range, self.dtype.value, self.every_framework.value)
        if not self._draw(key, make):
            return
        one = compare_focal([z], [y], reduction="none", **common)
        zz = float(one.case.logits.ravel()[0])
        self._mark(zz, _dots(one, None, f"dots: z = {zz:.7g}, y = {y:.7g}"))


def notebook_explorer(
    logits: Sequence[float] = (-2.0, 2.0),
    targets: Sequence[float] = (0.3, 0.7),
    dtype: str = "float32",
    reduction: str = "mean",
    z_range: tuple[float, float] = (-30.0, 30.0),
    weight: float | None = None,
    pos_weight: float | None = None,
    every_framework: bool = False,
    loss: str = "bce",
    breakpoints: bool = True,
) -> NotebookExplorer:
    """The explorer as an ipywidgets UI; display it as a notebook cell's last expression.

    ``loss`` is ``"bce"``, ``"softmax-ce"`` or ``"focal"`` (the buttons switch it too).
    ``breakpoints`` searches the exact breakpoint onsets of the plotted target (the error
    plot's dotted lines) in a background thread; ``False`` leaves them out.

    >>> ui = notebook_explorer()                      # doctest: +SKIP
    >>> ui.logit_sliders[0].value = ui.logit_sliders[1].value = 20  # doctest: +SKIP
    >>> ui.comparison.row("torch.probabilities").value.item()       # doctest: +SKIP
    50.0
    """
    return NotebookExplorer(
        logits,
        targets,
        dtype,
        reduction,
        z_range,
        weight,
        pos_weight,
        every_framework,
        loss,
        breakpoints,
    )
