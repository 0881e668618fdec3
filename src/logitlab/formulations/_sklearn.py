"""scikit-learn's ``log_loss`` on ``expit(z)``.

``log_loss`` takes class labels (hard 0/1 targets; soft targets are not applicable) and
returns one mean per call; it clips probabilities to ``[eps, 1 - eps]`` with ``eps`` of
their dtype.  To get per-element losses the only way is one call per element, so the
audit runs it on a sample of the points.  No autograd.
"""

from __future__ import annotations

import numpy as np

from logitlab.formulations._base import BCEInputs, Formulation, NotApplicable, Outcome
from logitlab.formulations._numpy import as_dtype

__all__ = ["FORMULATIONS", "PER_CALL"]

#: Formulations whose API returns one reduced number per call.
PER_CALL = frozenset({"sklearn.log_loss"})


def _log_loss(case: BCEInputs) -> Outcome:
    from scipy.special import expit
    from sklearn.metrics import log_loss

    y = np.asarray(case.targets, dtype=np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise NotApplicable("sklearn's log_loss takes class labels, not soft targets")
    if case.pos_weight is not None:
        raise NotApplicable("log_loss has no pos_weight; use sample_weight")
    z = as_dtype(case.logits, case)
    with np.errstate(all="ignore"):
        p = expit(z)
    if case.weight is not None and case.reduction == "mean":
        raise NotApplicable(
            "log_loss with sample_weight divides by the sum of the weights, not the count"
        )
    labels = y.astype(np.int64)
    w = None if case.weight is None else np.broadcast_to(case.weight, y.shape)
    if case.reduction == "none":
        flat_p, flat_y = p.ravel(), labels.ravel()
        values = np.array(
            [
                log_loss(
                    flat_y[i : i + 1],
                    flat_p[i : i + 1],
                    labels=[0, 1],
                    normalize=False,
                    sample_weight=None if w is None else w.ravel()[i : i + 1],
                )
                for i in range(flat_p.size)
            ]
        ).reshape(y.shape)
    else:
        values = np.asarray(
            log_loss(
                labels.ravel(),
                p.ravel(),
                labels=[0, 1],
                normalize=case.reduction == "mean",
                sample_weight=None if w is None else w.ravel(),
            )
        )
    # log_loss clips to [eps, 1 - eps] with eps of the probabilities' dtype (check_array
    # turns a dtype it does not accept, bfloat16, into float64)
    native = p.dtype in (np.float16, np.float32, np.float64)
    eps = np.finfo(p.dtype if native else np.float64).eps
    clipped = (p < eps) | (p > 1 - eps)
    return Outcome(
        value=np.asarray(values, dtype=np.float64),
        probabilities=np.asarray(p, dtype=np.float64),
        clipped=clipped,
    )


FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="sklearn.log_loss",
        framework="sklearn",
        quantity="bce",
        via_probabilities=True,
        code="sklearn.metrics.log_loss(y, scipy.special.expit(z))",
        summary="scikit-learn's log_loss on the probabilities (clips to [eps, 1-eps]; labels only)",
        compute=_log_loss,
        requires=("sklearn", "scipy"),
        extra="sklearn",
    ),
)
