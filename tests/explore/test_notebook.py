"""The notebook widget: built, its sliders set, its output checked.

The widgets here are built with ``breakpoints=False`` (the :func:`notebook_explorer` below)
unless a test is about the breakpoints: the exact breakpoint search takes seconds per
target and runs in a background thread, and tests that do not look at it should not leave
it running while the next ones run.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")
pytest.importorskip("plotly")

import math
import re
import urllib.parse
from typing import Any

import ml_dtypes
import mpmath
import numpy as np
import torch
import torch.nn.functional as F

from logitlab.core.errors import InputError
from logitlab.ui.explore import notebook_explorer as _notebook_explorer
from logitlab.ui.explore._notebook import CurvePlot, NotebookExplorer, error_plot_data


def notebook_explorer(*args: Any, **kwargs: Any) -> NotebookExplorer:
    """The explorer without the background breakpoint search, unless asked for."""
    kwargs.setdefault("breakpoints", False)
    return _notebook_explorer(*args, **kwargs)


def test_widget_like_the_post() -> None:
    ui = notebook_explorer()
    assert isinstance(ui, NotebookExplorer)
    for s in ui.logit_sliders:
        assert (s.min, s.max, s.step) == (-30.0, 30.0, 0.01)
    assert [s.value for s in ui.logit_sliders] == [-2.0, 2.0]
    assert [s.value for s in ui.target_sliders] == [0.3, 0.7]
    assert ui.comparison is not None
    assert "torch.probabilities" in ui.table.value and "torch.logits" in ui.table.value
    # The plot: an anywidget whose module ships in the package and whose plotly.js is the
    # installed plotly package's own bundle (nothing from a CDN).
    assert isinstance(ui.plot, CurvePlot)
    import importlib.resources

    bundled = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    assert ui.plot._plotly == bundled.read_text(encoding="utf-8")
    assert "plotly.js v" in ui.plot._plotly[:200]
    esm = str(ui.plot._esm)
    assert "export default" in esm and "render" in esm
    # no CDN, no fetch, no dynamic import: everything it needs comes through the model
    assert not re.search(r"https?:|//cdn|import\(|fetch\(|<script", esm, re.IGNORECASE)
    curve = ui.plot.curve
    assert curve["points"] == 601 and curve["z"][0] == -30.0 and curve["z"][-1] == 30.0
    assert curve["dtype"] == "float32" and curve["target"] == pytest.approx(0.3)
    assert {r["name"] for r in curve["rows"]} >= {"torch.probabilities", "torch.logits"}
    assert ui.plot.marker == -2.0


def test_the_plot_shows_torchs_own_numbers() -> None:
    """The curve and the dots against torch at float32, and the exact curve by hand."""
    ui = notebook_explorer()
    curve = ui.plot.curve
    z = torch.tensor(curve["z"], dtype=torch.float32)
    y = torch.full_like(z, 0.3)
    rows = {r["name"]: r for r in curve["rows"]}
    logits = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    probs = F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none")
    assert rows["torch.logits"]["value"] == logits.double().tolist()
    assert rows["torch.probabilities"]["value"] == probs.double().tolist()
    # exact: y softplus(-z) + (1 - y) softplus(z), y = float32(0.3)
    y32 = float(torch.tensor(0.3, dtype=torch.float32))
    for i in (0, 150, 300, 600):
        t = curve["z"][i]
        sp = max(t, 0) + math.log1p(math.exp(-abs(t)))  # softplus(t)
        want = y32 * (sp - t) + (1 - y32) * sp
        assert curve["exact"]["value"][i] == pytest.approx(want, rel=1e-14)
    # the dots at z1 = 20: element 1 alone, per element, as torch computes it
    ui.logit_sliders[0].value = 20
    assert ui.plot.marker == 20.0
    z1 = torch.tensor([20.0], requires_grad=True)
    y1 = torch.tensor([0.3])
    loss = F.binary_cross_entropy(torch.sigmoid(z1), y1)
    loss.backward()
    loss = loss.detach()
    dots = ui.plot.dots["rows"]
    assert dots["torch.probabilities"]["value"] == float(loss) == pytest.approx(70.0)
    assert dots["torch.probabilities"]["grad"] == float(z1.grad[0]) == 0.0
    assert dots["torch.naive"]["value"] == "Infinity"  # NaN and inf travel as strings
    assert "per element" in ui.plot.dots["label"] and "mean" in ui.plot.dots["label"]


def test_a_click_on_the_plot_sets_z1() -> None:
    ui = notebook_explorer()
    ui.plot.clicked_z = 12.5
    assert ui.logit_sliders[0].value == 12.5 and ui.plot.marker == 12.5
    ui.plot.clicked_z = 1000.0
    assert ui.logit_sliders[0].value == 30.0  # clamped into the view


def test_moving_the_sliders_to_20_shows_50_and_10() -> None:
    ui = notebook_explorer()
    before = ui.plot.marker
    ui.logit_sliders[0].value = 20
    ui.logit_sliders[1].value = 20
    c = ui.comparison
    assert c is not None
    assert c.row("torch.probabilities").value.item() == 50.0
    assert c.row("torch.logits").value.item() == 10.0
    html = ui.table.value
    assert "<b>50.0</b>" in html and "<b>10.0</b>" in html
    assert "sigmoid saturated" in html and "log clamped" in html and "gradient vanished" in html
    assert "From z = 16.635532 up, float32 sigmoid" in html
    assert before == -2.0 and ui.plot.marker == 20.0  # the marker moved


def _cells(html: str, name: str) -> list[str]:
    """The text of each cell of the table row for ``name`` (tags stripped)."""
    start = html.index(f"<tr data-name='{name}'>")
    segment = html[start : html.index("</tr>", start)]
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", segment)]


def test_numbers_worked_out_independently() -> None:
    """bfloat16, z = (-30, 5), y = (1e-3, 0.5): the widget's rows against torch and by hand."""
    ui = notebook_explorer(logits=(-30.0, 5.0), targets=(1e-3, 0.5), dtype="bfloat16")
    c = ui.comparison
    assert c is not None
    z = torch.tensor([-30.0, 5.0], dtype=torch.bfloat16)
    y = torch.tensor([1e-3, 0.5], dtype=torch.bfloat16)
    y0 = float(y[0])
    assert y0 == 0.00099945068359375  # bfloat16's 1e-3
    # Each row is the framework's own call on the same bfloat16 tensors.
    by_torch = {
        "torch.probabilities": F.binary_cross_entropy(torch.sigmoid(z), y),
        "torch.logits": F.binary_cross_entropy_with_logits(z, y),
    }
    for name, value in by_torch.items():
        assert float(c.row(name).value) == float(value), name
    assert float(by_torch["torch.probabilities"]) == 1.2265625
    assert float(by_torch["torch.logits"]) == 1.25
    # The exact mean, by hand: (y0 softplus(30) + (1 - y0) softplus(-30)) / 2
    # + (softplus(5) + softplus(-5)) / 4, with softplus(-t) = log1p(e**-t), softplus(t) =
    # t + softplus(-t).
    sp_m30, sp_m5 = math.log1p(math.exp(-30)), math.log1p(math.exp(-5))
    exact = (y0 * (30 + sp_m30) + (1 - y0) * sp_m30) / 2 + (5 + 2 * sp_m5) / 4
    assert float(c.exact.values[0]) == pytest.approx(exact, rel=1e-14)
    # What the table shows: the shortest bfloat16 repr of each loss and its ULP error, with
    # bfloat16's spacing in [1, 2) of 2**-7.
    html = ui.table.value
    for name, shown in (("torch.probabilities", "1.23"), ("torch.logits", "1.25")):
        cells = _cells(html, name)
        value = float(by_torch[name])
        assert cells[1] == shown and float(ml_dtypes.bfloat16(shown)) == value, cells
        assert cells[2] == f"{abs(value - exact) / 2**-7:.2f}", cells
    assert _cells(html, "torch.probabilities")[2] == "5.35"
    assert _cells(html, "torch.logits")[2] == "2.35"
    assert "<b>1.266</b>" in html  # the exact value rounded to bfloat16: 1.265625
    assert float(ml_dtypes.bfloat16(exact)) == 1.265625


