"""Benchmarks for ``logitlab audit``: the fast reference against mpmath and against torch.

Run: ``python benchmarks/bench_audit.py`` (add ``--audit`` to also time the default
``logitlab audit`` end to end).  Prints three ratios:

1. fast reference throughput / per-point mpmath throughput (target >= 100x);
2. fast reference time / time of the torch BCE formulations it audits, same points, same
   process (target <= 2x);
3. the default audit's wall time (target < 60 s on 2 cores) and how the work split.
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


def _audit_points(dtype: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    fmt = get_format(dtype)
    z = logit_points(fmt, n, 0)
    ys, _ = targets_for(fmt, DEFAULT_TARGETS)
    return np.tile(z, ys.size), np.repeat(ys, z.size)


def reference_vs_mpmath() -> None:
    print("1. fast reference vs per-point mpmath (BCE value + gradient, audit points)")
    for dtype in ("float32", "float64", "bfloat16"):
        z, y = _audit_points(dtype, 20_000)
        rng = np.random.default_rng(0)
        pick = rng.choice(z.size, 1500, replace=False)
        start = time.perf_counter()
        for i in pick:
            exact.bce(float(z[i]), float(y[i]))
            exact.bce_grad(float(z[i]), float(y[i]))
        mp_rate = pick.size / (time.perf_counter() - start)
        t = _best(lambda z=z, y=y, dtype=dtype: fast.bce(z, y, dtype))
        rate = z.size / t
        print(
            f"   {dtype:9s} mpmath {mp_rate:10.0f} points/s | fast {rate:12.0f} points/s "
            f"({z.size} points) | ratio {rate / mp_rate:8.0f}x  (target >= 100x)"
        )


def reference_vs_torch() -> None:
    print("2. fast reference vs the torch BCE formulations it audits (same points, process)")
    import torch

    names = ("torch.probabilities", "torch.logits", "torch.naive")
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        fmt = get_format(dtype)
        z, y = _audit_points(dtype, 20_000)
        case = BCECase(z, y, None, None, "none", fmt)
        ref_t = _best(lambda z=z, y=y, fmt=fmt: fast.bce(z, y, fmt))
        torch_t = sum(_best(lambda n=n, case=case: get(n).compute(case)) for n in names)
        print(
            f"   {dtype:9s} {z.size:7d} points: reference {ref_t * 1e3:7.1f} ms, "
            f"3 torch formulations {torch_t * 1e3:7.1f} ms "
            f"(torch threads {torch.get_num_threads()}) | ratio {ref_t / torch_t:5.2f}x  "
            "(target <= 2x)"
        )


def default_audit() -> None:
    print("3. the default audit, end to end (`logitlab audit`)")
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
    reference_vs_mpmath()
    reference_vs_torch()
    if args.audit:
        default_audit()


if __name__ == "__main__":
    main()
