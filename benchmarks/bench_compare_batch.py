"""Benchmark for ``logitlab compare --from FILE --json``: your own batch, fast.

Run: ``python benchmarks/bench_compare_batch.py`` (``--sizes 10000 1000000`` by default).

For each size it writes a float32 ``.npz`` (logits: 85% normal * 10, 15% a tail uniform
in [-200, 200]; targets: a third each 0, 1 and soft uniform in (0, 1)), then, in a fresh
interpreter per size, times the whole command in-process (``logitlab.cli`` with the
default frameworks, torch and stable, default ``--reduction mean``): the torch import on
its own, then reading, analysing and writing the JSON.  Peak memory is the process's
maximum resident set size (``resource.getrusage``), torch and all.  Targets: 10^4
elements < 2 s, 10^6 < 30 s, memory < 2 GB; it prints each measurement's ratio to its
target (below 1 meets it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TARGET_SECONDS = {10_000: 2.0, 1_000_000: 30.0}
TARGET_BYTES = 2 * 1024**3

_CHILD = r"""
import contextlib, io, json, resource, sys, time
start = time.perf_counter()
import torch  # noqa: F401
imported = time.perf_counter()
from logitlab.cli import app
out = io.StringIO()
with contextlib.redirect_stdout(out):
    app(["compare", "--from", sys.argv[1], "--json"], standalone_mode=False)
done = time.perf_counter()
data = json.loads(out.getvalue())
print(json.dumps({
    "torch_import_s": imported - start,
    "command_s": done - imported,
    "total_s": done - start,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "elements": data["elements"],
    "fallback": data["reference"]["mpmath_fallback"],
    "seconds": data["seconds"],
    "paths": {p["name"]: p["seconds"] for p in data["paths"]},
}))
"""


def make_batch(n: int, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n) * 10
    tail = rng.random(n) < 0.15
    z[tail] = rng.uniform(-200, 200, size=int(tail.sum()))
    kind = rng.integers(0, 3, size=n)
    y = np.where(kind == 0, 0.0, np.where(kind == 1, 1.0, rng.random(n)))
    np.savez(path, logits=z.astype(np.float32), targets=y.astype(np.float32))


def measure(n: int, folder: Path) -> dict:
    path = folder / f"batch_{n}.npz"
    make_batch(n, path)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True
    )
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            r = measure(n, Path(tmp))
            target = TARGET_SECONDS.get(n)
            print(f"{n} float32 elements, logitlab compare --from batch.npz --json:")
            print(f"  torch import          {r['torch_import_s']:8.2f} s")
            print(f"  command (after torch) {r['command_s']:8.2f} s")
            print(f"  total (with torch)    {r['total_s']:8.2f} s", end="")
            if target:
                print(
                    f"   target < {target:g} s: ratio {r['total_s'] / target:.2f} with torch "
                    f"import, {r['command_s'] / target:.2f} without"
                )
            else:
                print()
            print(
                f"  peak memory (RSS)     {r['peak_rss_bytes'] / 2**20:8.0f} MiB"
                f"   target < 2 GiB: ratio {r['peak_rss_bytes'] / TARGET_BYTES:.2f}"
            )
            print(
                f"  reference {r['seconds']['reference']:.2f} s "
                f"({r['fallback']} gradients in mpmath); per path: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in r["paths"].items())
            )


if __name__ == "__main__":
    main()