def test_dtype_and_target_change_redraw_the_curve() -> None:
    ui = notebook_explorer()
    ui.dtype.value = "float16"
    assert ui.comparison is not None and ui.comparison.dtype.name == "float16"
    assert ui.plot.curve["dtype"] == "float16"
    key = ui._curve_key
    ui.target_sliders[0].value = 0.9
    assert ui._curve_key != key
    assert ui.plot.curve["target"] == float(torch.tensor(0.9, dtype=torch.float16))
    ui.reduction.value = "none"
    assert ui.comparison.case.reduction == "none"
    assert ui.table.value.count("<tr") >= 4


def test_notebook_explorer_is_lazy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, logitlab.ui.explore; "
        "assert 'ipywidgets' not in sys.modules and 'fastapi' not in sys.modules; "
        "logitlab.ui.explore.notebook_explorer; assert 'ipywidgets' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_same_controls_as_the_page() -> None:
    ui = notebook_explorer()
    # zoom: +-300 one click away, with the slider step following the range
    ui.zoom.value = "±300"
    assert all((s.min, s.max, s.step) == (-300.0, 300.0, 0.1) for s in ui.logit_sliders)
    ui.logit_sliders[0].value = 200
    assert ui.comparison is not None and float(ui.comparison.case.logits.ravel()[0]) == 200
    ui.zoom.value = "±30"
    assert ui.logit_sliders[0].value == 30  # clamped into the view
    # weight and pos_weight: at z = (0, 0), y = (1, 1) the loss is pos_weight * log 2 * weight
    ui.logit_sliders[0].value = ui.logit_sliders[1].value = 0
    ui.target_sliders[0].value = ui.target_sliders[1].value = 1
    ui.weight.value = "2"
    ui.pos_weight.value = "3"
    c = ui.comparison
    assert float(c.row("torch.logits").value) == pytest.approx(6 * math.log(2), rel=1e-6)
    # a bad weight names the field and keeps the last result
    ui.weight.value = "abc"
    assert ui.error is not None and "weight" in ui.error
    assert ui.comparison is c
    ui.weight.value = ""
    ui.pos_weight.value = ""
    assert ui.error is None


def test_the_lesson_steps_in_the_widget() -> None:
    ui = notebook_explorer()
    ui.step.value = "break"
    c = ui.comparison
    assert [s.value for s in ui.logit_sliders] == [20, 20]
    assert c.row("torch.probabilities").value.item() == 50.0
    assert c.row("torch.logits").value.item() == 10.0
    assert "Step 2" in ui.step_text.value
    ui.step.value = "naive"
    c = ui.comparison
    assert math.isinf(float(c.row("numpy.naive").value))
    # torch.logits: softplus(90) = 90 + log1p(e^-90)
    assert float(c.row("torch.logits").value) == pytest.approx(90.0, rel=1e-6)
    ui.step.value = "vanish"
    c = ui.comparison
    # the step's own one element, as the page sets it
    assert [s.value for s in ui.logit_sliders] == [20] and [s.value for s in ui.target_sliders] == [
        1
    ]
    assert float(c.row("torch.logits").grad.ravel()[0]) == 0.0
    # stable.bce keeps d/dz softplus(-z) = -1/(1+e^20)
    assert float(c.row("stable.bce").grad.ravel()[0]) == pytest.approx(
        -1 / (1 + math.exp(20)), rel=1e-6
    )


