"""The post's sliders in a notebook: an ipywidgets explorer over :func:`logitlab.compare`.

The controls are ipywidgets, the table an ``HTML`` widget, and the plot an anywidget
(:class:`CurvePlot`, ``static/widget.js``) that draws the analysis core's curve with the
plotly.js bundled in the installed ``plotly`` package, so it is interactive and works offline
wherever anywidget renders (JupyterLab, Jupyter Notebook 7, VS Code, Colab).  Every number
it shows is computed here by :func:`~logitlab.analysis.curves.bce_curve` and
:func:`~logitlab.analysis.compare.compare`; the JavaScript only draws.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from logitlab.analysis.compare import Comparison, compare
from logitlab.analysis.curves import Curve, bce_curve
from logitlab.analysis.explain import explain
from logitlab.analysis.saturation import saturation
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES
from logitlab.core.inputs import REDUCTIONS
from logitlab.core.numbers import json_number
from logitlab.ui.html import comparison_html

__all__ = ["CurvePlot", "NotebookExplorer", "comparison_html", "curve_data", "notebook_explorer"]

_CURVE_POINTS = 601


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
    return data


class CurvePlot(anywidget.AnyWidget):
    """Loss and gradient against z drawn by plotly.js in the front end (an anywidget).

    ``curve`` is :func:`curve_data` of a :class:`~logitlab.analysis.curves.Curve`, ``marker``
    the z of the dotted line, ``dots`` the per-element values at that z; the JavaScript in
    ``static/widget.js`` only draws them.  A click on the plot sets ``clicked_z``.
    """

    _esm = _STATIC / "widget.js"
    _plotly = traitlets.Unicode("").tag(sync=True)
    curve = traitlets.Dict().tag(sync=True)
    marker = traitlets.Float(None, allow_none=True).tag(sync=True)
    dots = traitlets.Dict().tag(sync=True)
    clicked_z = traitlets.Float(None, allow_none=True).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_plotly=_plotly_source(), **kwargs)


def _optional_number(text: str, argument: str) -> float | None:
    """A weight box's text: empty is none; ``Infinity`` and ``-inf`` are numbers, as in the API."""
    t = text.strip()
    if not t:
        return None
    try:
        return float(t)
    except ValueError:
        raise InputError(argument, f"{t!r} is not a number") from None


#: The zoom choices: label -> (range, slider step); the step follows the range.
ZOOMS = {"±30": ((-30.0, 30.0), 0.01), "±300": ((-300.0, 300.0), 0.1)}


