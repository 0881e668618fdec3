"""Speed of logitlab.stable's losses against the frameworks' own, in one process.

Forward + backward (and forward alone) on ``-n`` float32 elements (default 10**7, normal
logits of standard deviation 4, uniform soft targets), every timing the median of
``--repeat`` runs after a warm-up run, printed as Markdown tables with each row's ratio
to the framework's own loss measured in the same process:

* torch, eager: ``stable.binary_cross_entropy_with_logits`` with its compiled kernels
  switched off (``stable.set_torch_compile(False)``) against
  ``F.binary_cross_entropy_with_logits``;
* torch.compile: ``stable`` with its kernels compiled (``set_torch_compile(True)``: for
  float32 on the CPU the C kernel of ``stable/_native.c``) against the same eager
  baseline and against ``torch.compile`` of the baseline, and
  the loss inside a function the user compiles (forward + backward); the first
  call of each (compilation) is reported separately;
* NumPy: ``stable`` against the plain float32 NumPy formulation (PyTorch's
  ``max(z, 0) - z y + log1p(exp(-|z|))`` and ``(sigmoid(z) - y) / n``);
* softmax cross-entropy on ``--rows`` x ``--classes`` float32 logits (default the issue's
  10**5 x 1000, normal of standard deviation 4) with class-index targets, torch:
  ``stable.softmax_cross_entropy`` (its eager fast path, and with compiled kernels asked
  for: the C passes) against ``F.cross_entropy`` and, unless ``--skip-compile``,
  ``torch.compile(F.cross_entropy)`` (its compilation reported apart), with the count of
  elements the fast path recomputed exactly;
* the same, without torch.compile, on a language model's vocabulary: ``--vocab-rows`` x
  ``--vocab`` (default 64 x 50,257);
* the same on NumPy (``--numpy-rows``, default 10**4): ``stable`` against a plain float32
  NumPy log-softmax cross-entropy and its gradient ``(softmax - onehot) / N``.

Run: ``python benchmarks/bench_stable.py``.
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


def interleaved(repeat: int, *fns: Callable[[], Any]) -> list[float]:
    """The median time of each of ``fns``, run in turn ``repeat`` times (each call after a
    warm-up call), so that the machine's load shifts them all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for spent, fn in zip(times, fns):
            spent.append(median_time(fn, 1))
    return [statistics.median(spent) for spent in times]


def forward_backward(loss_fn: Callable[..., torch.Tensor], z: torch.Tensor, y: Any) -> None:
    zg = z.detach().requires_grad_(True)
    loss_fn(zg, y).backward()


def numpy_plain_forward(z: np.ndarray, y: np.ndarray) -> np.floating[Any]:
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def numpy_plain_grad(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-z)) - y) / z.size


def ms(t: float) -> str:
    return f"{t * 1e3:.0f} ms"


def row(name: str, times: tuple[float, float], base: tuple[float, float]) -> str:
    cells = [f"{ms(t)} ({t / b:.2f}x)" for t, b in zip(times, base)]
    return f"| {name} | {cells[0]} | {cells[1]} |"