def test_elements_can_be_added_removed_and_plotted() -> None:
    ui = notebook_explorer()
    ui.add_element.click()
    assert len(ui.logit_sliders) == 3 and [s.value for s in ui.target_sliders] == [0.3, 0.7, 0.5]
    ui.logit_sliders[2].value = 4.0
    ui.target_sliders[2].value = 0.25
    # the mean of three elements, as torch computes it
    z = torch.tensor([-2.0, 2.0, 4.0])
    y = torch.tensor([0.3, 0.7, 0.25])
    c = ui.comparison
    assert c is not None
    assert float(c.row("torch.logits").value) == float(F.binary_cross_entropy_with_logits(z, y))
    # the plot follows the chosen element: its target's curve, the dots at its z
    ui.element.value = 2
    assert ui.plot.curve["target"] == float(torch.tensor(0.25))
    assert ui.plot.marker == 4.0
    z3 = torch.tensor([4.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z3, torch.tensor([0.25]))
    loss.backward()
    dots = ui.plot.dots["rows"]["torch.logits"]
    assert dots["value"] == float(loss.detach()) and dots["grad"] == float(z3.grad[0])
    # a click sets the plotted element's z
    ui.plot.clicked_z = -7.5
    assert [s.value for s in ui.logit_sliders] == [-2.0, 2.0, -7.5]
    # removing element 1 keeps the others in order; the last one cannot be removed
    ui.remove_buttons[0].click()
    assert [s.value for s in ui.logit_sliders] == [2.0, -7.5]
    assert [s.description for s in ui.logit_sliders] == ["z1", "z2"]
    ui.remove_buttons[0].click()
    assert len(ui.logit_sliders) == 1 and ui.remove_buttons[0].disabled
    ui.remove_buttons[0].click()
    assert len(ui.logit_sliders) == 1
    for _ in range(20):
        ui.add_element.click()
    assert len(ui.logit_sliders) == 16 and ui.add_element.disabled  # the page's limit


def _ce(row: list[float], target: int, label_smoothing: float = 0.0) -> tuple[float, list[float]]:
    """torch's own softmax cross-entropy of one row, and its gradient."""
    z = torch.tensor([row], requires_grad=True)
    loss = F.cross_entropy(z, torch.tensor([target]), label_smoothing=label_smoothing)
    loss.backward()
    assert z.grad is not None
    return float(loss.detach()), z.grad[0].tolist()


def test_softmax_mode_against_torch_and_by_hand() -> None:
    ui = notebook_explorer(loss="softmax-ce")
    assert ui.softmax_box.layout.display == "" and ui.bce_box.layout.display == "none"
    assert ui._class_logits() == [2.0, 0.0, -1.0] and ui.target_class.value == 0
    c = ui.comparison
    assert c is not None and c.quantity == "softmax_ce"
    value, grad = _ce([2.0, 0.0, -1.0], 0)
    assert float(c.row("torch.cross_entropy").value) == value
    assert c.row("torch.cross_entropy").grad.ravel().tolist() == grad
    # exact, by hand: log(e^2 + e^0 + e^-1) - 2
    exact = math.log(math.exp(2) + 1 + math.exp(-1)) - 2
    assert float(c.exact.values[0]) == pytest.approx(exact, rel=1e-14)
    assert "torch.cross_entropy" in ui.table.value
    # mask z2: the class drops out of the sum
    ui.masks[2].value = True
    assert ui.class_sliders[2].disabled
    c = ui.comparison
    value, _ = _ce([2.0, 0.0, -math.inf], 0)
    assert float(c.row("torch.cross_entropy").value) == value
    assert float(c.exact.values[0]) == pytest.approx(math.log1p(math.exp(-2)), rel=1e-14)
    # label smoothing 0.1 with z1 at -30
    ui.masks[2].value = False
    ui.class_sliders[1].value = -30.0
    ui.label_smoothing.value = "0.1"
    value, _ = _ce([2.0, -30.0, -1.0], 0, 0.1)
    assert float(ui.comparison.row("torch.cross_entropy").value) == pytest.approx(value, rel=1e-6)
    # by hand: (1 - eps) (-log p0) + eps / K * sum_i (-log p_i)
    lse = math.log(math.exp(2) + math.exp(-30) + math.exp(-1))
    nll = [lse - 2, lse + 30, lse + 1]
    smoothed = 0.9 * nll[0] + 0.1 / 3 * sum(nll)
    assert float(ui.comparison.exact.values[0]) == pytest.approx(smoothed, rel=1e-14)
    assert ui.error is None
    ui.label_smoothing.value = "2"
    assert ui.error is not None and "label_smoothing" in ui.error


def test_softmax_curve_and_dots() -> None:
    ui = notebook_explorer(loss="softmax-ce")
    curve = ui.plot.curve
    assert curve["quantity"] == "softmax_ce" and curve["sweep"] == 0
    assert curve["z"][0] == -30.0 and curve["z"][-1] == 30.0 and curve["points"] == 121
    rows = {r["name"]: r for r in curve["rows"]}
    for i in (0, 40, 60, 120):
        t = curve["z"][i]
        value, grad = _ce([t, 0.0, -1.0], 0)
        assert rows["torch.cross_entropy"]["value"][i] == value
        assert rows["torch.cross_entropy"]["grad"][i] == grad[0]  # d loss / d z0
        # the curve's exact value is rounded to float32: within half an ULP, 2**-24 relative
        exact = math.log(math.exp(t) + 1 + math.exp(-1)) - t
        assert curve["exact"]["value"][i] == pytest.approx(exact, rel=2**-24)
    # the dots: the row at the slider's z0, gradient with respect to z0
    assert ui.plot.marker == 2.0
    value, grad = _ce([2.0, 0.0, -1.0], 0)
    dots = ui.plot.dots["rows"]["torch.cross_entropy"]
    assert dots == {"value": value, "grad": grad[0]}
    # sweep z1 instead: the gradient is d loss / d z1
    ui.sweep.value = 1
    assert ui.plot.curve["sweep"] == 1 and ui.plot.marker == 0.0
    assert ui.plot.dots["rows"]["torch.cross_entropy"]["grad"] == grad[1]
    # a click moves the swept logit; moving it moves only the marker, not the curve
    key = ui._curve_key
    ui.plot.clicked_z = 5.0
    assert ui.class_sliders[1].value == 5.0 and ui.plot.marker == 5.0 and ui._curve_key == key
    # a masked swept logit has no curve: the note says why, the table stays
    ui.masks[1].value = True
    assert "masked" in ui.curve_note.value and ui.plot.curve == {}
    assert ui.error is None and ui.comparison is not None


def test_softmax_classes_and_distribution() -> None:
    ui = notebook_explorer(loss="softmax-ce")
    ui.classes.value = 5
    assert ui._class_logits() == [2.0, 0.0, -1.0, 0.0, 0.0]
    assert [v for _, v in ui.target_class.options] == [0, 1, 2, 3, 4, "dist"]
    ui.target_class.value = 3
    assert ui.sweep.value == 3  # a class target sweeps its logit, as on the page
    value, _ = _ce([2.0, 0.0, -1.0, 0.0, 0.0], 3)
    assert float(ui.comparison.row("torch.cross_entropy").value) == value
    # a distribution target: one-hot at the class it was, then edited
    ui.target_class.value = "dist"
    assert [b.value for b in ui.distribution] == ["0.0", "0.0", "0.0", "1.0", "0.0"]
    assert ui.distribution_box.layout.display == ""
    ui.distribution[3].value = "0.5"
    ui.distribution[0].value = "0.5"
    p = torch.tensor([[0.5, 0.0, 0.0, 0.5, 0.0]])
    want = F.cross_entropy(torch.tensor([[2.0, 0.0, -1.0, 0.0, 0.0]]), p)
    assert float(ui.comparison.row("torch.cross_entropy").value) == float(want)
    lse = math.log(math.exp(2) + 3 + math.exp(-1))
    assert float(ui.comparison.exact.values[0]) == pytest.approx(
        0.5 * (lse - 2) + 0.5 * lse, rel=1e-14
    )
    ui.distribution[1].value = "abc"
    assert ui.error is not None and "p1" in ui.error
    ui.classes.value = 2
    assert len(ui.class_sliders) == 2 and [b.value for b in ui.distribution] == ["0.5", "0.5"]


def _focal(z: float, y: float, alpha: float | None, gamma: float) -> tuple[float, float]:
    """torchvision's formula written out in torch (its value and gradient), one element."""
    t = torch.tensor([z], requires_grad=True)
    yt = torch.tensor([y])
    p = torch.sigmoid(t)
    ce = F.binary_cross_entropy_with_logits(t, yt, reduction="none")
    p_t = p * yt + (1 - p) * (1 - yt)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * yt + (1 - alpha) * (1 - yt)) * loss
    loss = loss.mean()
    loss.backward()
    assert t.grad is not None
    return float(loss.detach()), float(t.grad[0])