class NotebookExplorer(widgets.VBox):
    """Two logit sliders and two target sliders, dtype, reduction, weight, pos_weight, every
    framework, a zoom (±30 with step 0.01, ±300 with step 0.1) and the lesson's steps; below
    them the table from :func:`~logitlab.analysis.compare.compare` with the explanation, and
    a plot of z₁'s loss and gradient against z.  ``comparison`` holds the last result;
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
    ) -> None:
        if len(logits) != 2 or len(targets) != 2:
            raise InputError("logits", "the notebook explorer has two elements, like the post")
        from logitlab.analysis.lesson import steps

        layout = widgets.Layout(width="95%")
        style = {"description_width": "2.5em"}
        step = 0.01 if z_range[1] - z_range[0] <= 100 else 0.1
        self.logit_sliders = [
            widgets.FloatSlider(
                value=float(z),
                min=z_range[0],
                max=z_range[1],
                step=step,
                description=f"z{i + 1}",
                continuous_update=True,
                readout_format=".2f",
                layout=layout,
                style=style,
            )
            for i, z in enumerate(logits)
        ]
        self.target_sliders = [
            widgets.FloatSlider(
                value=float(y),
                min=0.0,
                max=1.0,
                step=0.01,
                description=f"y{i + 1}",
                continuous_update=True,
                readout_format=".2f",
                layout=layout,
                style=style,
            )
            for i, y in enumerate(targets)
        ]
        self.dtype = widgets.Dropdown(options=list(DTYPE_NAMES), value=dtype, description="dtype")
        self.reduction = widgets.Dropdown(
            options=list(REDUCTIONS), value=reduction, description="reduction"
        )
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
        self.every_framework = widgets.Checkbox(
            value=every_framework, description="every framework"
        )
        zoom = next((k for k, (r, _) in ZOOMS.items() if r == tuple(z_range)), None)
        self.zoom = widgets.ToggleButtons(options=list(ZOOMS), value=zoom, description="z range")
        self._steps = {s.key: s for s in steps("float32")}
        self.step = widgets.Dropdown(
            options=[("free", "")]
            + [(f"{s.number}. {s.title}", s.key) for s in self._steps.values()],
            value="",
            description="lesson",
        )
        self.step_text = widgets.HTML()
        self.table = widgets.HTML()
        self.plot = CurvePlot(layout=widgets.Layout(width="100%"))
        self.z_range = (float(z_range[0]), float(z_range[1]))
        self.formulations: list[str] | None = None
        self.comparison: Comparison | None = None
        self.error: str | None = None
        self._curve_key: tuple[Any, ...] | None = None
        self._quiet = False
        super().__init__(
            [
                widgets.HBox([self.step]),
                self.step_text,
                *self.logit_sliders,
                *self.target_sliders,
                widgets.HBox([self.dtype, self.reduction, self.zoom]),
                widgets.HBox([self.weight, self.pos_weight, self.every_framework]),
                self.table,
                self.plot,
            ]
        )
        for w in [
            *self.logit_sliders,
            *self.target_sliders,
            self.dtype,
            self.reduction,
            self.weight,
            self.pos_weight,
        ]:
            w.observe(self._changed, names="value")
        self.every_framework.observe(self._every, names="value")
        self.zoom.observe(self._zoom, names="value")
        self.step.observe(self._step, names="value")
        self.plot.observe(self._clicked, names="clicked_z")
        self.update()

    def _clicked(self, change: Any) -> None:
        z = change["new"]
        if z is not None and math.isfinite(z):
            s = self.logit_sliders[0]
            s.value = min(max(float(z), s.min), s.max)

    def _changed(self, change: Any) -> None:
        if not self._quiet:
            self.update()

    def _every(self, change: Any) -> None:
        self.formulations = None
        self.update()

    def set_range(self, lo: float, hi: float) -> None:
        """Show ``[lo, hi]``; the sliders' step follows (0.01 up to a width of 100, else 0.1)."""
        step = 0.01 if hi - lo <= 100 else 0.1
        self._quiet = True
        try:
            for s in self.logit_sliders:
                value = min(max(s.value, lo), hi)
                s.min, s.max = min(s.min, lo), max(s.max, hi)
                s.value = value
                s.min, s.max, s.step = lo, hi, step
        finally:
            self._quiet = False
        self.z_range = (lo, hi)
        self.update()

    def _zoom(self, change: Any) -> None:
        if change["new"] in ZOOMS:
            (lo, hi), _ = ZOOMS[change["new"]]
            self.set_range(lo, hi)

    def _step(self, change: Any) -> None:
        key = change["new"]
        if not key:
            self.step_text.value = ""
            return
        from logitlab.analysis.lesson import LESSON_DTYPES, step

        dtype = self.dtype.value if self.dtype.value in LESSON_DTYPES else "float32"
        s = step(key, dtype)
        # The widget has two elements: a one-element step sets both to the same (z, y), so
        # the mean is that element's own loss.
        z = list(s.z) * (2 // len(s.z))
        y = list(s.y) * (2 // len(s.y))
        self._quiet = True
        try:
            self.dtype.value = s.dtype
            self.weight.value = self.pos_weight.value = ""
            self.every_framework.value = False
            self.formulations = list(s.formulations) if s.formulations else None
            lo, hi = s.view
            for slider, v in zip(self.logit_sliders, z):
                slider.min, slider.max = min(slider.min, lo, v), max(slider.max, hi, v)
                slider.value = v
                slider.min, slider.max = lo, hi
                slider.step = 0.01 if hi - lo <= 100 else 0.1
            for slider, v in zip(self.target_sliders, y):
                slider.value = v
            self.zoom.value = next((k for k, (r, _) in ZOOMS.items() if r == (lo, hi)), None)
        finally:
            self._quiet = False
        self.z_range = (lo, hi)
        self.step_text.value = (
            f"<p><b>Step {s.number}: {html.escape(s.title)}</b><br>{html.escape(s.move)}"
            f"<br><span style='color:#0d47a1'>{html.escape(s.watch)}</span></p>"
        )
        self.update()

    def update(self) -> None:
        """Recompute with the widgets' current values and redraw the table and plot."""
        from logitlab.analysis.curves import select

        z = [s.value for s in self.logit_sliders]
        y = [s.value for s in self.target_sliders]
        try:
            w = _optional_number(self.weight.value, "weight")
            pw = _optional_number(self.pos_weight.value, "pos_weight")
            frameworks = ["all"] if self.every_framework.value else None
            names = [f.name for f in select(self.formulations, frameworks)]
            c = compare(
                z,
                y,
                dtype=self.dtype.value,
                reduction=self.reduction.value,
                weight=w,
                pos_weight=pw,
                formulations=names,
            )
        except InputError as err:
            self.error = str(err)
            self.table.value = f"<p style='color:#c62828'>{html.escape(str(err))}</p>"
            return
        self.error = None
        self.comparison = c
        self.table.value = comparison_html(c, explain(c, saturation(c.dtype.name)))
        key = (self.dtype.value, y[0], self.z_range, w, pw, tuple(names))
        if key != self._curve_key:
            lo, hi = self.z_range
            try:
                curve = bce_curve(
                    y[0],
                    dtype=self.dtype.value,
                    weight=w,
                    pos_weight=pw,
                    z_min=lo,
                    z_max=hi,
                    points=_CURVE_POINTS,
                    formulations=select(names),
                )
            except InputError as err:
                self.error = str(err)
                return
            self.plot.curve = curve_data(curve)
            self._curve_key = key
        self._mark(z[0], y[0], w, pw, names)

    def _mark(
        self, z: float, y: float, w: float | None, pw: float | None, names: list[str]
    ) -> None:
        """The plot's marker at element 1's z, with its per-element values from ``compare``."""
        one = compare(
            [z],
            [y],
            dtype=self.dtype.value,
            reduction="none",
            weight=w,
            pos_weight=pw,
            formulations=names,
        )
        zz = float(one.case.logits.ravel()[0])
        rows = {
            r.formulation.name: {
                "value": json_number(float(r.value.ravel()[0])),
                "grad": json_number(float(r.grad.ravel()[0])),
            }
            for r in one.rows
            if r.status == "ok" and r.value is not None and r.grad is not None
        }
        with self.plot.hold_sync():
            self.plot.marker = zz if math.isfinite(zz) else None
            self.plot.dots = {
                "z": json_number(zz),
                "rows": rows,
                "label": f"dots: element 1 alone (z1 = {zz:.7g}, y1 = {y:.7g}), per element; "
                f"the table shows the {self.reduction.value}",
            }


def notebook_explorer(
    logits: Sequence[float] = (-2.0, 2.0),
    targets: Sequence[float] = (0.3, 0.7),
    dtype: str = "float32",
    reduction: str = "mean",
    z_range: tuple[float, float] = (-30.0, 30.0),
    weight: float | None = None,
    pos_weight: float | None = None,
    every_framework: bool = False,
) -> NotebookExplorer:
    """The explorer as an ipywidgets UI; display it as a notebook cell's last expression.

    >>> ui = notebook_explorer()                      # doctest: +SKIP
    >>> ui.logit_sliders[0].value = ui.logit_sliders[1].value = 20  # doctest: +SKIP
    >>> ui.comparison.row("torch.probabilities").value.item()       # doctest: +SKIP
    50.0
    """
    return NotebookExplorer(
        logits, targets, dtype, reduction, z_range, weight, pos_weight, every_framework
    )
