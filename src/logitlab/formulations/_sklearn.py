"""scikit-learn's ``log_loss`` on ``expit(z)``.

``log_loss`` takes class labels (hard 0/1 targets; soft targets are not applicable) and
returns one mean per call; it clips probabilities to ``[eps, 1 - eps]`` with ``eps`` of
their dtype.  No autograd.

**Per element, vectorised** (``reduction="none"``): ``log_loss`` computes every sample's
loss, ``-sum(xlogy(onehot(y), clip(p)), axis=1)``, and hands that array to
``sklearn.metrics._classification._average`` for the mean.  :func:`_per_sample` makes one
real ``log_loss`` call on all elements with that module global wrapped for the duration of
the call, keeping the array it receives (scikit-learn's own per-sample values, in its
own dtype, after its own validation, clipping and label binarisation) and returning what
the real ``_average`` returns.  The tests check that it equals one ``log_loss`` call per
element on samples.  Where scikit-learn's internals differ (no ``_average``, or it was not
called with one value per sample) it falls back to one call per element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.formulations._base import BCEInputs, Formulation, NotApplicable, Outcome
from logitlab.formulations._numpy import as_dtype

__all__ = ["FORMULATIONS"]


def _per_sample(labels: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """scikit-learn's per-sample log losses of one ``log_loss`` call (see the module)."""
    import sklearn.metrics._classification as cls
    from sklearn.metrics import log_loss

    real = getattr(cls, "_average", None)
    seen: list[np.ndarray] = []
    if real is not None:

        def spy(a: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(np.array(a, copy=True))
            return real(a, *args, **kwargs)

        cls._average = spy
        try:
            log_loss(labels, p, labels=[0, 1], normalize=False, sample_weight=w)
        finally:
            cls._average = real
    if len(seen) == 1 and seen[0].shape == labels.shape:
        loss = seen[0].astype(np.float64)
        return loss if w is None else loss * np.asarray(w, dtype=np.float64)
    return np.array(  # scikit-learn changed: one call per element
        [
            log_loss(
                labels[i : i + 1],
                p[i : i + 1],
                labels=[0, 1],
                normalize=False,
                sample_weight=None if w is None else w[i : i + 1],
            )
            for i in range(labels.size)
        ]
    )


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
        flat_w = None if w is None else np.ascontiguousarray(w).ravel()
        values = _per_sample(labels.ravel(), p.ravel(), flat_w).reshape(y.shape)
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