def _focal_exact(z: float, y: float, alpha: float | None, gamma: float) -> float:
    """By hand in float64, torchvision's definition: alpha_t (1 - p_t)^gamma ce, with
    ce = y softplus(-z) + (1 - y) softplus(z) and 1 - p_t = y sigma(-z) + (1 - y) sigma(z)
    (no cancellation)."""

    def softplus(t: float) -> float:
        return max(t, 0.0) + math.log1p(math.exp(-abs(t)))

    def sigma(t: float) -> float:
        return 1 / (1 + math.exp(-t)) if t >= 0 else math.exp(t) / (1 + math.exp(t))

    ce = y * softplus(-z) + (1 - y) * softplus(z)
    q = y * sigma(-z) + (1 - y) * sigma(z)
    a = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    return a * q**gamma * ce


def test_focal_mode_against_torch_and_by_hand() -> None:
    ui = notebook_explorer(loss="focal")
    assert ui.focal_box.layout.display == "" and ui.softmax_box.layout.display == "none"
    assert (ui.focal_z.value, ui.focal_y.value, ui.alpha.value, ui.gamma.value) == (
        3.0,
        1.0,
        "0.25",
        "2",
    )
    c = ui.comparison
    assert c is not None and c.quantity == "focal"
    value, grad = _focal(3.0, 1.0, 0.25, 2.0)
    assert float(c.row("torch.torchvision_formula").value) == value
    assert float(c.row("torch.torchvision_formula").grad.ravel()[0]) == grad
    assert float(c.exact.values[0]) == pytest.approx(_focal_exact(3.0, 1.0, 0.25, 2.0), rel=1e-13)
    # alpha empty: no weighting; gamma 0.5, z = -4, y = 0.2
    ui.alpha.value = ""
    ui.gamma.value = "0.5"
    ui.focal_z.value = -4.0
    ui.focal_y.value = 0.2
    c = ui.comparison
    assert c.case.alpha is None
    y = float(torch.tensor(0.2))
    value, grad = _focal(-4.0, y, None, 0.5)
    assert float(c.row("torch.torchvision_formula").value) == pytest.approx(value, rel=1e-6)
    assert float(c.exact.values[0]) == pytest.approx(_focal_exact(-4.0, y, None, 0.5), rel=1e-13)
    # the curve of that element, and the dots at z = -4
    curve = ui.plot.curve
    assert curve["quantity"] == "focal" and curve["points"] == 121
    for i in (0, 60, 100):
        t = curve["z"][i]
        # rounded to float32: within half an ULP
        assert curve["exact"]["value"][i] == pytest.approx(
            _focal_exact(t, y, None, 0.5), rel=2**-24
        )
    dots = ui.plot.dots["rows"]["torch.torchvision_formula"]
    assert ui.plot.marker == -4.0
    assert dots["value"] == pytest.approx(value, rel=1e-6)
    assert dots["grad"] == pytest.approx(grad, rel=1e-5)
    # bad input names the field
    ui.gamma.value = "-1"
    assert ui.error is not None and "gamma" in ui.error
    ui.gamma.value = "2"
    ui.alpha.value = "x"
    assert ui.error is not None and "alpha" in ui.error


