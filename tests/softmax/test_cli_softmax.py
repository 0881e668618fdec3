"""logitlab compare --loss softmax-ce (and the --loss plumbing): output, JSON, options that do
not apply, and every number whole at 80 columns."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()


def run(*args: str, width: int = 80) -> tuple[int, str, str]:
    result = runner.invoke(app, ["compare", *args], env={"COLUMNS": str(width)})
    return result.exit_code, result.stdout, result.stderr


def test_done_when_zero_minus_110() -> None:
    code, out, _ = run("--loss", "softmax-ce", "--logits", "0", "-110", "--target", "1")
    assert code == 0
    blocks = out.split("\n\n")
    log_of = next(b for b in blocks if b.startswith("torch.log_of_softmax"))
    assert re.search(r"loss \(mean\)\s+inf", log_of)
    assert "softmax underflow, log of 0" in log_of
    fused = next(b for b in blocks if b.startswith("torch.cross_entropy"))
    assert re.search(r"loss \(mean\)\s+110\.0", fused) and "loss flags       none" in fused
    why = " ".join(out.split("\nwhy\n", 1)[1].split())
    assert "rounds a class probability the loss needs" in why and "log(0) = −inf" in why


def test_done_when_masked() -> None:
    code, out, _ = run(
        "--loss",
        "softmax-ce",
        "--logits",
        "[[3, -inf, 1], [-inf, -inf, -inf]]",
        "--target",
        "0",
        "0",
        "--reduction",
        "none",
    )
    assert code == 0
    words = " ".join(out.split())  # the explanation is wrapped to the width
    assert "masked NaN" in out and "is fully masked" in words
    assert "handle the masked logits" in words


def test_soft_targets_and_options() -> None:
    code, out, _ = run(
        "--loss",
        "softmax-ce",
        "--logits",
        "[[0, 1, 2]]",
        "--targets",
        "[[0.2, 0.3, 0.5]]",
        "--label-smoothing",
        "0.1",
        "--weight",
        "1",
        "2",
        "3",
        "--dtype",
        "float64",
    )
    assert code == 0, out
    assert "targets[0]" in out and "label_smoothing  0.1" in out


def test_json_has_the_explanation_and_validates() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from logitlab.schemas import load

    code, out, _ = run(
        "--loss", "softmax-ce", "--logits", "1000", "0", "-1000", "--target", "2", "--json"
    )
    assert code == 0
    payload = json.loads(out)
    jsonschema.validate(payload, load("compare"))
    assert payload["quantity"] == "softmax_ce" and payload["explanation"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--loss", "softmax-ce", "--pos-weight", "2"], "--pos-weight"),
        (["--loss", "softmax-ce", "--alpha", "0.5"], "--alpha"),
        (["--loss", "bce", "--target", "1"], "--target"),
        (["--ignore-index", "3"], "--ignore-index"),
        (["--label-smoothing", "0.1"], "--label-smoothing"),
        (["--loss", "focal", "--weight", "1"], "--weight"),
        (["--loss", "softmax-ce", "--from", "x.npz"], "--from"),
        (["--loss", "cross"], "--loss"),
        (["--loss", "softmax-ce", "--logits", "1", "2", "--target", "5"], "--target"),
        (["--loss", "softmax-ce", "--logits", "[[1, 2], [3]]", "--target", "0", "0"], "--logits"),
        (["--loss", "softmax-ce", "--logits", "[[1, 2]", "--target", "0"], "--logits"),
        (["--loss", "softmax-ce", "--logits", "1", "2"], "--target"),
        (["--loss", "softmax-ce", "--target", "0", "--targets", "[[1, 0]]"], "--targets"),
        (["--loss", "softmax-ce", "--label-smoothing", "2"], "--label-smoothing"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(args: list[str], option: str) -> None:
    code, out, err = run(*args)
    assert code == 2, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option}"), err
    assert "Traceback" not in err


def test_focal_dispatch() -> None:
    import importlib.util

    code, out, err = run("--loss", "focal", "--logits", "-2", "2", "--targets", "0", "1")
    if importlib.util.find_spec("logitlab.analysis.compare_focal") is None:
        assert code == 2 and err.strip().startswith("error: --loss: focal is not available")
    else:
        assert code == 0 and "focal" in out


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"-?(?:inf|nan|[0-9][0-9.e+-]*)", text))


CASES = [
    ["--logits", "0", "-110", "--target", "1"],
    ["--logits", "[[3, -inf, 1], [-inf, -inf, -inf]]", "--target", "0", "0", "--reduction", "none"],
    ["--logits", "1000", "0", "-1000", "--target", "2", "--framework", "all"],
    ["--logits", "[[0, 1, 2]]", "--targets", "[[0.2, 0.3, 0.5]]", "--dtype", "bfloat16"],
]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_every_number_whole(width: int, args: list[str]) -> None:
    code, text, _ = run("--loss", "softmax-ce", *args, "--width", str(width))
    assert code == 0
    payload = json.loads(run("--loss", "softmax-ce", *args, "--json")[1])
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    found = set(payload["exact"]["value_repr"])
    for row in payload["rows"]:
        found |= set(row["value_repr"] or []) | set(row["grad_repr"] or [])
    missing = found - _tokens(text)
    assert not missing, missing
    for row in payload["rows"]:
        for flag in row["loss_flags"] + row["grad_flags"]:
            assert any(flag in line for line in text.splitlines()), flag


def test_terminal_tables_and_notebook_html() -> None:
    import io

    from logitlab.analysis.compare_softmax import compare_softmax
    from logitlab.ui.tables import Output, print_comparison

    c = compare_softmax([[3, -float("inf"), 1], [0, -110, 2]], [0, 1], reduction="none")
    buf = io.StringIO()
    print_comparison(c, Output(400, True, buf), explanation=["a sentence."])
    text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())
    assert "loss per sample" in text and "gradient d loss / d z[n, c], per logit" in text
    assert "softmax underflow, log of 0" in text and "- a sentence." in text
    html = c._repr_html_()
    assert html.startswith("<pre>softmax cross-entropy")
