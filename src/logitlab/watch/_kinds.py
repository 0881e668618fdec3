"""What ``logitlab watch`` can find, and the lint code each finding shares with ``lint``.

Findings that ``logitlab lint`` also finds statically carry its code (``LGL001`` ...), so
a runtime report and a lint run name the same problem the same way.  Two things are only
visible at run time, the loss's own resolution and autocast's decisions; they get codes
in a separate ``LGW`` range, kept here and not in the lint registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from logitlab.lint._codes import CODES_BY_ID, expand_selection

__all__ = ["KINDS", "WATCH_CODES", "Kind", "expand_codes"]


@dataclass(frozen=True)
class Kind:
    """One kind of runtime finding."""

    name: str
    code: str
    summary: str
    fix: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "bce-on-probabilities",
            "LGL001",
            "binary cross-entropy on probabilities saturated",
            "drop the sigmoid: F.binary_cross_entropy_with_logits(z, y) / nn.BCEWithLogitsLoss",
        ),
        Kind(
            "log-of-sigmoid",
            "LGL011",
            "log of a sigmoid gave -inf or lost all digits",
            "F.logsigmoid(z) (and F.logsigmoid(-z) for log(1 - sigmoid(z)))",
        ),
        Kind(
            "log-of-softmax",
            "LGL010",
            "log of a softmax gave -inf or lost all digits",
            "F.log_softmax(x, dim)",
        ),
        Kind(
            "nll-on-probabilities",
            "LGL020",
            "nll_loss given probabilities, not log-probabilities",
            "F.cross_entropy(logits, target), or nll_loss(F.log_softmax(logits, dim), target)",
        ),
        Kind(
            "cross-entropy-on-softmax",
            "LGL021",
            "cross_entropy given softmax outputs: softmax applied twice",
            "pass the logits: F.cross_entropy(logits, target)",
        ),
        Kind(
            "hand-written-sigmoid-overflow",
            "LGL030",
            "exp overflowed to inf inside a hand-written sigmoid",
            "torch.sigmoid(x)",
        ),
        Kind(
            "hand-written-softplus-overflow",
            "LGL031",
            "exp overflowed to inf inside a hand-written softplus",
            "F.softplus(x)",
        ),
        Kind(
            "hand-written-logsumexp-overflow",
            "LGL032",
            "exp overflowed to inf inside a hand-written logsumexp",
            "torch.logsumexp(x, dim)",
        ),
        Kind(
            "loss-resolution",
            "LGW100",
            "the loss's dtype resolves it coarsely: one ULP is a visible part of the loss",
            "compute the loss in float32 (loss.float(), or leave it to autocast)",
        ),
        Kind(
            "autocast-upcast",
            "LGW110",
            "autocast up-cast the probabilities after they were rounded in low precision",
            "give the loss the logits (BCEWithLogitsLoss), which autocast keeps accurate",
        ),
        Kind(
            "autocast-refused",
            "LGL001",
            "autocast refused binary_cross_entropy on probabilities",
            "remove the sigmoid before the loss: F.binary_cross_entropy_with_logits(z, y)",
        ),
    )
}

#: Codes only watch reports (run-time facts with no static counterpart).
WATCH_CODES: dict[str, str] = {
    "LGW100": "loss-resolution",
    "LGW110": "autocast-upcast",
}


def expand_codes(patterns: list[str]) -> set[str]:
    """Expand codes or prefixes (``LGL001``, ``LGL0``, ``LGW``, ``ALL``) for ``--fail-on``,
    among lint's codes and watch's own.

    Raises ``ValueError`` naming the first pattern that matches no code.
    """
    return expand_selection(patterns, [*CODES_BY_ID, *WATCH_CODES], what="code")
