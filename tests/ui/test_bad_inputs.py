"""Bad input on the command line: exit 2, one line naming the argument, no traceback, fast.

The table is built per option, so each kind of mistake is tried on each argument.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()

NUMBER_LISTS = ["--logits", "--targets", "--weight", "--pos-weight"]

# Config files for lint, made once: each is wrong in its own way.
# One fixed folder, so that every xdist worker collects the same test ids.
_DIR = Path(tempfile.gettempdir()) / "logitlab-bad-inputs"
_DIR.mkdir(exist_ok=True)
CONFIGS = {
    "tool-not-a-table": "tool = 5\n",
    "logitlab-not-a-table": '[tool]\nlogitlab = "x"\n',
    "lint-not-a-table": "[tool.logitlab]\nlint = 3\n",
    "select-not-codes": "[tool.logitlab.lint]\nselect = 5\n",
    "unknown-code": '[tool.logitlab.lint]\nselect = ["LGL999"]\n',
    "bad-max-bytes": "[tool.logitlab.lint]\nmax-file-bytes = -1\n",
    "per-file-not-table": '[tool.logitlab.lint]\nper-file-ignores = "x"\n',
    "not-toml": "[tool\n",
    "not-utf8": None,
}
for _name, _text in CONFIGS.items():
    _path = _DIR / f"{_name}.toml"
    if _text is None:
        _path.write_bytes(b"\xff\xfe[tool]\n")
    else:
        _path.write_text(_text)


def _cases() -> list[tuple[list[str], str]]:
    cases: list[tuple[list[str], str]] = []
    for flag in NUMBER_LISTS:
        for value in ("abc", "nan", "1,x", "NaN 1", "0x12", "1..2", "1e", "+-1"):
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
    for name in CONFIGS:
        cases.append((["lint", "--config", str(_DIR / f"{name}.toml"), str(_DIR)], "error"))
    for value in ("/dev/zero", str(_DIR), str(_DIR / "missing.toml")):
        cases.append((["lint", "--config", value, str(_DIR)], value))
    for value in ("xml", "", "JSONL"):
        cases.append((["lint", "--format", value, str(_DIR)], "--format"))
    for value in ("-1", "abc", "1.5"):
        cases.append((["lint", "--jobs", value, str(_DIR)], "--jobs"))
    for flag in ("--select", "--ignore"):
        for value in ("LGL999", "XYZ", "LGL0000"):
            cases.append((["lint", flag, value, str(_DIR)], flag))
    cases.append((["lint", "--format", "json", "--format", "text", str(_DIR)], "--format"))
    # audit: every one refused before any work starts (the time bound would catch a run)
    not_a_dir = _DIR / "a-file"
    not_a_dir.write_text("")
    for args, named in (
        (["--seed", "-1"], "--seed"),
        (["--workers", "0"], "--workers"),
        (["--workers", "1000"], "--workers"),
        (["--workers", "abc"], "--workers"),
        (["--points", "3"], "--points"),
        (["--points", "1e9"], "--points"),
        (["--quantity", "nope"], "--quantity"),
        (["--dtype", "float8"], "--dtype"),
        (["--formulation", "nope"], "--formulation"),
        (["--format", "xml"], "--format"),
        (["--format", "html"], "--format"),
        (["--format", "json", "--format", "csv"], "--format"),
        (["--weight", "-1"], "--weight"),
        (["--weight", "1e39", "--dtype", "float32"], "--weight"),
        (["--weight", "nan"], "--weight"),
        (["--pos-weight", "inf"], "--pos-weight"),
        (["--pos-weight", "70000", "--dtype", "float16"], "--pos-weight"),
        (["--out", str(not_a_dir)], "--out"),
        (["--out", str(not_a_dir / "sub")], "--out"),
        (["--seed", "1", "--seed", "2"], "--seed"),
        (["--quantity", "bce", "--quantity", "sigmoid"], "--quantity"),
        (["--breakpoints", "some"], "--breakpoints"),
    ):
        cases.append((["audit", *args], named))
    cases.append((["lint", "--jobs", "1", "--jobs", "2", str(_DIR)], "--jobs"))
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
    assert "error: " in lines[0], lines
    if named:
        assert named in lines[0], lines[0]
    assert result.stdout == "", result.stdout  # nothing half-printed
    assert seconds < 20, seconds
