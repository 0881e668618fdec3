"""The post's sliders in a notebook: an ipywidgets explorer over :func:`logitlab.compare`.

Works wherever ipywidgets 8 renders (JupyterLab, Jupyter Notebook 7, VS Code): the table is
an ``HTML`` widget and the plot a PNG in an ``Image`` widget drawn by matplotlib's Agg
backend, so no extra front-end extension is needed.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from logitlab.analysis.compare import Comparison, compare
from logitlab.analysis.curves import Curve, bce_curve
from logitlab.analysis.explain import explain
from logitlab.analysis.saturation import saturation
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES
from logitlab.core.inputs import REDUCTIONS
from logitlab.ui.html import comparison_html

__all__ = ["CurvePlot", "NotebookExplorer", "comparison_html", "notebook_explorer"]

_COLORS = {"torch.probabilities": "#d32f2f", "torch.logits": "#1565c0", "torch.naive": "#ef8f00"}
# For the other formulations, colours far from the three above.
_PALETTE = ("#6a1b9a", "#00897b", "#5d4037", "#c2185b", "#558b2f", "#455a64", "#f9a825", "#26c6da")
_CURVE_POINTS = 601


class CurvePlot:
    """Loss and gradient against z drawn with matplotlib (Agg), saturated regions shaded.

    The figure is built once per curve; moving the marker only moves two lines, so a slider
    move costs one redraw and PNG encode.
    """

    def __init__(self, curve: Curve, width: float = 9.0) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.curve = curve
        fig = Figure(figsize=(width, 5.0), dpi=96)
        self.canvas = FigureCanvasAgg(fig)
        loss_ax, grad_ax = fig.subplots(2, 1, sharex=True)
        sat = saturation(curve.dtype.name)
        lo, hi = float(curve.z[0]), float(curve.z[-1])
        # One colour per row, the same in both plots.
        others = [r.name for r in curve.rows if r.name not in _COLORS]
        colors = dict(_COLORS)
        colors.update({name: _PALETTE[k % len(_PALETTE)] for k, name in enumerate(others)})
        self.markers: list[Any] = []
        self._background: Any = None
        for ax, key, title in ((loss_ax, "value", "loss"), (grad_ax, "grad", "d loss / dz")):
            for r in curve.rows:
                data = getattr(r, key)
                if r.status != "ok" or data is None:
                    continue
                color = colors[r.name]
                ax.plot(curve.z, data, lw=1.6, label=r.name, color=color)
            exact = curve.exact_value if key == "value" else curve.exact_grad
            ax.plot(curve.z, exact, "k--", lw=1.2, label="exact")
            if sat.one_from is not None and sat.one_from < hi:
                ax.axvspan(max(sat.one_from, lo), hi, color="#d32f2f", alpha=0.1, lw=0)
            if sat.zero_up_to is not None and sat.zero_up_to > lo:
                ax.axvspan(lo, min(sat.zero_up_to, hi), color="#d32f2f", alpha=0.1, lw=0)
            self.markers.append(ax.axvline(0.0, color="k", lw=1, ls=":"))
            ax.set_ylabel(title + (" (nats)" if key == "value" else " (nats per unit z)"))
            ax.grid(alpha=0.3)
        loss_ax.set_title(
            f"{curve.dtype.name}, y = {curve.target:.7g}; shaded: torch.sigmoid is exactly 0 or 1",
            fontsize=10,
        )
        loss_ax.legend(fontsize=8, ncol=3, loc="upper center")
        grad_ax.set_xlabel("logit z (log-odds, nats)")
        grad_ax.set_xlim(lo, hi)
        fig.tight_layout()

    def png(self, z_marker: float | None = None) -> bytes:
        """The figure with the marker at ``z_marker``, as PNG bytes."""
        from PIL import Image

        if self._background is None:
            # Draw everything but the markers once; later calls blit the markers onto it.
            for line in self.markers:
                line.set_visible(False)
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
        self.canvas.restore_region(self._background)
        if z_marker is not None and math.isfinite(z_marker):
            for line in self.markers:
                line.set_visible(True)
                line.set_xdata([z_marker, z_marker])
                line.axes.draw_artist(line)
        rgba = self.canvas.buffer_rgba()
        image = Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


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
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.z_range = (float(z_range[0]), float(z_range[1]))
        self.formulations: list[str] | None = None
        self.comparison: Comparison | None = None
        self.error: str | None = None
        self._curve_key: tuple[Any, ...] | None = None
        self._plot: CurvePlot | None = None
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
        self.update()

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
            self._plot = CurvePlot(curve)
            self._curve_key = key
        assert self._plot is not None
        self.plot.value = self._plot.png(float(c.case.logits.ravel()[0]))


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