def test_switching_losses_and_the_common_controls() -> None:
    ui = notebook_explorer()
    ui.loss.value = "focal"
    ui.dtype.value = "float16"
    assert ui.comparison is not None and ui.comparison.dtype.name == "float16"
    assert ui.plot.curve["dtype"] == "float16"
    ui.zoom.value = "±300"
    assert (ui.focal_z.min, ui.focal_z.max, ui.focal_z.step) == (-300.0, 300.0, 0.1)
    assert ui.plot.curve["z"][0] == -300.0
    ui.log_y.value = True
    assert ui.plot.log_y
    ui.loss.value = "softmax-ce"
    assert ui.comparison.quantity == "softmax_ce" and ui.comparison.dtype.name == "float16"
    ui.reduction.value = "none"
    assert ui.comparison.case.reduction == "none"
    ui.loss.value = "bce"
    assert ui.comparison.quantity == "bce" and ui.bce_box.layout.display == ""
    assert ui.plot.curve["target"] == pytest.approx(0.3, rel=1e-3)
    with pytest.raises(InputError, match="loss"):
        notebook_explorer(loss="hinge")


@pytest.mark.slow
def test_every_framework_adds_rows() -> None:
    """Slow: the first use of every framework imports JAX, Keras, SciPy, scikit-learn."""
    ui = notebook_explorer()
    for loss in ("bce", "focal", "softmax-ce"):
        ui.loss.value = loss
        assert ui.comparison is not None
        n = len(ui.comparison.rows)
        ui.every_framework.value = True
        c = ui.comparison
        assert len(c.rows) > n, loss
        assert {r.formulation.framework for r in c.rows} > {"torch", "stable"}, loss
        assert len(ui.plot.curve["rows"]) == len(c.rows), loss
        ui.every_framework.value = False


# ---- the "where it breaks" plot -------------------------------------------------------------

_MP = mpmath.MPContext()
_MP.prec = 200


def _exact_bce(z: float, y: float) -> Any:
    """y softplus(-z) + (1 - y) softplus(z) in 200-bit mpmath."""
    z_, y_ = _MP.mpf(z), _MP.mpf(y)
    return y_ * _MP.log1p(_MP.exp(-z_)) + (1 - y_) * _MP.log1p(_MP.exp(z_))


def _exact_grad(z: float, y: float) -> Any:
    """sigma(z) - y in 200-bit mpmath."""
    return 1 / (1 + _MP.exp(-_MP.mpf(z))) - _MP.mpf(y)


def _ulps32(computed: float, exact: Any) -> float:
    """ULP error in float32 by the ordinal definition (logitlab.core.ulp's docstring), for
    positive values: the float32 bit pattern counts the values, and the exact value lies
    a fraction (e - f) / spacing past the float32 value f just below it."""
    f = np.float32(float(exact))
    if _MP.mpf(float(f)) > exact:
        f = np.nextafter(f, np.float32(0))
    spacing = float(np.nextafter(f, np.float32(np.inf))) - float(f)
    ordinal_exact = int(f.view(np.int32)) + (exact - _MP.mpf(float(f))) / spacing
    ordinal_computed = int(np.float32(computed).view(np.int32))
    return float(abs(ordinal_computed - ordinal_exact))


