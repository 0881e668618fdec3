"""The notebook widget: built, its sliders set, its output checked."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from logitlab.analysis.compare import compare
from logitlab.ui.explore import notebook_explorer
from logitlab.ui.explore._notebook import NotebookExplorer, comparison_html

PNG = b"\x89PNG\r\n\x1a\n"


def test_widget_like_the_post() -> None:
    ui = notebook_explorer()
    assert isinstance(ui, NotebookExplorer)
    for s in ui.logit_sliders:
        assert (s.min, s.max, s.step) == (-300.0, 300.0, 0.01)
    assert [s.value for s in ui.logit_sliders] == [-2.0, 2.0]
    assert [s.value for s in ui.target_sliders] == [0.3, 0.7]
    assert ui.comparison is not None
    assert bytes(ui.plot.value).startswith(PNG)
    assert "torch.probabilities" in ui.table.value and "torch.logits" in ui.table.value


def test_moving_the_sliders_to_20_shows_50_and_10() -> None:
    ui = notebook_explorer()
    before = bytes(ui.plot.value)
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
    assert (
        bytes(ui.plot.value).startswith(PNG) and bytes(ui.plot.value) != before
    )  # the marker moved


def test_same_numbers_as_compare() -> None:
    """The widget shows compare()'s numbers, formatted the same way."""
    ui = notebook_explorer(logits=(-30.0, 5.0), targets=(1e-3, 0.5), dtype="bfloat16")
    c = compare([-30.0, 5.0], [1e-3, 0.5], dtype="bfloat16")
    assert ui.comparison is not None
    for r in c.rows:
        if r.status == "ok":
            assert ui.comparison.row(r.formulation.name).value.tolist() == r.value.tolist()
    assert comparison_html(c) in ui.table.value


def test_dtype_and_target_change_redraw_the_curve() -> None:
    ui = notebook_explorer()
    ui.dtype.value = "float16"
    assert ui.comparison is not None and ui.comparison.dtype.name == "float16"
    key = ui._curve_key
    ui.target_sliders[0].value = 0.9
    assert ui._curve_key != key
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
