"""Keras 3 on the PyTorch backend: ``BinaryCrossentropy`` after a sigmoid, and from logits.

Keras is imported inside ``compute`` (it takes seconds) with ``KERAS_BACKEND=torch`` set if
the user has not chosen a backend, so gradients come from torch autograd.  A Keras loss
object casts its inputs to its ``dtype``, which defaults to ``keras.config.floatx()``
(float32): float16 and bfloat16 are computed in float32 and float64 is rounded to float32.
The audit reports what it returns.  (The softmax cross-entropy rows are in
:mod:`logitlab.formulations._softmax_frameworks`.)  Keras' probabilities path clips to
``[epsilon, 1 - epsilon]`` with ``epsilon = 1e-7``.
"""

from __future__ import annotations

import os
from typing import Any

from logitlab.formulations._base import (
    BCEInputs,
    ElementwiseInputs,
    Formulation,
    NotApplicable,
    Outcome,
)
from logitlab.formulations._torch import _outcome, _tensor

__all__ = ["FORMULATIONS"]


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(
            f"Keras runs on the {keras.backend.backend()!r} backend; logitlab audits it on torch "
            "(set KERAS_BACKEND=torch)"
        )
    return keras


def _clipped(keras: Any, p: Any) -> Any:
    # Keras clips the probabilities to [epsilon, 1 - epsilon] in their dtype; a clipped p
    # changes both log(p) and log(1 - p), so every clip counts.
    import torch

    with torch.no_grad():
        eps = keras.config.epsilon()
        pd = p.detach()
        return (torch.clamp(pd, eps, 1 - eps) != pd).numpy()


def _bce(from_logits: bool) -> Any:
    def compute(case: BCEInputs) -> Outcome:
        keras = _keras()
        if case.pos_weight is not None:
            raise NotApplicable("keras.losses.BinaryCrossentropy takes no pos_weight")
        z = _tensor(case.logits, case, requires_grad=True)
        # Keras averages over the last axis: give each element its own row.
        z2 = z.reshape(-1, 1)
        y2 = _tensor(case.targets, case).reshape(-1, 1)
        reduction = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}[case.reduction]
        loss_fn = keras.losses.BinaryCrossentropy(from_logits=from_logits, reduction=reduction)
        p = None if from_logits else keras.ops.sigmoid(z2)
        w = None if case.weight is None else _tensor(case.weight, case).reshape(-1)
        out = loss_fn(y2, z2 if from_logits else p, sample_weight=w)
        if case.reduction == "none":
            out = out.reshape(z.shape)
        if p is None:
            return _outcome(out, z)
        clipped = _clipped(keras, p.reshape(z.shape))
        return _outcome(out, z, p.reshape(z.shape), clipped=clipped)

    return compute


def _elementwise(name: str) -> Any:
    def compute(case: ElementwiseInputs) -> Outcome:
        keras = _keras()
        z = _tensor(case.logits, case, requires_grad=True)
        out = getattr(keras.ops, name)(z)
        return _outcome(out, z, out if name == "sigmoid" else None)

    return compute


_REQ = ("keras",)

FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="keras.probabilities",
        framework="keras",
        quantity="bce",
        via_probabilities=True,
        code="keras.losses.BinaryCrossentropy()(y, keras.ops.sigmoid(z))",
        summary="Keras 3 (torch backend) on probabilities: clips to [1e-7, 1-1e-7], loss in floatx",
        compute=_bce(from_logits=False),
        requires=_REQ,
        extra="keras",
    ),
    Formulation(
        name="keras.logits",
        framework="keras",
        quantity="bce",
        via_probabilities=False,
        code="keras.losses.BinaryCrossentropy(from_logits=True)(y, z)",
        summary="Keras 3 (torch backend) from logits; the loss object computes in floatx",
        compute=_bce(from_logits=True),
        requires=_REQ,
        extra="keras",
    ),
    Formulation(
        name="keras.sigmoid",
        framework="keras",
        quantity="sigmoid",
        via_probabilities=True,
        code="keras.ops.sigmoid(z)",
        summary="Keras 3's sigmoid (torch backend)",
        compute=_elementwise("sigmoid"),
        requires=_REQ,
        extra="keras",
    ),
    Formulation(
        name="keras.log_sigmoid",
        framework="keras",
        quantity="log_sigmoid",
        via_probabilities=False,
        code="keras.ops.log_sigmoid(z)",
        summary="Keras 3's log-sigmoid (torch backend)",
        compute=_elementwise("log_sigmoid"),
        requires=_REQ,
        extra="keras",
    ),
    Formulation(
        name="keras.softplus",
        framework="keras",
        quantity="softplus",
        via_probabilities=False,
        code="keras.ops.softplus(z)",
        summary="Keras 3's softplus (torch backend)",
        compute=_elementwise("softplus"),
        requires=_REQ,
        extra="keras",
    ),
)
