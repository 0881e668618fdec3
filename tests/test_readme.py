"""Every console output pasted in README.md is what the code prints now."""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_script", ROOT / "scripts" / "readme.py")
assert spec is not None and spec.loader is not None
readme = importlib.util.module_from_spec(spec)
sys.modules["readme_script"] = readme
spec.loader.exec_module(readme)

TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = readme.blocks(TEXT)


def test_the_readme_has_generated_outputs() -> None:
    commands = [b.command for b in BLOCKS]
    assert any(c.startswith("logitlab compare") for c in commands)
    assert any(c.startswith("logitlab sigmoid") for c in commands)


def _check(block: object) -> None:
    expected = readme.render(block, readme.run(block.command, block.server))  # type: ignore[attr-defined]
    actual = TEXT[block.start : block.end]  # type: ignore[attr-defined]
    command = block.command  # type: ignore[attr-defined]
    assert readme.comparable(block, actual) == readme.comparable(block, expected), (
        f"README.md is stale: run python scripts/readme.py ({command})"
    )


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.slow], ids=lambda b: b.command)
def test_readme_output_is_current(block: object) -> None:
    _check(block)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.slow], ids=lambda b: b.command)
def test_slow_readme_output_is_current(block: object) -> None:
    _check(block)


def test_a_timing_block_compares_everything_but_its_numbers() -> None:
    text = (
        "<!-- markdown slow timing: python benchmarks/bench_x.py -->\n"
        "| a | 12 ms (1.00x) |\n<!-- /markdown -->"
    )
    (block,) = readme.blocks(text)
    assert block.timing
    pasted = text[block.start : block.end]
    assert readme.render(block, "| a | 12 ms (1.00x) |\n") == pasted
    other_run = readme.render(block, "| a | 9.5 ms (0.81x) |\n")
    assert readme.comparable(block, other_run) == readme.comparable(block, pasted)
    renamed_row = readme.render(block, "| b | 12 ms (1.00x) |\n")
    assert readme.comparable(block, renamed_row) != readme.comparable(block, pasted)
    (plain,) = readme.blocks(text.replace(" timing", ""))
    assert readme.comparable(plain, other_run.replace(" timing", "")) != readme.comparable(
        plain, pasted.replace(" timing", "")
    )


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 kernel sets")
def test_the_outputs_are_made_with_the_avx2_kernels_on_two_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An AVX-512 CPU otherwise changes last digits of the audit table and the training run.
    # Whatever the caller's environment asks for (here the scalar kernels on one thread),
    # the commands run as on CI's two-core AVX2 machine.
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    printed = readme.run(
        "python -c 'import torch; print(torch.backends.cpu.get_cpu_capability(),"
        " torch.get_num_threads())'"
    )
    assert printed == "AVX2 2\n"