def first_call(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_bce_torch(z: torch.Tensor, y: torch.Tensor, repeat: int, compile_rows: bool) -> list[str]:
    native = F.binary_cross_entropy_with_logits
    ours = stable.binary_cross_entropy_with_logits
    lines = [
        f"| {z.numel():.0e} float32, torch | forward | forward + backward |",
        "|---|---|---|",
    ]
    stable.set_torch_compile(False)
    forward_backward(native, z, y)
    forward_backward(ours, z, y)
    base_f, base_fb, eager_f, eager_fb = interleaved(
        repeat,
        lambda: native(z, y),
        lambda: forward_backward(native, z, y),
        lambda: ours(z, y),
        lambda: forward_backward(ours, z, y),
    )
    base, eager = (base_f, base_fb), (eager_f, eager_fb)
    lines.append(row("`F.binary_cross_entropy_with_logits` (eager)", base, base))
    lines.append(row("`stable` eager (`set_torch_compile(False)`)", eager, base))
    if not compile_rows:
        stable.set_torch_compile("auto")
        return lines

    from logitlab.stable import _bce_compiled

    compiled_native = torch.compile(native)
    compile_native = first_call(lambda: forward_backward(compiled_native, z, y))
    stable.set_torch_compile(True)
    compile_ours = first_call(lambda: forward_backward(ours, z, y))
    # What a user gets writing the loss inside their own torch.compile'd function: the
    # graph breaks at stable's loss, which runs its own compiled kernels.
    inside = torch.compile(lambda a, b: ours(a, b))
    compile_inside = first_call(lambda: forward_backward(inside, z, y))
    before = dict(_bce_compiled.STATS)
    cn_f, cn_fb, co_f, co_fb, cinside = interleaved(
        repeat,
        lambda: compiled_native(z, y),
        lambda: forward_backward(compiled_native, z, y),
        lambda: ours(z, y),
        lambda: forward_backward(ours, z, y),
        lambda: forward_backward(inside, z, y),
    )
    counts = {k: _bce_compiled.STATS[k] - before[k] for k in before}
    stable.set_torch_compile("auto")
    cnative, cours = (cn_f, cn_fb), (co_f, co_fb)
    lines.append(row("`torch.compile(F.binary_cross_entropy_with_logits)`", cnative, base))
    lines.append(row("`stable` compiled kernels (`set_torch_compile(True)`)", cours, base))
    lines.append(
        f"| `torch.compile(lambda z, y: stable.binary_cross_entropy_with_logits(z, y))` | "
        f"| {ms(cinside)} ({cinside / base[1]:.2f}x) |"
    )
    lines.append("")
    per_call = max(counts["forward"], 1)
    lines.append(
        f"stable compiled against torch.compile of the baseline: forward "
        f"{cours[0] / cnative[0]:.2f}x, forward + backward {cours[1] / cnative[1]:.2f}x "
        f"(inside the user's torch.compile: {cinside / cnative[1]:.2f}x).  "
        f"First call (compilation): torch.compile(F...) {compile_native:.1f} s, "
        f"stable's kernels {compile_ours:.1f} s, the user's function around stable "
        f"{compile_inside:.1f} s.  Compiled fast path: {counts['forward']} forward calls "
        f"({counts['native']} passes of the C kernel), "
        f"gradients reused by {counts['reused']} backward calls; per call, "
        f"{(counts['extended_grads'] + counts['exact_grads']) / per_call:.1f} gradient "
        f"elements near a rounding boundary recomputed: "
        f"{counts['extended_grads'] / per_call:.1f} in x87 extended precision, "
        f"{counts['exact_grads'] / per_call:.1f} exactly (mpmath)."
    )
    return lines


def bench_bce_numpy(z: np.ndarray, y: np.ndarray, repeat: int) -> list[str]:
    ours_f = stable.binary_cross_entropy_with_logits
    ours_g = stable.binary_cross_entropy_with_logits_grad
    pf, pg, sf, sg = interleaved(
        repeat,
        lambda: numpy_plain_forward(z, y),
        lambda: numpy_plain_grad(z, y),
        lambda: ours_f(z, y),
        lambda: ours_g(z, y),
    )
    base, ours = (pf, pg), (sf, sg)
    return [
        f"| {z.size:.0e} float32, NumPy | loss (mean) | gradient |",
        "|---|---|---|",
        row("plain float32 NumPy (PyTorch's formula, `(sigmoid(z) - y) / n`)", base, base),
        row("`stable`", ours, base),
    ]


def numpy_plain_softmax_forward(z: np.ndarray, t: np.ndarray) -> np.floating[Any]:
    s = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=1))
    return np.mean(lse - s[np.arange(len(t)), t])


def numpy_plain_softmax_grad(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(t)), t] -= 1
    return p / len(t)


