"""Speed of logitlab.stable.binary_cross_entropy_with_logits against the frameworks' own.

Forward and forward + backward on 10**7 float32 elements (soft targets), in one process:

* torch tensors: ``stable`` (float64 inside; ``torch.compile`` in its default ``"auto"``
  mode, and eager) against ``F.binary_cross_entropy_with_logits`` (float32 inside);
* NumPy arrays: ``stable`` (float64 inside) against a plain NumPy formulation
  (PyTorch's ``max(z, 0) - z y + log1p(exp(-|z|))`` and ``(sigmoid(z) - y) / n``), run in
  float32 and in float64.

Each timing is the median of ``--repeat`` runs after a warm-up run; the first compiled
call (compilation) is timed separately.  Run: ``python benchmarks/bench_stable.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from logitlab import stable


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_forward_backward(
    loss_fn: Callable[..., torch.Tensor], z: torch.Tensor, y: torch.Tensor
) -> None:
    zg = z.detach().requires_grad_(True)
    loss_fn(zg, y).backward()


def numpy_plain_forward(z: np.ndarray, y: np.ndarray) -> np.floating[Any]:
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def numpy_plain_grad(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-z)) - y) / z.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10**7, help="elements (default 10**7)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.n, args.repeat

    rng = np.random.default_rng(0)
    z_np = rng.normal(0.0, 4.0, n).astype(np.float32)
    y_np = rng.random(n, dtype=np.float32)
    z, y = torch.from_numpy(z_np), torch.from_numpy(y_np)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"n = {n:.0e} float32, median of {repeat}"
    )

    # --- torch ---------------------------------------------------------------------------
    native = F.binary_cross_entropy_with_logits
    ours = stable.binary_cross_entropy_with_logits
    rows: list[tuple[str, float, float]] = []
    t_native_f = median_time(lambda: native(z, y), repeat)
    t_native_fb = median_time(lambda: torch_forward_backward(native, z, y), repeat)
    rows.append(("F.binary_cross_entropy_with_logits", t_native_f, t_native_fb))

    stable.set_torch_compile("auto")
    start = time.perf_counter()
    torch_forward_backward(ours, z, y)
    first_call = time.perf_counter() - start
    t_comp_f = median_time(lambda: ours(z, y), repeat)
    t_comp_fb = median_time(lambda: torch_forward_backward(ours, z, y), repeat)
    compiled = stable.get_torch_compile()
    rows.append((f"stable (torch.compile {compiled!r})", t_comp_f, t_comp_fb))

    stable.set_torch_compile(False)
    t_eager_f = median_time(lambda: ours(z, y), repeat)
    t_eager_fb = median_time(lambda: torch_forward_backward(ours, z, y), repeat)
    rows.append(("stable (eager float64)", t_eager_f, t_eager_fb))
    stable.set_torch_compile("auto")

    print("\ntorch tensors                           forward    fwd+bwd   ratio fwd  ratio fwd+bwd")
    for name, tf, tfb in rows:
        print(
            f"  {name:<36} {tf * 1e3:8.1f} ms {tfb * 1e3:8.1f} ms   "
            f"{tf / t_native_f:6.2f}x   {tfb / t_native_fb:6.2f}x"
        )
    print(f"  (first compiled call, compilation included: {first_call:.1f} s)")

    # --- NumPy ---------------------------------------------------------------------------
    t_plain_f = median_time(lambda: numpy_plain_forward(z_np, y_np), repeat)
    t_plain_g = median_time(lambda: numpy_plain_grad(z_np, y_np), repeat)
    z64, y64 = z_np.astype(np.float64), y_np.astype(np.float64)
    t_plain64_f = median_time(lambda: numpy_plain_forward(z64, y64), repeat)
    t_plain64_g = median_time(lambda: numpy_plain_grad(z64, y64), repeat)
    t_np_f = median_time(lambda: stable.binary_cross_entropy_with_logits(z_np, y_np), repeat)
    t_np_g = median_time(lambda: stable.binary_cross_entropy_with_logits_grad(z_np, y_np), repeat)
    print("\nNumPy arrays                            forward   gradient   ratio fwd  ratio grad")
    print(
        f"  {'plain float32 NumPy':<36} {t_plain_f * 1e3:8.1f} ms {t_plain_g * 1e3:8.1f} ms   "
        f"{1:6.2f}x   {1:6.2f}x"
    )
    print(
        f"  {'plain float64 NumPy (same formula)':<36} {t_plain64_f * 1e3:8.1f} ms "
        f"{t_plain64_g * 1e3:8.1f} ms   "
        f"{t_plain64_f / t_plain_f:6.2f}x   {t_plain64_g / t_plain_g:6.2f}x"
    )
    print(
        f"  {'stable (float64 inside)':<36} {t_np_f * 1e3:8.1f} ms {t_np_g * 1e3:8.1f} ms   "
        f"{t_np_f / t_plain_f:6.2f}x   {t_np_g / t_plain_g:6.2f}x"
    )

    print(
        "\nratio stable/torch native, torch tensors: "
        f"forward {t_comp_f / t_native_f:.2f}x, forward+backward {t_comp_fb / t_native_fb:.2f}x "
        "(target: within 2x)"
    )
    print(
        f"ratio stable/plain NumPy, NumPy arrays: forward {t_np_f / t_plain_f:.2f}x, "
        f"gradient {t_np_g / t_plain_g:.2f}x against float32; forward "
        f"{t_np_f / t_plain64_f:.2f}x, gradient {t_np_g / t_plain64_g:.2f}x against float64"
    )


if __name__ == "__main__":
    main()
