"""Fixing costs what the fixes cost, not what the file costs: a generated module with a
few fixes among much plain code is fixed and diffed quickly."""

from __future__ import annotations

import time

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
