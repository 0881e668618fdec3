"""``logitlab compare --from FILE``: every format, the dtype rules, the summary's routing,
its text and JSON, and one-line errors (exit 2) for every bad file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()

Z = np.array([-30.0, -3.5, -0.25, 0.0, 0.5, 2.0, 17.0, 40.0, -120.0, 9.75] * 3, dtype=np.float32)
Y = np.array([0.0, 1.0, 0.3, 0.5, 1.0, 0.0, 1.0, 0.0, 1.0, 0.7] * 3, dtype=np.float32)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["compare", *args], env={"COLUMNS": "100"})
    return result.exit_code, result.stdout, result.stderr


def summary_json(*args: str) -> dict:
    code, out, err = run(*args, "--json", "--framework", "torch")
    assert code == 0, err
    data: dict = json.loads(out)
    return data


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    path = tmp_path / "batch.npz"
    np.savez(path, logits=Z, targets=Y)
    return path


def _worst_ulp(data: dict, name: str) -> float:
    path = {p["name"]: p for p in data["paths"]}[name]
    return float(path["loss"]["max_ulp_error"])


def test_npz_gives_the_summary_in_the_files_dtype(npz: Path) -> None:
    data = summary_json("--from", str(npz))
    assert data["mode"] == "summary"
    assert data["elements"] == Z.size and data["dtype"] == "float32"
    assert data["dtype_source"] == "file"
    assert data["source"] == str(npz)
    probs = {p["name"]: p for p in data["paths"]}["torch.probabilities"]
    # sigmoid(17) and sigmoid(40) round to 1 in float32 (threshold 16.6355), 3 copies each;
    # -120 saturates at 0 (below -103.97)
    assert probs["flag_counts"]["sigmoid saturated"] == 9
    assert sum(probs["loss"]["histogram"].values()) == Z.size
    assert data["reference"]["mpmath_fallback"] == 0


def test_every_format_reads_the_same_batch(tmp_path: Path, npz: Path) -> None:
    want = summary_json("--from", str(npz))
    structured = np.zeros(Z.size, dtype=[("z", np.float32), ("y", np.float32)])
    structured["z"], structured["y"] = Z, Y
    np.save(tmp_path / "s.npy", structured)
    np.save(tmp_path / "pairs.npy", np.stack([Z, Y], axis=1))
    torch.save({"input": torch.from_numpy(Z), "target": torch.from_numpy(Y)}, tmp_path / "b.pt")
    lines = ["logits,labels"] + [f"{float(a)!r},{float(b)!r}" for a, b in zip(Z, Y)]
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    for name, extra in (
        ("s.npy", []),
        ("pairs.npy", []),
        ("b.pt", []),
        ("b.csv", ["--dtype", "float32"]),
    ):
        got = summary_json("--from", str(tmp_path / name), *extra)
        assert got["elements"] == Z.size, name
        assert got["dtype"] == "float32", name
        for path in ("torch.probabilities", "torch.logits", "torch.naive"):
            assert _worst_ulp(got, path) == _worst_ulp(want, path), (name, path)


def test_csv_has_no_dtype_so_the_default_is_float32_and_said(tmp_path: Path) -> None:
    lines = ["z,y,weight"] + [f"{float(a)!r},{float(b)!r},2" for a, b in zip(Z, Y)]
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    data = summary_json("--from", str(tmp_path / "b.csv"))
    assert data["dtype"] == "float32" and data["dtype_source"] == "default"
    assert data["weight"] is True
    code, out, _ = run("--from", str(tmp_path / "b.csv"), "--framework", "torch")
    assert code == 0
    assert "float32 (default" in out


def test_bfloat16_tensors_and_explicit_dtype(tmp_path: Path) -> None:
    z = torch.tensor(Z.tolist(), dtype=torch.bfloat16)
    y = torch.tensor(Y.tolist(), dtype=torch.bfloat16)
    torch.save({"logits": z, "targets": y}, tmp_path / "bf.pt")
    data = summary_json("--from", str(tmp_path / "bf.pt"))
    assert data["dtype"] == "bfloat16" and data["dtype_source"] == "file"
    # NumPy stores ml_dtypes' bfloat16 as 'V2': still read as bfloat16
    np.savez(
        tmp_path / "bf.npz",
        logits=Z.astype(ml_dtypes.bfloat16),
        targets=Y.astype(ml_dtypes.bfloat16),
    )
    again = summary_json("--from", str(tmp_path / "bf.npz"))
    assert again["dtype"] == "bfloat16"
    assert _worst_ulp(again, "torch.logits") == _worst_ulp(data, "torch.logits")
    explicit = summary_json("--from", str(tmp_path / "bf.pt"), "--dtype", "float64")
    assert explicit["dtype"] == "float64" and explicit["dtype_source"] == "--dtype"


def test_small_files_keep_the_per_element_tables(tmp_path: Path) -> None:
    np.savez(tmp_path / "small.npz", logits=Z[:3], targets=Y[:3], extra=Z[:1])
    code, out, _ = run("--from", str(tmp_path / "small.npz"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mode"] == "elements" and data["source"].endswith("small.npz")
    assert data["inputs"]["logits"] == [-30.0, -3.5, -0.25]
    assert any("ignored keys" in n and "extra" in n for n in data["notes"])
    summary = summary_json("--from", str(tmp_path / "small.npz"), "--summary")
    assert summary["mode"] == "summary" and summary["elements"] == 3


def test_many_numbers_on_the_command_line_give_the_summary() -> None:
    logits = ",".join(str(float(v)) for v in Z)
    targets = ",".join(str(float(v)) for v in Y)
    data = summary_json("--logits", logits, "--targets", targets)
    assert data["mode"] == "summary" and data["elements"] == Z.size
    assert data["dtype_source"] == "default"
    code, out, _ = run("--logits", "1", "2", "--json")  # two numbers: the tables as ever
    assert code == 0 and "rows" in json.loads(out)


def test_text_summary_keeps_numbers_whole_and_escapes_user_text(tmp_path: Path) -> None:
    path = tmp_path / "[red]odd[b].npz"
    np.savez(path, logits=Z, targets=Y)
    data = summary_json("--from", str(path))
    code, out, _ = run("--from", str(path), "--framework", "torch")
    assert code == 0
    assert "\x1b[" not in out  # plain text when piped
    assert "[red]odd[b].npz" in out
    for title in ("errors per path", "histogram, loss", "histogram, gradient", "flags", "worst"):
        assert title in out
    worst = {p["name"]: p for p in data["paths"]}["torch.naive"]["loss"]["max_ulp_error"]
    assert repr(float(worst)) in out  # whole, as in the JSON
    assert data["reduction"] == "mean"
    exact = data["reference"]["exact_reduced"]
    assert repr(float(exact)) in out


def _bad(tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (arguments, words the one-line error must contain)."""
    d = tmp_path
    np.savez(d / "keys.npz", a=Z, b=Y)
    np.savez(d / "shape.npz", logits=Z, targets=Y[:7])
    np.savez(d / "nan.npz", logits=np.where(np.arange(Z.size) == 4, np.nan, Z), targets=Y)
    np.savez(d / "outside.npz", logits=Z, y=np.where(np.arange(Y.size) == 2, 1.5, Y))
    np.savez(d / "wshape.npz", logits=Z, targets=Y, weight=np.ones(4))
    np.savez(d / "both.npz", logits=Z, z=Z, targets=Y)
    np.save(d / "three.npy", np.zeros((5, 3)))
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip file at all")
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "corrupt.pt").write_bytes(b"not a torch file")
    torch.save([torch.zeros(3)], d / "list.pt")
    (d / "noheader.csv").write_text("1.0,0.0\n2.0,1.0\n")
    (d / "ragged.csv").write_text("logits,targets\n1.0,0.0\n2.0\n")
    (d / "b.txt").write_text("logits,targets\n1,0\n")
    (d / "empty.csv").write_text("")
    return {
        "missing file": (["--from", str(d / "nope.npz")], ["--from", "no such file"]),
        "unknown extension": (["--from", str(d / "b.txt")], ["--from", "extension", ".txt"]),
        "missing keys": (["--from", str(d / "keys.npz")], ["--from", "logits", "'a', 'b'"]),
        "shapes": (["--from", str(d / "shape.npz")], ["--from", "'targets'", "broadcast"]),
        "NaN": (["--from", str(d / "nan.npz")], ["--from", "'logits'", "index 4", "NaN"]),
        "outside": (["--from", str(d / "outside.npz")], ["--from", "'y'", "1.5", "[0, 1]"]),
        "weight shape": (["--from", str(d / "wshape.npz")], ["--from", "'weight'", "(4,)"]),
        "two aliases": (["--from", str(d / "both.npz")], ["--from", "'logits'", "'z'"]),
        "npy shape": (["--from", str(d / "three.npy")], ["--from", "(5, 3)"]),
        "corrupt npz": (["--from", str(d / "corrupt.npz")], ["--from", "cannot read"]),
        "corrupt npy": (["--from", str(d / "corrupt.npy")], ["--from", "cannot read"]),
        "corrupt pt": (["--from", str(d / "corrupt.pt")], ["--from", "cannot read"]),
        "pt list": (["--from", str(d / "list.pt")], ["--from", "dict"]),
        "csv header": (["--from", str(d / "noheader.csv")], ["--from", "header"]),
        "csv ragged": (["--from", str(d / "ragged.csv")], ["--from", "cannot read"]),
        "empty": (["--from", str(d / "empty.csv")], ["--from", "empty"]),
        "both inputs": (
            ["--from", str(d / "keys.npz"), "--logits", "1", "2"],
            ["--from", "--logits"],
        ),
        "bad dtype": (["--from", str(d / "keys.npz"), "--dtype", "float8"], ["dtype"]),
    }


