"""Bad input on the command line: exit 2, one line naming the argument, no traceback, fast.

The table is built per option, so each kind of mistake is tried on each argument.
"""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()

NUMBER_LISTS = ["--logits", "--targets", "--weight", "--pos-weight"]


def _cases() -> list[tuple[list[str], str]]:
    cases: list[tuple[list[str], str]] = []
    for flag in NUMBER_LISTS:
        for value in ("abc", "nan", "1,x", "NaN 1", "0x12"):
            cases.append((["compare", flag, value], flag))
        cases.append((["compare", flag], flag))  # no value
        cases.append((["compare", flag, "1", flag, "1"], flag))  # twice
        cases.append(
            (
                [
                    "compare",
                    flag,
                    "1 2 3",
                    "--logits" if flag != "--logits" else "--targets",
                    "1 2",
                ],
                "",
            )
        )
    for flag in ("--targets", "--weight", "--pos-weight"):
        for value in ("inf", "-inf", "1e999"):
            cases.append((["compare", flag, value], flag))
    for value in ("-0.1", "1.5", "2", "-1e-300"):
        cases.append((["compare", "--targets", value], "--targets"))
    for flag in ("--weight", "--pos-weight"):
        for value in ("-1", "-1e-30", "1e39"):
            cases.append((["compare", flag, value], flag))
        cases.append((["compare", flag, "1 2 3"], flag))  # does not broadcast to (2,)
    for value in ("float8", "int32", "", "float128", "complex64"):
        cases.append((["compare", "--dtype", value], "--dtype"))
        cases.append((["sigmoid", "--dtype", value], "--dtype"))
    for value in ("avg", "", "MEANS", "1"):
        cases.append((["compare", "--reduction", value], "--reduction"))
    for value in ("matlab", "tf", "", "torch,jax"):
        cases.append((["compare", "--framework", value], "--framework"))
        cases.append((["sigmoid", "--framework", value], "--framework"))
    for value in ("nope", "torch.sigmoid", "torch"):
        cases.append((["compare", "--formulation", value], "--formulation"))
    for command in ("compare", "sigmoid"):
        for value in ("0", "39", "1001", "abc", "-80", "1e3"):
            cases.append(([command, "--width", value], "--width"))
        cases.append(([command, "--width", "80", "--width", "90"], "--width"))
        cases.append(([command, "--no-such-option"], "--no-such-option"))
        cases.append(([command, "--json", "extra-argument"], ""))
    for value in ("abc", "nan", "NaN", "1,2", "inf5", "1e"):
        cases.append((["sigmoid", value], ""))
    cases.append((["sigmoid", "1", "2"], ""))
    cases.append((["compare", "--logits", "1 2", "--targets", "0.5 0.5 0.5"], "--targets"))
    cases.append((["compare", "--logits", " ".join(["1"] * 10_001)], "--logits"))
    cases.append((["no-such-command"], "no-such-command"))
    return cases


CASES = _cases()


def test_the_table_is_large() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize(("args", "named"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_clear_line(args: list[str], named: str) -> None:
    start = time.perf_counter()
    result = runner.invoke(app, args)
    seconds = time.perf_counter() - start
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    if named:
        assert named in lines[0], lines[0]
    assert result.stdout == "", result.stdout  # nothing half-printed
    assert seconds < 20, seconds
