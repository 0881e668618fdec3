"""Binary focal loss code paths (quantity ``"focal"``), each the line a user writes.

The case is a :class:`~logitlab.core.inputs.FocalCase`; the exact reference is
:func:`logitlab.exact.binary_focal_loss` (torchvision's ``sigmoid_focal_loss``
semantics: ``alpha_t (1 - p_t)**gamma BCE``, ``alpha=None`` for no weighting).  What
each library does, as installed here:

* kornia ``binary_focal_loss_with_logits`` works in log space:
  ``-exp(gamma logsigmoid(-z)) y logsigmoid(z) - exp(gamma logsigmoid(z)) (1 - y)
  logsigmoid(-z)``, times ``alpha`` / ``1 - alpha`` (torchvision's convention).  For soft
  targets that is a different loss (``y (1 - p)**gamma`` and ``(1 - y) p**gamma`` weight
  the two terms, not ``(1 - p_t)**gamma`` both), so soft targets are not applicable;
* the hand-written probability-space formula has kornia's form (so soft targets are not
  applicable either) and takes ``log`` of a saturated sigmoid;
* torchvision's formula goes through ``p = sigmoid(z)`` and forms ``1 - p_t`` as a
  difference (0 once ``p`` rounds to 1), with the BCE from logits;
* optax ``sigmoid_focal_loss`` forms ``log(1 - p_t)`` by a weighted ``logsumexp`` of
  log-sigmoids;
* Keras ``BinaryFocalCrossentropy`` applies a sigmoid even with ``from_logits=True`` and
  computes the BCE on the probability, clipped to ``[1e-7, 1 - 1e-7]``, in floatx;
  ``alpha`` weights only with ``apply_class_balancing=True`` (so ``alpha=None`` maps to
  ``apply_class_balancing=False``).

Frameworks are imported inside ``compute``; gradients come from each framework's
autograd (``backward`` of ones on an unreduced loss: the elementwise derivative).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.formulations._base import Formulation, NotApplicable, Outcome
from logitlab.formulations._torch import _outcome, _reduce, _tensor

__all__ = ["FORMULATIONS"]


def _hard(case: Any) -> bool:
    return bool(np.isin(case.targets, (0.0, 1.0)).all())


def _suffix(case: Any) -> str:
    return {"mean": ".mean()", "sum": ".sum()", "none": ""}[case.reduction]


def _alpha_code(case: Any) -> str:
    return "None" if case.alpha is None else repr(float(case.alpha))


def _kw(case: Any, alpha_none: str = "None", reduction: bool = True) -> str:
    alpha = alpha_none if case.alpha is None else repr(float(case.alpha))
    out = f"alpha={alpha}, gamma={float(case.gamma)!r}"
    if reduction and case.reduction != "none":
        out += f", reduction={case.reduction!r}"
    return out


# --- kornia -----------------------------------------------------------------------------


_SOFT = (
    "weights the two terms by y (1 - p)**gamma and (1 - y) p**gamma: for soft targets a "
    "different loss from torchvision's (1 - p_t)**gamma"
)


def _kornia(case: Any) -> Outcome:
    import kornia

    if not _hard(case):
        raise NotApplicable(f"kornia {_SOFT}")
    z = _tensor(case.logits, case, requires_grad=True)
    y = _tensor(case.targets, case)
    shape = z.shape
    loss = kornia.losses.binary_focal_loss_with_logits(
        z.reshape(1, -1),
        y.reshape(1, -1),
        alpha=case.alpha,
        gamma=case.gamma,
        reduction=case.reduction,
    )
    if case.reduction == "none":
        loss = loss.reshape(shape)
    return _outcome(loss, z)


def _kornia_code(case: Any) -> str:
    return f"kornia.losses.binary_focal_loss_with_logits(z, y, {_kw(case)})"


# --- torchvision ------------------------------------------------------------------------


def _torchvision_formula(case: Any) -> Outcome:
    import torch
    import torch.nn.functional as F

    z = _tensor(case.logits, case, requires_grad=True)
    y = _tensor(case.targets, case)
    # torchvision.ops.sigmoid_focal_loss, line by line
    p = torch.sigmoid(z)
    ce_loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce_loss * ((1 - p_t) ** case.gamma)
    if case.alpha is not None:
        alpha_t = case.alpha * y + (1 - case.alpha) * (1 - y)
        loss = alpha_t * loss
    return _outcome(_reduce(loss, case.reduction), z, p)


def _torchvision_formula_code(case: Any) -> str:
    body = "F.binary_cross_entropy_with_logits(z, y, reduction='none') * (1 - p_t)**g"
    if case.alpha is not None:
        body = f"alpha_t * {body}"
    return f"p_t = p*y + (1-p)*(1-y); ({body}){_suffix(case)}"


def _torchvision(case: Any) -> Outcome:
    import torch
    from torchvision.ops import sigmoid_focal_loss

    z = _tensor(case.logits, case, requires_grad=True)
    y = _tensor(case.targets, case)
    alpha = -1.0 if case.alpha is None else case.alpha
    loss = sigmoid_focal_loss(z, y, alpha=alpha, gamma=case.gamma, reduction=case.reduction)
    with torch.no_grad():
        p = torch.sigmoid(z)  # the probabilities it goes through (the same op)
    return _outcome(loss, z, p)


def _torchvision_code(case: Any) -> str:
    return f"torchvision.ops.sigmoid_focal_loss(z, y, {_kw(case, alpha_none='-1')})"


# --- hand-written on probabilities ------------------------------------------------------


def _naive(case: Any) -> Outcome:
    import torch

    if not _hard(case):
        raise NotApplicable(f"this formula {_SOFT}")
    z = _tensor(case.logits, case, requires_grad=True)
    y = _tensor(case.targets, case)
    g = case.gamma
    p = torch.sigmoid(z)
    a = 1.0 if case.alpha is None else case.alpha
    b = 1.0 if case.alpha is None else 1 - case.alpha
    loss = -a * (1 - p) ** g * y * torch.log(p) - b * p**g * (1 - y) * torch.log(1 - p)
    return _outcome(_reduce(loss, case.reduction), z, p)


def _naive_code(case: Any) -> str:
    if case.alpha is None:
        body = "-(1-p)**g*y*torch.log(p) - p**g*(1-y)*torch.log(1-p)"
    else:
        body = "-a*(1-p)**g*y*torch.log(p) - (1-a)*p**g*(1-y)*torch.log(1-p)"
    suffix = _suffix(case)
    return f"p = torch.sigmoid(z); ({body}){suffix}" if suffix else f"p = torch.sigmoid(z); {body}"


# --- optax ------------------------------------------------------------------------------


def _optax(case: Any) -> Outcome:
    from logitlab.formulations._jax import _jax, _run
    from logitlab.formulations._jax import _reduce as _jax_reduce
    from logitlab.formulations._numpy import as_dtype

    _jax()
    import jax.numpy as jnp
    import optax

    y = jnp.asarray(as_dtype(case.targets, case))

    def loss(z: Any, y: Any) -> Any:
        out = optax.losses.sigmoid_focal_loss(z, y, alpha=case.alpha, gamma=case.gamma)
        return _jax_reduce(jnp, out, case.reduction)

    key = ("optax.focal", case.alpha, case.gamma, case.reduction)
    return _run(case, loss, y, key=key)


def _optax_code(case: Any) -> str:
    call = f"optax.losses.sigmoid_focal_loss(z, y, {_kw(case, reduction=False)})"
    return {"mean": f"{call}.mean()", "sum": f"{call}.sum()", "none": call}[case.reduction]


# --- Keras ------------------------------------------------------------------------------


def _keras_focal(from_logits: bool) -> Any:
    def compute(case: Any) -> Outcome:
        from logitlab.formulations._keras import _clipped, _keras

        keras = _keras()
        z = _tensor(case.logits, case, requires_grad=True)
        z2 = z.reshape(-1, 1)  # Keras averages over the last axis: one element per row
        y2 = _tensor(case.targets, case).reshape(-1, 1)
        reduction = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}[case.reduction]
        balancing = case.alpha is not None
        loss_fn = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=balancing,
            alpha=0.25 if case.alpha is None else case.alpha,
            gamma=case.gamma,
            from_logits=from_logits,
            reduction=reduction,
        )
        p = keras.ops.sigmoid(z2)
        out = loss_fn(y2, z2 if from_logits else p)
        if case.reduction == "none":
            out = out.reshape(z.shape)
        p = p.reshape(z.shape)
        return _outcome(out, z, p, clipped=_clipped(keras, p))

    return compute


def _keras_code(from_logits: bool) -> Any:
    def code(case: Any) -> str:
        args = []
        if case.alpha is not None:
            args.append(f"apply_class_balancing=True, alpha={float(case.alpha)!r}")
        args.append(f"gamma={float(case.gamma)!r}")
        if from_logits:
            args.append("from_logits=True")
        if case.reduction == "sum":
            args.append("reduction='sum'")
        elif case.reduction == "none":
            args.append("reduction=None")
        x = "z" if from_logits else "keras.ops.sigmoid(z)"
        return f"keras.losses.BinaryFocalCrossentropy({', '.join(args)})(y, {x})"

    return code


FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="kornia.binary_focal",
        framework="kornia",
        quantity="focal",
        via_probabilities=False,
        code="kornia.losses.binary_focal_loss_with_logits(z, y, alpha=0.25, gamma=2.0)",
        summary="kornia's binary focal loss, in log space (logsigmoid); hard targets only",
        compute=_kornia,
        requires=("kornia", "torch"),
        extra="kornia",
        code_for=_kornia_code,
    ),
    Formulation(
        name="torch.torchvision_formula",
        framework="torch",
        quantity="focal",
        via_probabilities=True,
        code="p_t = p*y + (1-p)*(1-y); (alpha_t * F.binary_cross_entropy_with_logits(z, y, "
        "reduction='none') * (1 - p_t)**g).mean()",
        summary=(
            "torchvision's sigmoid_focal_loss formula written with torch ops: BCE from "
            "logits, 1 - p_t from p = torch.sigmoid(z)"
        ),
        compute=_torchvision_formula,
        requires=("torch",),
        code_for=_torchvision_formula_code,
    ),
    Formulation(
        name="torchvision.sigmoid_focal_loss",
        framework="torchvision",
        quantity="focal",
        via_probabilities=True,
        code="torchvision.ops.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0)",
        summary="torchvision's own sigmoid_focal_loss",
        compute=_torchvision,
        requires=("torchvision", "torch"),
        extra="torchvision",
        code_for=_torchvision_code,
    ),
    Formulation(
        name="torch.naive_focal",
        framework="torch",
        quantity="focal",
        via_probabilities=True,
        code="p = torch.sigmoid(z); (-a*(1-p)**g*y*torch.log(p) - (1-a)*p**g*(1-y)"
        "*torch.log(1-p)).mean()",
        summary=(
            "focal loss written out on the probabilities: log(0) once sigmoid saturates; "
            "hard targets only"
        ),
        compute=_naive,
        requires=("torch",),
        code_for=_naive_code,
    ),
    Formulation(
        name="optax.sigmoid_focal",
        framework="jax",
        flushes_subnormals=True,
        quantity="focal",
        via_probabilities=False,
        code="optax.losses.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0).mean()",
        summary="optax's sigmoid focal loss: log(1 - p_t) by a weighted logsumexp",
        compute=lambda case: _scoped_optax(case),
        requires=("jax", "optax"),
        extra="jax",
        code_for=_optax_code,
    ),
    Formulation(
        name="keras.focal_logits",
        framework="keras",
        quantity="focal",
        via_probabilities=True,
        code="keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25, "
        "gamma=2.0, from_logits=True)(y, z)",
        summary=(
            "Keras 3 (torch backend) with from_logits=True: still a sigmoid, then BCE on "
            "the probability clipped to [1e-7, 1-1e-7], in floatx"
        ),
        compute=_keras_focal(from_logits=True),
        requires=("keras",),
        extra="keras",
        code_for=_keras_code(from_logits=True),
    ),
    Formulation(
        name="keras.focal_probabilities",
        framework="keras",
        quantity="focal",
        via_probabilities=True,
        code="keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25, "
        "gamma=2.0)(y, keras.ops.sigmoid(z))",
        summary="Keras 3 (torch backend) on probabilities: clips to [1e-7, 1-1e-7], in floatx",
        compute=_keras_focal(from_logits=False),
        requires=("keras",),
        extra="keras",
        code_for=_keras_code(from_logits=False),
    ),
)


def _scoped_optax(case: Any) -> Outcome:
    from logitlab.formulations._jax import x64

    with x64():
        return _optax(case)
