"""Overhead of ``logitlab.watch`` on realistic CPU training loops (batch 256).

An MLP (784-512-256-10) and a small CNN (two 3x3 conv layers on 1x28x28) train with Adam
and cross-entropy; a third loop, the MLP's binary head with nn.Sigmoid + nn.BCELoss,
gives the watcher findings to count. Each loop runs unwatched, sampled and full in the
same process, interleaved in rounds.  Two clocks: wall time, and this thread's CPU time
(``time.thread_time``, with torch on one thread by default), which other processes on a
busy machine do not inflate.  Per mode: the median step of each round, the best round.

    python benchmarks/bench_watch.py [--steps N] [--rounds R] [--threads T]

Targets: sampled < 5% and full < 30% over the unwatched step time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from logitlab.watch import watch

TARGET_SAMPLED = 0.05
TARGET_FULL = 0.30


def mlp_loop(binary: bool = False) -> Callable[[], None]:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU()]
    layers += [nn.Linear(256, 1), nn.Sigmoid()] if binary else [nn.Linear(256, 10)]
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2 if binary else 1e-3)
    x = torch.randn(256, 784) * (5 if binary else 1)
    if binary:
        y = (torch.rand(256, 1) > 0.5).float()
        criterion: Callable[..., torch.Tensor] = nn.BCELoss()
    else:
        y = torch.randint(0, 10, (256,))
        criterion = F.cross_entropy

    def step() -> None:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()

    return step


def cnn_loop() -> Callable[[], None]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(256, 1, 28, 28)
    y = torch.randint(0, 10, (256,))

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def timed(step: Callable[[], None], steps: int, mode: str) -> tuple[float, float]:
    """Median (wall, thread CPU) seconds per step over ``steps`` steps, under ``mode``."""
    times = []
    cpu = []
    w = None if mode == "off" else watch(full=mode == "full", warn=False)
    if w is not None:
        w.__enter__()
    try:
        for _ in range(steps):
            t, c = time.perf_counter(), time.thread_time()
            step()
            times.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            if w is not None:
                w.on_step()
    finally:
        if w is not None:
            w.__exit__(None, None, None)
    return statistics.median(times), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description="logitlab.watch overhead")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loops = {
        "mlp": mlp_loop(),
        "cnn": cnn_loop(),
        "mlp-bce-on-probabilities": mlp_loop(binary=True),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch 256")
    ok = True
    for name, step in loops.items():
        for _ in range(3):
            step()  # warm up
        results: dict[str, list[tuple[float, float]]] = {"off": [], "sampled": [], "full": []}
        for _ in range(args.rounds):
            for mode in results:  # interleaved, so drift hits every mode alike
                results[mode].append(timed(step, args.steps, mode))
        best = {m: (min(r[0] for r in v), min(r[1] for r in v)) for m, v in results.items()}
        line = f"{name:26s}"
        for clock, i in (("wall", 0), ("cpu", 1)):
            off = best["off"][i]
            sampled = best["sampled"][i] / off - 1
            full = best["full"][i] / off - 1
            if clock == "cpu":
                ok &= sampled < TARGET_SAMPLED and full < TARGET_FULL
            line += f"  {clock} {off * 1e3:7.2f} ms: sampled {sampled:+6.1%} full {full:+6.1%}"
        print(line)
    print(
        f"targets (cpu clock): sampled < {TARGET_SAMPLED:.0%}, full < {TARGET_FULL:.0%}: "
        + ("met" if ok else "NOT MET")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
