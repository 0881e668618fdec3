"""Watch a real training run: the same classifier with nn.Sigmoid + nn.BCELoss, then
with nn.BCEWithLogitsLoss, on scikit-learn's bundled breast-cancer data (no download).

At this learning rate the logits grow past |z| ~ 17, where float32 sigmoid is exactly 0 or
1: the probabilities version then clamps its loss and loses the gradient of every
confident mistake, which ``logitlab.watch`` reports by source line; the logits version
has nothing to report.

    python examples/breast_cancer_watch.py [--steps N] [--lr LR] [--plot PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

import logitlab.watch


def data() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_breast_cancer(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x, torch.tensor(y, dtype=torch.float32).unsqueeze(1)


def model(probabilities: bool) -> nn.Module:
    torch.manual_seed(0)  # the same initial weights for both runs
    layers: list[nn.Module] = [nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 1)]
    if probabilities:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def train(
    probabilities: bool, steps: int, lr: float, full: bool = False
) -> tuple[list[float], logitlab.watch.Report]:
    x, y = data()
    net = model(probabilities)
    criterion = nn.BCELoss() if probabilities else nn.BCEWithLogitsLoss()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    losses = []
    with logitlab.watch(warn=False, full=full) as w:
        for step in range(steps):
            idx = torch.randperm(len(x), generator=g)[:256]
            opt.zero_grad()
            loss = criterion(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
            w.on_step(step + 1)
    return losses, w.report()


def plot(curves: dict[str, list[float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    for label, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=label, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (batch of 256)")
    ax.set_title("breast-cancer classifier, Adam: BCELoss on probabilities vs logits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--plot", default=None, help="save the training curves here (PNG)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--full", action="store_true", help="check every call (not sampled)")
    args = parser.parse_args(argv)
    curves = {}
    reports = {}
    for name, probabilities in (("nn.Sigmoid + nn.BCELoss", True), ("nn.BCEWithLogitsLoss", False)):
        curves[name], reports[name] = train(probabilities, args.steps, args.lr, args.full)
    if args.json:
        json.dump({k: r.to_dict() for k, r in reports.items()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for name, report in reports.items():
            print(f"== {name}: final loss {curves[name][-1]:.6g}")
            print(report)
    if args.plot:
        plot(curves, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