def test_the_error_plot_against_torch_and_mpmath() -> None:
    """float32, y = 0.3: each row's ULP error against z, its flags and NaN/inf lanes, worked
    out from torch's own values and a 200-bit exact loss."""
    ui = notebook_explorer()
    errors = ui.plot.errors
    curve = ui.plot.curve
    assert errors["quantity"] == "value" and errors["kind"] == "ulp"
    assert errors["z"] == curve["z"] and len(errors["z"]) == 601
    assert errors["dtype"] == "float32" and "float32, y = 0.3" in errors["title"]
    assert "ULPs of float32" in errors["y_label"]
    assert "Coloured lanes: NaN/inf (bottom)" in errors["legend"]
    assert ui.error_box.layout.display == ""
    rows = {r["name"]: r for r in errors["rows"]}
    assert set(rows) == {"torch.probabilities", "torch.logits", "torch.naive", "stable.bce"}
    z = torch.tensor(curve["z"], dtype=torch.float32)
    y32 = float(torch.tensor(0.3))
    y = torch.full_like(z, y32)
    by_torch = {
        "torch.logits": F.binary_cross_entropy_with_logits(z, y, reduction="none"),
        "torch.probabilities": F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none"),
    }
    for name, losses in by_torch.items():
        for i in (0, 100, 250, 305, 400, 480, 550, 600):
            t, v = float(z[i]), float(losses[i])
            want = _ulps32(v, _exact_bce(t, y32))
            assert rows[name]["error"][i] == pytest.approx(want, rel=1e-9, abs=1e-9), (name, t)
    # Past z = 16.6 torch.sigmoid(z) is exactly 1 in float32 (torch itself says where):
    # torch.probabilities' flags start at the first such point of the curve.
    saturated = (torch.sigmoid(z) == 1).numpy()
    first = float(z[int(np.argmax(saturated))])
    assert saturated[int(np.argmax(saturated)) :].all() and 16 < first < 17
    flags = rows["torch.probabilities"]["flags"]
    assert flags["sigmoid saturated"] == [[first, 30.0]]
    assert flags["log clamped"] == [[first, 30.0]]
    # the hand-written sigmoid's log(1 - p) is -inf there: its error is +inf, a lane
    assert rows["torch.naive"]["nonfinite"] == [[first, 30.0, "+inf"]]
    assert all(v == "Infinity" for v in rows["torch.naive"]["error"][int(np.argmax(saturated)) :])
    assert rows["torch.logits"]["flags"] == {} and rows["torch.logits"]["nonfinite"] == []
    # The dots on it: element 1 alone (z = -2, y = 0.3), its ULP error by hand.
    logit = float(F.binary_cross_entropy_with_logits(torch.tensor([-2.0]), torch.tensor([0.3])))
    dot = ui.plot.dots["rows"]["torch.logits"]
    assert dot["ulp_error"] == pytest.approx(_ulps32(logit, _exact_bce(-2.0, y32)), rel=1e-9)


def test_the_error_plot_gradient_relative() -> None:
    """The gradient's relative error, from torch's gradient and sigma(z) - y in mpmath; the
    choice redraws the error plot only (the curve is not recomputed)."""
    ui = notebook_explorer()
    key = ui._curve_key
    ui.err_quantity.value = "grad"
    ui.err_kind.value = "rel"
    assert ui._curve_key == key
    errors = ui.plot.errors
    assert (errors["quantity"], errors["kind"]) == ("grad", "rel")
    assert errors["y_label"] == "relative error of the gradient (log)"
    assert errors["title"].startswith("where it breaks: gradient error against z")
    rows = {r["name"]: r for r in errors["rows"]}
    z = torch.tensor(ui.plot.curve["z"], dtype=torch.float32, requires_grad=True)
    y32 = float(torch.tensor(0.3))
    F.binary_cross_entropy_with_logits(z, torch.full_like(z, y32), reduction="sum").backward()
    assert z.grad is not None
    for i in (0, 100, 250, 350, 480, 600):  # away from the root at z = log(3/7)
        t, g = float(z.detach()[i]), float(z.grad[i])
        e = _exact_grad(t, y32)
        want = float(abs(g - e) / abs(e))
        assert rows["torch.logits"]["error"][i] == pytest.approx(want, rel=1e-6, abs=1e-15)
    # torch.probabilities' gradient is exactly 0 once sigma(z) = 1: relative error 1
    assert rows["torch.probabilities"]["error"][-1] == 1.0
    assert ui.plot.dots["rows"]["torch.logits"]["grad_relative_error"] is not None


def _bce_curve_small() -> Any:
    from logitlab.analysis.curves import bce_curve

    return bce_curve(0.3, z_min=-30, z_max=30, points=61)


def test_error_plot_data_keeps_the_onsets_in_view() -> None:
    """The breakpoints part of error_plot_data on a made-up answer."""
    curve = _bce_curve_small()

    def onset(name: str, criterion: str, z: float | None, side: str = "against") -> Any:
        return {"formulation": name, "criterion": criterion, "side": side, "z": z}

    bp = {
        "threshold": 0.001,
        "onsets": [
            onset("torch.probabilities", "loss relative error", 12.5),
            onset("torch.probabilities", "gradient vanishes", 16.75, "with"),
            onset("torch.logits", "loss relative error", 88.0),
            onset("torch.logits", "loss non-finite", None),
            onset("jax.logits", "loss relative error", 1.0),  # not a row drawn
        ],
    }
    d = error_plot_data(curve, "value", "ulp", bp)
    assert [(o["formulation"], o["z"]) for o in d["onsets"]] == [("torch.probabilities", 12.5)]
    assert d["onsets"][0]["text"] == (
        "torch.probabilities: loss relative error from z = 12.5 (against the target)"
    )
    assert d["beyond"] == 1 and not d["searching"]
    assert d["note"] == (
        "breakpoints (dotted, ▼): 1 onset of loss criteria in view, 1 beyond it; threshold 0.001"
    )
    g = error_plot_data(curve, "grad", "rel", bp)
    assert [(o["criterion"], o["z"]) for o in g["onsets"]] == [("gradient vanishes", 16.75)]
    assert (
        g["note"]
        == "breakpoints (dotted, ▼): 1 onset of gradient criteria in view; threshold 0.001"
    )
    assert error_plot_data(curve, breakpoints=None)["note"] == "breakpoints: searching…"
    failed = error_plot_data(curve, breakpoints="target: bad")
    assert failed["note"] == "breakpoints: target: bad" and failed["onsets"] == []
    with pytest.raises(InputError) as err:
        error_plot_data(curve, "loss")
    assert err.value.argument == "quantity"
    with pytest.raises(InputError) as err:
        error_plot_data(curve, "value", "ulps")
    assert err.value.argument == "kind"


