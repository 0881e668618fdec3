"""Fixing costs what the fixes cost, not what the file costs: a generated module with a
few fixes among much plain code is fixed and diffed quickly."""

from __future__ import annotations

import time

import pytest

from logitlab.lint._fixes import fix_source, unified_diff

PLAIN = """
def plain_{i}(x, y):
    total = 0
    for k in range(10):
        total += x * k + y
    return {{"value": total, "name": "plain_{i}"}}
"""
FIXABLE = """
def loss_{i}(x, y, logits):
    a = torch.log(torch.sigmoid(x))
    b = F.binary_cross_entropy(torch.sigmoid(logits), y)
    return a + b
"""


def generated(n: int, every: int = 10) -> str:
    head = "import torch\nimport torch.nn.functional as F\n"
    body = [(FIXABLE if i % every == 0 else PLAIN).format(i=i) for i in range(n)]
    return head + "".join(body)


def test_large_generated_file_is_fixed_fast() -> None:
    source = generated(2000)  # about 300 KiB, 400 fixes
    start = time.perf_counter()
    result = fix_source(source, "big.py")
    diff = unified_diff("big.py", source, result.source)
    elapsed = time.perf_counter() - start
    assert len(result.fixed) == 400 and not result.remaining
    assert diff.count("\n+    a = F.logsigmoid(x)") == 200
    assert elapsed < 20, f"fixing took {elapsed:.1f} s"  # generous: CI machines are slow


def test_diff_of_many_scattered_changes_is_linear() -> None:
    before = "".join(f"line {i}\n" for i in range(200_000))
    after = before.replace("line 5\n", "LINE 5\n").replace("line 77\n", "LINE 77\n")
    after = "\n".join(x if i % 1000 else x + "!" for i, x in enumerate(after.split("\n")))
    start = time.perf_counter()
    diff = unified_diff("x.py", before, after)
    assert time.perf_counter() - start < 10
    assert diff.count("\n-line") == 202


_MEASURE = """
import resource, sys, time
sys.path.insert(0, {here!r})
from test_lint_fix_speed import generated
from logitlab.lint._engine import lint_source
from logitlab.lint._fixes import fix_source, unified_diff
source = generated({n})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
lint_source(source, "big.py")
t1 = time.perf_counter()
result = fix_source(source, "big.py")
unified_diff("big.py", source, result.source)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(source), t1 - t0, t2 - t1, (peak - base) * 1024, len(result.fixed))
"""


def _measure(n: int) -> tuple[int, float, float, int, int]:
    import os
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(here=here, n=n)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), float(out[1]), float(out[2]), int(out[3]), int(out[4])


@pytest.mark.slow
def test_huge_file_fix_is_linear_in_time_and_memory() -> None:
    """--fix/--diff on multi-megabyte files: time and memory grow with the size, not
    faster; the fix costs a few lints of the file (one parse per round, the lint's tree
    reused), memory about one syntax tree."""
    size1, lint1, fix1, mem1, fixed1 = _measure(6_000)  # about 1 MB
    size4, lint4, fix4, mem4, fixed4 = _measure(24_000)  # about 4 MB
    assert fixed1 == 2 * 6_000 // 10 and fixed4 == 2 * 24_000 // 10
    # about 3.3x on a quiet machine (two lints, one LibCST round, the diff); the sum is
    # checked tightly, each size loosely: a one-second timing on a loaded CI machine
    # moves by a third, which failed a per-size 4.5x bound once at 4.6x
    assert fix1 + fix4 <= 4.5 * (lint1 + lint4), (fix1, lint1, fix4, lint4)
    assert fix1 <= 6 * lint1 and fix4 <= 6 * lint4, (fix1, lint1, fix4, lint4)
    growth = size4 / size1
    assert fix4 <= 1.6 * growth * fix1, (fix1, fix4)
    assert mem4 <= 1.3 * growth * mem1, (mem1, mem4)
    assert mem4 <= 400 * size4, f"{mem4 / size4:.0f} bytes of memory per byte of source"


def test_lint_leaves_no_cycle_holding_the_tree() -> None:
    """The fixer pauses the collector: each tree must be freed by reference counting."""
    import ast
    import gc
    from pathlib import Path

    from logitlab.lint._analysis import ModuleAnalysis
    from logitlab.lint._engine import lint_source

    fixtures = Path(__file__).parent / "fixtures"
    sources = [generated(50)] + [p.read_text() for p in sorted(fixtures.rglob("*.py"))]
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for source in sources:
            lint_source(source, "x.py")
        gc.collect()
        held = [o for o in gc.garbage if isinstance(o, (ast.AST, ModuleAnalysis))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert not held, f"{len(held)} tree or analysis objects left in cycles"
