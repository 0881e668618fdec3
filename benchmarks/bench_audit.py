"""Benchmarks for ``logitlab audit``: the fast reference against mpmath and against torch.

Run: ``PYTHONPATH=src python benchmarks/bench_audit.py`` (add ``--audit`` to also time the
default ``logitlab audit`` end to end).  Prints, in one process, for every dtype and target
mix (hard targets, the soft grid, y = 0.3 near the decision boundary):

1. fast reference throughput / per-point mpmath throughput (target >= 100x);
2. fast reference time / time of the float64 torch BCE formulations it audits, on the same
   points (target <= 2x);

and with ``--audit``, the default audit's wall time (target < 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from logitlab import exact
from logitlab.analysis.points import DEFAULT_TARGETS, logit_points, targets_for
from logitlab.core.formats import get_format
from logitlab.core.inputs import BCECase
from logitlab.exact import fast
from logitlab.formulations import get


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


DTYPES = ("float16", "bfloat16", "float32", "float64")
HARD = (0.0, 1.0)
SOFT = tuple(t for t in DEFAULT_TARGETS if t not in HARD)
TORCH = ("torch.probabilities", "torch.logits", "torch.naive")


def _points(dtype: str, mix: str) -> tuple[np.ndarray, np.ndarray]:
    """The audit's logits with hard targets or the soft grid, or y = 0.3 with z uniform in
    [-3, 1] (the decision boundary, where the gradient cancels)."""
    fmt = get_format(dtype)
    if mix == "boundary":
        z = fmt.round(np.random.default_rng(0).uniform(-3, 1, 200_000))
        return z, np.full(z.shape, float(fmt.round(0.3)))
    z = logit_points(fmt, 20_000, 0)
    ys, _ = targets_for(fmt, HARD if mix == "hard" else SOFT)
    return np.tile(z, ys.size), np.repeat(ys, z.size)


def reference_ratios() -> None:
    """One table, one process: per dtype and target mix, the fast reference's throughput
    against per-point mpmath (target >= 100x) and its time against the three float64 torch
    BCE formulations on the same points (target <= 2x)."""
    import torch

    print(
        "fast reference (BCE value + gradient) vs per-point mpmath and vs the torch "
        f"formulations ({', '.join(TORCH)}; float64, torch threads {torch.get_num_threads()})"
    )
    print(
        f"   {'dtype':9s} {'targets':9s} {'points':>7s} {'fallback':>8s} {'mpmath/s':>9s} "
        f"{'fast/s':>10s} {'vs mpmath':>10s} {'fast ms':>8s} {'torch ms':>8s} {'vs torch':>8s}"
    )
    worst_mp, worst_torch = float("inf"), 0.0
    for dtype in DTYPES:
        fmt = get_format(dtype)
        for mix in ("hard", "soft", "boundary"):
            z, y = _points(dtype, mix)
            pick = np.random.default_rng(0).choice(z.size, 400, replace=False)
            start = time.perf_counter()
            for i in pick:
                exact.bce(float(z[i]), float(y[i]))
                exact.bce_grad(float(z[i]), float(y[i]))
            mp_rate = pick.size / (time.perf_counter() - start)
            fallback = fast.bce(z, y, fmt).fallback
            ref_t = _best(lambda z=z, y=y, fmt=fmt: fast.bce(z, y, fmt))
            case = BCECase(z, y, None, None, "none", get_format("float64"))
            torch_t = sum(_best(lambda n=n, case=case: get(n).compute(case)) for n in TORCH)
            vs_mp = z.size / ref_t / mp_rate
            worst_mp, worst_torch = min(worst_mp, vs_mp), max(worst_torch, ref_t / torch_t)
            print(
                f"   {dtype:9s} {mix:9s} {z.size:7d} {fallback / z.size:8.2%} {mp_rate:9.0f} "
                f"{z.size / ref_t:10.0f} {vs_mp:9.0f}x {ref_t * 1e3:8.1f} {torch_t * 1e3:8.1f} "
                f"{ref_t / torch_t:7.2f}x"
            )
    print(
        f"   worst: {worst_mp:.0f}x per-point mpmath (target >= 100x), "
        f"{worst_torch:.2f}x the float64 torch formulations (target <= 2x)"
    )


def default_audit() -> None:
    print("the default audit, end to end (`logitlab audit`)")
    start = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("logitlab")), "audit", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr)
        raise SystemExit(done.returncode)
    import json

    data = json.loads(done.stdout)
    per_dtype: dict[str, float] = {}
    for row in data["rows"]:
        per_dtype[row["dtype"]] = per_dtype.get(row["dtype"], 0.0) + row["seconds"]
    print(
        f"   wall {wall:.1f} s (audit itself {data['seconds']:.1f} s) on "
        f"{data['workers']} worker processes  (target < 60 s)"
    )
    for d, s in per_dtype.items():
        ref = data["reference"][d]
        print(
            f"   {d:9s} {ref['points']:7d} points: formulations {s:6.1f} s, "
            f"reference {ref['seconds']:5.2f} s ({ref['mpmath_fallback']} via mpmath)"
        )
    slow = sorted(
        ((r["seconds"], r["formulation"], r["dtype"]) for r in data["rows"]), reverse=True
    )[:5]
    print("   slowest rows: " + ", ".join(f"{n} {d} {s:.1f} s" for s, n, d in slow))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--audit", action="store_true", help="also time the default audit")
    args = parser.parse_args()
    reference_ratios()
    if args.audit:
        default_audit()


if __name__ == "__main__":
    main()