NAMES = [
    "missing file",
    "unknown extension",
    "missing keys",
    "shapes",
    "NaN",
    "outside",
    "weight shape",
    "two aliases",
    "npy shape",
    "corrupt npz",
    "corrupt npy",
    "corrupt pt",
    "pt list",
    "csv header",
    "csv ragged",
    "empty",
    "both inputs",
    "bad dtype",
]


def _one_line_error(args: list[str]) -> str:
    code, out, err = run(*args)
    assert code == 2, (args, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("name", NAMES)
def test_bad_files_are_one_line_errors(tmp_path: Path, name: str) -> None:
    cases = _bad(tmp_path)
    assert set(cases) == set(NAMES)
    args, words = cases[name]
    line = _one_line_error(args)
    for word in words:
        assert word in line, (name, line)


def test_too_large_files_are_refused_before_reading(
    tmp_path: Path, npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logitlab.core.batch_file as batch_file

    monkeypatch.setattr(batch_file, "MAX_FILE_BYTES", 100)
    line = _one_line_error(["--from", str(npz)])
    assert "--from" in line and "bytes; at most 100" in line
    monkeypatch.setattr(batch_file, "MAX_FILE_BYTES", 10**9)
    monkeypatch.setattr(batch_file, "MAX_BATCH_ELEMENTS", 10)
    line = _one_line_error(["--from", str(npz)])
    assert "--from" in line and "30 elements; at most 10" in line
    np.save(tmp_path / "big.npy", np.zeros((11, 2)))
    line = _one_line_error(["--from", str(tmp_path / "big.npy")])
    assert "at most 10" in line


def test_infinite_logits_in_a_file_are_measured(tmp_path: Path) -> None:
    z = np.concatenate([Z, [math.inf, -math.inf]])
    y = np.concatenate([Y, [1.0, 0.0]])
    np.savez(tmp_path / "inf.npz", logits=z, targets=y)
    data = summary_json("--from", str(tmp_path / "inf.npz"), "--reduction", "sum")
    assert data["elements"] == z.size and data["reduction"] == "sum"
    logits_path = {p["name"]: p for p in data["paths"]}["torch.logits"]
    assert logits_path["reduced"]["reduction"] == "sum"