def test_the_breakpoints_found_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """bfloat16, y = 1, two rows: the background search's onsets on the error plot, and
    torch.probabilities' loss onset found by brute force over every negative bfloat16.
    The rows change before the target has rested (2 s here): only the last state is
    searched."""
    from logitlab.ui.explore import _notebook

    monkeypatch.setattr(_notebook, "BREAKPOINT_DELAY", 2.0)
    ui = notebook_explorer(logits=(-50.0,), targets=(1.0,), dtype="bfloat16", breakpoints=True)
    first = ui._bp_key
    assert ui.plot.errors["searching"] and ui.plot.errors["note"] == "breakpoints: searching…"
    ui.formulations = ["torch.probabilities", "torch.logits"]
    ui.update()
    assert ui._bp_key != first
    bp = ui.wait_breakpoints(timeout=300)
    assert list(ui._bp_results) == [ui._bp_key]  # the first state was left unsearched
    assert isinstance(bp, dict), bp
    errors = ui.plot.errors
    assert not errors["searching"] and errors["note"].startswith("breakpoints (dotted")
    # the threshold: max(1e-3, 2 eps) with bfloat16's eps 2**-7
    assert bp["threshold"] == 2 * 2**-7 and "threshold 0.015625" in errors["note"]
    wanted = [
        o
        for o in bp["onsets"]
        if o["z"] is not None and o["criterion"].startswith("loss") and -30 <= o["z"] <= 30
    ]
    assert [(o["formulation"], o["criterion"], o["z"]) for o in errors["onsets"]] == [
        (o["formulation"], o["criterion"], o["z"]) for o in wanted
    ]
    # Every negative bfloat16 logit: where torch.probabilities' loss is off by more than the
    # threshold (more than 1 ULP too: bfloat16's ULP is at most 2**-7 relative), against
    # the exact -z + log1p(e^z) in float64.
    bits = torch.arange(0x8001, 0xFF80, dtype=torch.int32).to(torch.int16)
    z = bits.view(torch.bfloat16)
    z = z[torch.isfinite(z)]
    loss = F.binary_cross_entropy(torch.sigmoid(z), torch.ones_like(z), reduction="none")
    zd = z.double()
    exact = -zd + torch.log1p(torch.exp(zd))
    bad = ((loss.double() - exact).abs() / exact > bp["threshold"]).numpy()
    onset = float(zd[bad].max())  # the holding value nearest 0
    found = next(
        o
        for o in bp["onsets"]
        if o["formulation"] == "torch.probabilities" and o["criterion"] == "loss relative error"
    )
    assert found["side"] == "against" and found["z"] == onset
    # beyond the ±30 view: counted, not drawn
    assert onset < -30 and errors["beyond"] >= 1
    thread = ui._bp_thread
    ui.close()
    assert thread is not None
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_error_plot_is_binary_ces() -> None:
    ui = notebook_explorer()
    assert ui.plot.errors["z"]
    ui.loss.value = "softmax-ce"
    assert ui.plot.errors == {} and ui.error_box.layout.display == "none"
    ui.loss.value = "focal"
    assert ui.plot.errors == {}
    ui.loss.value = "bce"
    assert ui.plot.errors["dtype"] == "float32" and ui.error_box.layout.display == ""
    assert ui.plot.errors["note"] == "breakpoints: not searched (breakpoints=False)"


# ---- presets and reset ---------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def test_every_preset_sets_its_query() -> None:
    """Each of the lesson's presets (every step at float32, bfloat16 and float16) sets the
    state its page query says, read from the query itself."""
    from logitlab.analysis.lesson import presets

    ui = notebook_explorer()
    labels = [label for label, _ in ui.preset.options[1:]]
    assert labels == [p["label"] for p in presets()] and len(labels) == 12
    for d in ("float32", "bfloat16", "float16"):
        assert sum(label.endswith(f"({d})") for label in labels) == 4
    for p in presets():
        ui.reduction.value = "sum"
        ui.weight.value = "2"
        ui.preset.value = p["query"]
        q = {k: v[0] for k, v in urllib.parse.parse_qs(p["query"]).items()}
        assert ui.preset.value == ""  # back to "presets…", as on the page
        assert ui.step.value == q["step"] and f"Step {ui._steps[q['step']].number}" in (
            ui.step_text.value
        )
        assert [s.value for s in ui.logit_sliders] == _floats(q["z"])
        assert [s.value for s in ui.target_sliders] == _floats(q["y"])
        assert ui.dtype.value == q["dtype"] and ui.reduction.value == "mean"
        assert ui.weight.value == "" and ui.error is None
        lo, hi = float(q["zlo"]), float(q["zhi"])
        assert ui.z_range == (lo, hi)
        assert all((s.min, s.max) == (lo, hi) for s in ui.logit_sliders)
        assert ui.formulations == (q["f"].split(",") if "f" in q else None)
        c = ui.comparison
        assert c is not None and c.dtype.name == q["dtype"]
        assert [r.formulation.name for r in c.rows] == (
            q["f"].split(",")
            if "f" in q
            else ["torch.probabilities", "torch.logits", "torch.naive", "stable.bce"]
        )
        assert ui.plot.curve["z"][0] == lo and ui.plot.curve["z"][-1] == hi
        assert ui.plot.errors["dtype"] == q["dtype"]


