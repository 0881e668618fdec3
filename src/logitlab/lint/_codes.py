"""The one registry of lint codes: code, name, severity, summary and fix applicability.

Messages of individual findings are built by the rules (they name the framework's
replacement); the summaries here are what ``--help``, SARIF and the docs show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
FixKind = Literal["safe", "unsafe", "safe/unsafe", "none"]


@dataclass(frozen=True)
class Code:
    """One lint code: what it finds, how bad it is, and what kind of fix it offers."""

    code: str
    name: str
    severity: Severity
    summary: str
    fix: FixKind
    default_on: bool = True


CODES: tuple[Code, ...] = (
    Code(
        "LGL001",
        "sigmoid-then-bce",
        "warning",
        "binary cross-entropy applied to the output of an explicit sigmoid",
        "safe/unsafe",
    ),
    Code(
        "LGL002",
        "sigmoid-model-with-bce",
        "warning",
        "nn.BCELoss / binary_cross_entropy on a model whose last layer is a sigmoid",
        "unsafe",
    ),
    Code(
        "LGL003",
        "keras-sigmoid-bce",
        "warning",
        "Keras binary cross-entropy on the output of a sigmoid activation",
        "none",
    ),
    Code(
        "LGL004",
        "tensorflow-probabilities-into-cross-entropy",
        "error",
        "TensorFlow cross-entropy given the output of a softmax/sigmoid (a layer's activation"
        " or an explicit call) where it expects logits",
        "safe",
    ),
    Code(
        "LGL010",
        "log-of-softmax",
        "warning",
        "log of a softmax: use log_softmax",
        "safe",
    ),
    Code(
        "LGL011",
        "log-of-sigmoid",
        "warning",
        "log of a sigmoid (or of 1 - sigmoid): use logsigmoid / log_expit",
        "safe",
    ),
    Code(
        "LGL020",
        "softmax-into-nll",
        "error",
        "softmax probabilities passed to NLLLoss / nll_loss, which expects log-probabilities",
        "unsafe",
    ),
    Code(
        "LGL021",
        "softmax-into-cross-entropy",
        "error",
        "softmax probabilities passed to CrossEntropyLoss / cross_entropy, which expects logits",
        "unsafe",
    ),
    Code(
        "LGL030",
        "hand-written-sigmoid",
        "warning",
        "hand-written sigmoid 1 / (1 + exp(-x))",
        "safe",
    ),
    Code(
        "LGL031",
        "hand-written-softplus",
        "warning",
        "hand-written softplus log(1 + exp(x))",
        "safe",
    ),
    Code(
        "LGL032",
        "hand-written-logsumexp",
        "warning",
        "hand-written logsumexp log(sum(exp(x)))",
        "safe",
    ),
    Code(
        "LGL040",
        "hand-written-bce",
        "warning",
        "hand-written binary cross-entropy on probabilities",
        "none",
    ),
    Code(
        "LGL041",
        "hand-written-cross-entropy",
        "warning",
        "hand-written categorical cross-entropy on probabilities",
        "none",
    ),
    Code(
        "LGL042",
        "logit-from-probability",
        "warning",
        "a logit recomputed from a probability, log(p) - log(1 - p) or log(p / (1 - p))",
        "none",
    ),
    Code(
        "LGL900",
        "syntax-error",
        "error",
        "the file could not be parsed as Python",
        "none",
    ),
    Code(
        "LGL901",
        "unreadable-file",
        "error",
        "the file could not be read or decoded",
        "none",
    ),
    Code(
        "LGL902",
        "skipped-file",
        "warning",
        "the file was skipped (too large, a symlink loop, or not a regular file)",
        "none",
    ),
)

CODES_BY_ID: dict[str, Code] = {c.code: c for c in CODES}

#: Codes that are about the file, not its contents; they cannot be fixed or selected away
#: by rule prefix accidentally (they can be ignored explicitly).
FILE_CODES = frozenset({"LGL900", "LGL901", "LGL902"})


def expand_selection(
    patterns: list[str], codes: Iterable[str] | None = None, what: str = "rule code"
) -> set[str]:
    """Expand code prefixes (``LGL0``, ``LGL01``, ``ALL``) to the codes they name, among
    ``codes`` (lint's own by default; ``watch`` adds its run-time codes).

    Raises ``ValueError`` naming the first pattern that matches no code.
    """
    universe = list(CODES_BY_ID if codes is None else codes)
    selected: set[str] = set()
    for raw in patterns:
        pattern = raw.strip().upper()
        if not pattern:
            continue
        if pattern == "ALL":
            selected.update(universe)
            continue
        matched = {c for c in universe if c.startswith(pattern)}
        if not matched:
            raise ValueError(f"unknown {what} {raw!r}")
        selected.update(matched)
    return selected


def default_selection() -> set[str]:
    """Codes that are on when neither ``--select`` nor config says otherwise."""
    return {c.code for c in CODES if c.default_on}