def bench_softmax(
    rows: int, classes: int, repeat: int, rng: np.random.Generator, compile_rows: bool
) -> list[str]:
    from logitlab.stable import _softmax_fast

    z_np = rng.normal(0.0, 4.0, (rows, classes)).astype(np.float32)
    t_np = rng.integers(0, classes, rows)
    z, t = torch.from_numpy(z_np), torch.from_numpy(t_np)
    native, ours = F.cross_entropy, stable.softmax_cross_entropy

    def mode(value: bool, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` with stable's compiled kernels asked for (the C passes) or not."""

        def run() -> Any:
            stable.set_torch_compile(value)
            return fn()

        return run

    runs = [
        lambda: native(z, t),
        lambda: forward_backward(native, z, t),
        mode(False, lambda: ours(z, t)),
        mode(False, lambda: forward_backward(ours, z, t)),
        mode(True, lambda: ours(z, t)),
        mode(True, lambda: forward_backward(ours, z, t)),
    ]
    tail = []
    if compile_rows:
        compiled = torch.compile(native)
        compile_time = first_call(lambda: forward_backward(compiled, z, t))
        runs += [lambda: compiled(z, t), lambda: forward_backward(compiled, z, t)]
        tail.append(
            f"First call (compilation) of torch.compile(F.cross_entropy): {compile_time:.1f} s."
        )
    for run in runs[2:6]:
        run()
    before = dict(_softmax_fast.STATS)
    times = interleaved(repeat, *runs)
    stable.set_torch_compile("auto")
    base, eager, cours = (times[0], times[1]), (times[2], times[3]), (times[4], times[5])
    lines = [
        f"| {rows} x {classes} float32, torch | forward | forward + backward |",
        "|---|---|---|",
        row("`F.cross_entropy` (eager)", base, base),
        row("`stable.softmax_cross_entropy` (eager, `set_torch_compile(False)`)", eager, base),
    ]
    if compile_rows:
        cnative = (times[6], times[7])
        lines.append(row("`torch.compile(F.cross_entropy)`", cnative, base))
        tail.append(
            f"stable compiled against torch.compile(F.cross_entropy): forward "
            f"{cours[0] / cnative[0]:.2f}x, forward + backward {cours[1] / cnative[1]:.2f}x."
        )
    lines.append(
        row(
            "`stable.softmax_cross_entropy` compiled kernels (`set_torch_compile(True)`)",
            cours,
            base,
        )
    )
    counts = {k: _softmax_fast.STATS[k] - before[k] for k in before}
    per_call = max(counts["fast_backward"], 1)
    tail.append(
        f"Fast path: {counts['fast_forward']} forward and {counts['fast_backward']} backward "
        f"calls ({counts['native_forward']} and {counts['native_backward']} of them in C); "
        f"elements recomputed exactly (near a rounding boundary): "
        f"{counts['exact_losses']} losses, {counts['exact_grads'] / per_call:.1f} gradient "
        f"elements per backward of {rows * classes:.0e} "
        f"({counts['exact_mpmath'] / per_call:.1f} of them in mpmath)."
    )
    return [*lines, "", "  ".join(tail)]


def bench_softmax_numpy(
    rows: int, classes: int, repeat: int, rng: np.random.Generator
) -> list[str]:
    z = rng.normal(0.0, 4.0, (rows, classes)).astype(np.float32)
    t = rng.integers(0, classes, rows)
    ours_f, ours_g = stable.softmax_cross_entropy, stable.softmax_cross_entropy_grad
    pf, pg, sf, sg = interleaved(
        repeat,
        lambda: numpy_plain_softmax_forward(z, t),
        lambda: numpy_plain_softmax_grad(z, t),
        lambda: ours_f(z, t),
        lambda: ours_g(z, t),
    )
    base, ours = (pf, pg), (sf, sg)
    return [
        f"| {rows} x {classes} float32, NumPy | loss (mean) | gradient |",
        "|---|---|---|",
        row("plain float32 NumPy log-softmax cross-entropy", base, base),
        row("`stable.softmax_cross_entropy` (NumPy)", ours, base),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10**7, help="BCE elements (default 10**7)")
    parser.add_argument("--rows", type=int, default=10**5, help="softmax rows, torch (10**5)")
    parser.add_argument(
        "--numpy-rows", type=int, default=10**4, help="softmax rows, NumPy (default 10**4)"
    )
    parser.add_argument("--classes", type=int, default=1000, help="softmax classes (1000)")
    parser.add_argument(
        "--vocab", type=int, default=50257, help="classes of the wide softmax case (50257)"
    )
    parser.add_argument("--vocab-rows", type=int, default=64, help="its rows (default 64)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-compile", action="store_true", help="no torch.compile rows")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    z_np = rng.normal(0.0, 4.0, args.n).astype(np.float32)
    y_np = rng.random(args.n, dtype=np.float32)
    z, y = torch.from_numpy(z_np), torch.from_numpy(y_np)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"medians of {args.repeat}, interleaved with the baseline\n"
    )
    lines = bench_bce_torch(z, y, args.repeat, not args.skip_compile)
    print("\n".join(lines), end="\n\n")
    print("\n".join(bench_bce_numpy(z_np, y_np, args.repeat)), end="\n\n")
    softmax = bench_softmax(args.rows, args.classes, args.repeat, rng, not args.skip_compile)
    print("\n".join(softmax), end="\n\n")
    wide = bench_softmax(args.vocab_rows, args.vocab, args.repeat, rng, False)
    print("\n".join(wide), end="\n\n")
    print("\n".join(bench_softmax_numpy(args.numpy_rows, args.classes, args.repeat, rng)))


if __name__ == "__main__":
    main()
