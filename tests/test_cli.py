"""The CLI through typer's runner: defaults, JSON, the sigmoid table and every bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_compare_defaults_print_the_posts_numbers() -> None:
    code, out, _ = run("compare")
    assert code == 0
    assert "0.726928" in out and "0.7269281" in out  # probabilities path, logits path
    assert "0.72692803488483041" in out  # exact
    assert "gradient d loss / d z" in out


def test_compare_large_logits() -> None:
    code, out, _ = run("compare", "--logits", "20", "20")
    assert code == 0
    assert "50.0" in out and "10.0" in out
    assert "log clamped" in out and "sigmoid saturated" in out and "gradient vanished" in out


@pytest.mark.parametrize(
    "logits",
    [["--logits", "-2", "2"], ["--logits", "-2,2"], ["--logits=-2 2"], ["--logits", "-2, 2"]],
)
def test_number_lists_in_every_spelling(logits: list[str]) -> None:
    code, out, _ = run("compare", *logits, "--json")
    assert code == 0, out
    assert json.loads(out)["inputs"]["logits"] == [-2.0, 2.0]


def test_json_has_the_table_content() -> None:
    code, out, _ = run(
        "compare",
        "--logits",
        "20",
        "20",
        "--targets",
        "0.3",
        "0.7",
        "--json",
        "--dtype",
        "bfloat16",
        "--weight",
        "1",
        "2",
        "--reduction",
        "sum",
    )
    assert code == 0
    data = json.loads(out)
    assert data["dtype"] == "bfloat16" and data["reduction"] == "sum"
    row = {r["name"]: r for r in data["rows"]}["torch.probabilities"]
    assert row["flags"] == ["sigmoid saturated", "log clamped", "gradient vanished"]
    # sigmoid(20) is 1 in bfloat16, so each loss is (1 - y) * 100 from the clamp:
    # bfloat16 targets 0.30078125 and 0.69921875, weights 1 and 2: 69.92 + 60.16 = 130.08.
    assert row["value_repr"] == ["130.0"]


def test_pos_weight_option() -> None:
    code, out, _ = run("compare", "--pos-weight", "3", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert rows["torch.probabilities"]["status"] == "not applicable"


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (["--targets", "0.3", "1.5"], "targets"),
        (["--logits", "nan", "1"], "logits"),
        (["--targets", "nan", "0.5"], "targets"),
        (["--logits", "1", "2", "3"], "targets"),
        (["--dtype", "float8"], "dtype"),
        (["--reduction", "avg"], "reduction"),
        (["--logits", ""], "logits"),
        (["--logits", "abc"], "logits"),
        (["--weight", "1", "2", "3"], "weight"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], argument: str) -> None:
    code, out, err = run("compare", *args)
    assert code == 2, out
    assert "Traceback" not in out + err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines == [lines[0]] and argument in lines[0], err


def test_infinite_logits_are_accepted() -> None:
    code, out, _ = run("compare", "--logits", "inf", "-inf", "--targets", "1", "0", "--json")
    assert code == 0
    assert json.loads(out)["inputs"]["logits"] == ["Infinity", "-Infinity"]


def test_sigmoid_table() -> None:
    code, out, _ = run("sigmoid", "-90", "--dtype", "float32", "--json")
    assert code == 0
    rows = json.loads(out)
    by = {r["implementation"]: r for r in rows}
    assert by["torch.naive_sigmoid"]["value"] == 0.0  # the post: exactly 0 at -90 in float32
    assert by["torch.sigmoid"]["one_from"] == pytest.approx(16.635532, abs=1e-5)
    assert by["torch.sigmoid"]["zero_up_to"] == pytest.approx(-88.72284, abs=1e-4)


def test_sigmoid_table_text() -> None:
    code, out, _ = run("sigmoid", "-90")
    assert code == 0
    for name in ("float16", "bfloat16", "float32", "float64", "1/(1+torch.exp(-z))"):
        assert name in out


def test_sigmoid_bad_dtype() -> None:
    code, _, err = run("sigmoid", "1", "--dtype", "float8")
    assert code == 2 and "dtype" in err


def test_sigmoid_framework_option() -> None:
    code, out, _ = run("sigmoid", "-90", "--dtype", "float16", "--framework", "numpy", "--json")
    assert code == 0
    names = {r["implementation"] for r in json.loads(out)}
    assert any(n.startswith("numpy.") for n in names)
    assert not any(n.startswith("torch.") for n in names)


def test_compare_framework_option() -> None:
    code, out, _ = run("compare", "--framework", "numpy", "--json")
    assert code == 0
    assert {r["framework"] for r in json.loads(out)["rows"]} == {"numpy"}
    code, _, err = run("compare", "--framework", "matlab")
    assert code == 2 and "frameworks" in err
