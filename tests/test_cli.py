"""The CLI through typer's runner: defaults, JSON, the sigmoid table and every bad input."""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def table_rows(out: str) -> dict[str, list[str]]:
    """The loss part of each block of piped output, by name, as table cells would be:
    [code, loss, ULP error, rel. error, loss flags] ("exact": [source, loss, "", "", rounded])."""
    rows: dict[str, list[str]] = {}
    name, fields = None, {}
    for line in [*out.splitlines(), ""]:
        if line and not line.startswith(" ") and name is None:
            name, fields = line, {}
        elif line.startswith("  ") and name is not None and not line.startswith("    "):
            label, _, value = line.strip().partition("  ")
            fields.setdefault(label, value.strip())
        elif not line and name is not None:
            if name.startswith("exact"):
                dtype = next(k for k in fields if k.startswith("in "))[3:]
                rows["exact"] = [
                    "mpmath",
                    fields["loss"],
                    "",
                    "",
                    f"{dtype}: {fields['in ' + dtype]}",
                ]
            elif "loss" in fields or "status" in fields:
                flags = fields.get("loss flags", "")
                rows[name] = [
                    fields.get("code", ""),
                    fields.get("loss", ""),
                    fields.get("ULP error", ""),
                    fields.get("rel. error", ""),
                    "" if flags == "none" else flags,
                ]
            name = None
    return rows


def test_compare_defaults_print_the_posts_numbers() -> None:
    code, out, _ = run("compare")
    assert code == 0
    rows = table_rows(out)
    # columns: code, loss, ULP error, rel. error, flags
    with mpmath.workprec(200):
        exact = mpmath.mpf("0.7269280348848304066")
    # The post's float32 numbers: each row's loss cell must read back, in float32, as that
    # row's value (the shortest float32 repr is printed), and be distinct from the others.
    expected = {
        "torch.probabilities": 0.7269279956817627,
        "torch.logits": 0.7269281148910522,
    }
    for name, value in expected.items():
        loss, ulp, rel = rows[name][1:4]
        assert float(np.float32(loss)) == value, (name, loss)
        # ULP error worked out by hand: |value - exact| / 2**-24 (float32 spacing in [0.5, 1))
        by_hand = abs(mpmath.mpf(value) - exact) / mpmath.mpf(2) ** -24
        assert ulp == f"{float(by_hand):.2f}", (name, ulp)
        assert rel == f"{float(abs(mpmath.mpf(value) - exact) / exact):.2e}", (name, rel)
    assert rows["torch.probabilities"][1] == "0.726928"
    assert rows["torch.logits"][1] == "0.7269281"
    assert rows["exact"][1] == "0.72692803488483041"
    assert rows["exact"][-1] == "float32: 0.72692806"  # the exact value rounded to float32
    assert float(np.float32(0.72692806)) == float(np.float32(float(exact)))
    assert "gradient d loss / d z" in out


def test_compare_large_logits() -> None:
    code, out, _ = run("compare", "--logits", "20", "20")
    assert code == 0
    rows = table_rows(out)
    # sigmoid(20) = 1 in float32: each log(1 - p) is clamped at -100, mean of 0.7 * 100 and
    # 0.3 * 100 = 50.  The exact mean is 10 + log1p(e**-20) = 10.0000000021; in float32 10.0.
    assert rows["torch.probabilities"][1] == "50.0"
    assert rows["torch.logits"][1] == "10.0"
    assert rows["exact"][1] == "10.000000002061154"  # 10 + 2.0611536e-9, 17 digits
    flags = rows["torch.probabilities"][-1]
    assert "log clamped" in flags and "sigmoid saturated" in flags
    assert "gradient vanished" in out
    assert rows["torch.logits"][-1] == ""


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
    # 1 / (1 + exp(-z)) is 1 once exp(-z) <= 2**-24 (1 + 2**-24 ties to 1): the first
    # float32 at or above 24 ln 2.  It is 0 once exp(-z) overflows float32, i.e.
    # -z >= ln(2**128 - 2**103) (max + half an ULP): the last float32 at or below minus it.
    with mpmath.workprec(100):
        one = 24 * mpmath.log(2)
        zero = -mpmath.log(mpmath.mpf(2) ** 128 - mpmath.mpf(2) ** 103)
        one_from = np.float32(float(one))
        if mpmath.mpf(float(one_from)) < one:
            one_from = np.nextafter(one_from, np.float32(np.inf))
        zero_up_to = np.float32(float(zero))
        if mpmath.mpf(float(zero_up_to)) > zero:
            zero_up_to = np.nextafter(zero_up_to, np.float32(-np.inf))
    assert by["torch.sigmoid"]["one_from"] == float(one_from) == 16.63553237915039
    assert by["torch.sigmoid"]["zero_up_to"] == float(zero_up_to) == -88.72283935546875


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
    assert code == 2 and "--framework" in err
