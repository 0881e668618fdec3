"""Terminal output at any width: every number whole, no line longer than the width."""

from __future__ import annotations

import io
import json
import re

import pytest
from typer.testing import CliRunner

from logitlab.analysis.compare import compare
from logitlab.cli import app
from logitlab.ui.tables import Output, print_comparison

runner = CliRunner()
CASES = [
    ["--logits", "20", "20"],
    ["--logits", "-2", "2"],
    ["--logits", "inf", "1", "--targets", "0.3"],
    ["--logits", "-30", "100", "--targets", "0", "1", "--dtype", "float64", "--weight", "0", "2"],
    ["--logits", "11", "--targets", "1", "--dtype", "float16", "--pos-weight", "3"],
    ["--logits", "20", "-5", "--targets", ".5", "--framework", "all"],
]


def _numbers(payload: dict) -> set[str]:
    found = set(payload["exact"]["value_repr"]) | set(payload["exact"]["grad_repr"])
    for row in payload["rows"]:
        found |= set(row["value_repr"] or []) | set(row["grad_repr"] or [])
    return found


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"-?(?:inf|nan|[0-9][0-9.e+-]*)", text))


@pytest.mark.parametrize("width", [60, 80, 100, 200])
@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_piped_compare_keeps_every_number_whole(width: int, args: list[str]) -> None:
    text = runner.invoke(app, ["compare", *args, "--width", str(width)]).output
    payload = json.loads(runner.invoke(app, ["compare", *args, "--json"]).output)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    missing = _numbers(payload) - _tokens(text)
    assert not missing, missing
    for row in payload["rows"]:
        for flag in row["loss_flags"] + row["grad_flags"]:
            assert any(flag in line for line in text.splitlines()), flag  # never split


def test_a_flag_stays_on_one_line_for_grep() -> None:
    result = runner.invoke(app, ["compare", "--logits", "20", "20"], env={"COLUMNS": "80"})
    assert [line for line in result.output.splitlines() if "log clamped" in line]


def test_markup_in_values_is_shown_not_eaten() -> None:
    # "[inf, 1.0]" looks like a rich style tag
    c = compare(logits=[float("inf"), 1.0], targets=[0.3])
    for terminal in (True, False):
        stream = io.StringIO()
        print_comparison(c, Output(200, terminal, stream))
        assert "inf, 1.0" in stream.getvalue()


def test_terminal_uses_the_table_when_it_fits_and_blocks_when_not() -> None:
    c = compare(logits=[20.0, 20.0])
    wide, narrow = io.StringIO(), io.StringIO()
    print_comparison(c, Output(250, True, wide))
    print_comparison(c, Output(60, True, narrow))
    assert "┃" in wide.getvalue()
    assert "┃" not in narrow.getvalue()
    for stream, width in ((wide, 250), (narrow, 60)):
        lines = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue()).splitlines()
        assert max(len(line) for line in lines) <= width


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_sigmoid_at_any_width(width: int) -> None:
    text = runner.invoke(app, ["sigmoid", "-90", "--width", str(width)]).output
    payload = json.loads(runner.invoke(app, ["sigmoid", "-90", "--json"]).output)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    tokens = _tokens(text)
    for row in payload:
        if row["status"] == "ok":
            assert row["value_repr"] in tokens
        for key in ("one_from", "zero_up_to"):
            if row[key] is not None:
                from logitlab.core.numbers import shortest_repr

                assert shortest_repr(row[key], row["dtype"]) in tokens


def test_columns_is_honoured() -> None:
    text = runner.invoke(app, ["sigmoid", "-90"], env={"COLUMNS": "60"}).output
    assert max(len(line) for line in text.splitlines()) <= 60


def test_width_out_of_range_is_a_clear_error() -> None:
    result = runner.invoke(app, ["compare", "--width", "5"])
    assert result.exit_code == 2
    assert "--width" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("width", [60, 80, 100])
def test_batch_summary_at_any_width(width: int) -> None:
    logits = " ".join(str(v) for v in range(-40, 41, 2))  # 41 elements: the summary
    args = ["compare", "--logits", logits, "--targets", "0.3"]
    text = runner.invoke(app, [*args, "--width", str(width)]).output
    payload = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for path in payload["paths"]:
        if path["status"] == "ok":
            for element in path["worst_loss"]:
                assert element["value_repr"] in text


@pytest.mark.parametrize("room", [12, 20, 33, 60])
def test_code_wraps_between_tokens(room: int) -> None:
    import re

    from logitlab.ui.tables import code_chunks

    code = (
        "p_t = p*y + (1-p)*(1-y); (alpha_t * F.binary_cross_entropy_with_logits(z, y, "
        "reduction='none') * (1 - p_t)**g).mean()"
    )
    chunks = code_chunks(code, room)
    assert "".join(chunks) == code
    assert all(len(c) <= room for c in chunks)
    # every identifier no longer than the room is whole on one line
    for name in re.findall(r"[A-Za-z_][A-Za-z_0-9.]*", code):
        if len(name) <= room:
            assert any(name in c for c in chunks), (name, chunks)