def test_the_bfloat16_break_preset_against_torch() -> None:
    ui = notebook_explorer()
    ui.apply_preset("2. Push the sliders out: the probabilities path breaks (bfloat16)")
    z = torch.tensor([20.0, 20.0], dtype=torch.bfloat16)
    y = torch.tensor([0.3, 0.7], dtype=torch.bfloat16)
    c = ui.comparison
    assert c is not None and c.dtype.name == "bfloat16"
    probs = F.binary_cross_entropy(torch.sigmoid(z), y)
    assert float(c.row("torch.probabilities").value) == float(probs)
    assert float(c.row("torch.logits").value) == float(F.binary_cross_entropy_with_logits(z, y))
    assert "bfloat16" in ui.plot.errors["title"]
    with pytest.raises(InputError) as err:
        ui.apply_preset("5. no such step")
    assert err.value.argument == "preset"


def test_the_presets_come_from_the_lesson(monkeypatch: pytest.MonkeyPatch) -> None:
    """The menu is lesson.presets()' list, whatever it holds (not a copy of it)."""
    import logitlab.analysis.lesson as lesson

    made = [
        {"label": "only one", "query": "step=vanish&z=20&y=1", "step": "vanish", "dtype": "float16"}
    ]
    monkeypatch.setattr(lesson, "presets", lambda: made)
    ui = notebook_explorer()
    assert ui.preset.options == (("presets…", ""), ("only one", "step=vanish&z=20&y=1"))
    ui.preset.value = "step=vanish&z=20&y=1"
    assert ui.dtype.value == "float16" and [s.value for s in ui.logit_sliders] == [20.0]


def test_reset_goes_back_to_the_start() -> None:
    ui = notebook_explorer()
    fresh = notebook_explorer()
    ui.apply_preset("3. The hand-written sigmoid at -90 (float16)")
    ui.reduction.value = "sum"
    ui.pos_weight.value = "3"
    ui.add_element.click()
    ui.every_framework.value = False
    ui.err_kind.value = "rel"
    ui.log_y.value = True
    ui.loss.value = "softmax-ce"
    ui.classes.value = 5
    ui.masks[1].value = True
    ui.label_smoothing.value = "0.2"
    ui.loss.value = "focal"
    ui.gamma.value = "3"
    ui.focal_z.value = -7.0
    ui.reset_button.click()
    assert ui.loss.value == "bce" and ui.step.value == "" and ui.step_text.value == ""
    assert [s.value for s in ui.logit_sliders] == [-2.0, 2.0]
    assert [s.value for s in ui.target_sliders] == [0.3, 0.7]
    assert (ui.dtype.value, ui.reduction.value) == ("float32", "mean")
    assert (ui.weight.value, ui.pos_weight.value) == ("", "")
    assert ui.z_range == (-30.0, 30.0) and ui.zoom.value == "±30"
    assert ui.formulations is None and not ui.log_y.value and not ui.plot.log_y
    assert (ui.err_quantity.value, ui.err_kind.value) == ("value", "ulp")
    # the same table, curve and error plot as an explorer just built
    assert ui.table.value == fresh.table.value
    assert ui.plot.curve == fresh.plot.curve and ui.plot.errors == fresh.plot.errors
    assert ui.plot.dots == fresh.plot.dots and ui.plot.marker == fresh.plot.marker
    # and the other losses' controls too
    assert ui._class_logits() == [2.0, 0.0, -1.0] and ui.target_class.value == 0
    assert ui.label_smoothing.value == "0"
    assert (ui.focal_z.value, ui.focal_y.value, ui.alpha.value, ui.gamma.value) == (
        3.0,
        1.0,
        "0.25",
        "2",
    )
    ui.loss.value = "focal"
    fresh.loss.value = "focal"
    assert ui.table.value == fresh.table.value


def test_a_process_that_exits_during_a_breakpoint_search_exits_cleanly() -> None:
    """The search runs torch in a daemon thread; without the wait at exit, CPython ends
    that thread inside torch's C++ code and the process aborts (status 134, "terminate
    called without an active exception"), its work done."""
    import subprocess
    import sys

    # The search is made to spend its time in torch's C++ code (as the real one does for
    # a part of it), so that the exit lands there nearly every time.
    script = (
        "import time\n"
        "import torch\n"
        "from logitlab.analysis import lesson\n"
        "from logitlab.ui.explore import _notebook\n"
        "def search(*args, **kwargs):\n"
        "    x, end = torch.ones(2**22), time.monotonic() + 2\n"
        "    while time.monotonic() < end:\n"
        "        x = x.abs()\n"
        "    return {}\n"
        "lesson.breakpoints = search\n"
        "ui = _notebook.NotebookExplorer(logits=(-50.0, 3.0), targets=(1.0, 0.2),"
        " dtype='float32', breakpoints=True)\n"
        "deadline = time.monotonic() + 60\n"
        "while not ui._bp_thread.is_alive() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "time.sleep(_notebook.BREAKPOINT_DELAY + 0.3)  # inside the search now\n"
        "assert not ui._bp_results, 'the search ended before the exit'\n"
        "print('exiting')\n"
    )
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout == "exiting\n"
