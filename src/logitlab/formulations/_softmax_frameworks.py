"""Softmax cross-entropy outside PyTorch: optax, Keras 3, NumPy, SciPy and ``logitlab.stable``.

Each row is the line a user of that framework writes, run by the framework at the case's
dtype.  A framework's loss without an equivalent of an argument (a class weight,
``ignore_index``, label smoothing, probability targets) raises
:class:`~logitlab.formulations.NotApplicable` naming it; ``ignore_index`` only matters when
some target equals it.  Reductions: ``mean`` is the mean over the N samples (what
``F.cross_entropy`` does without weights or ignored samples, the only cases these rows
take).

* optax: ``softmax_cross_entropy_with_integer_labels`` (class indices),
  ``softmax_cross_entropy`` (one-hot or probability targets; label smoothing through
  ``optax.smooth_labels``) and ``safe_softmax_cross_entropy`` (optax >= 0.2.4: ``-inf``
  logits where the target is 0 give no NaN);
* Keras 3 on the torch backend: ``SparseCategoricalCrossentropy`` and
  ``CategoricalCrossentropy``, ``from_logits`` True and False (on probabilities Keras
  clips them to ``[1e-7, 1 - 1e-7]``; the loss object computes in ``floatx``, float32);
* NumPy written by hand, the stable way (max shift, then log-sum-exp) and the naive way
  (``log(exp(z) / sum(exp(z)))``), and ``scipy.special.log_softmax``;
* ``logitlab.stable.softmax_cross_entropy`` on torch tensors, with its own backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.core.inputs import SoftmaxCase
from logitlab.formulations._base import Formulation, NotApplicable, Outcome, as_float64
from logitlab.formulations._jax import _jax, _reduce, _run, _scoped
from logitlab.formulations._keras import _keras
from logitlab.formulations._numpy import as_dtype, reduce
from logitlab.formulations._torch import _outcome, _tensor
from logitlab.formulations._torch_softmax import ce_args

__all__ = ["FORMULATIONS"]


def _ignored(case: SoftmaxCase) -> bool:
    return case.class_indices and bool((np.asarray(case.target) == case.ignore_index).any())


def _require(
    case: SoftmaxCase,
    who: str,
    *,
    probabilities: bool = False,
    indices: bool = True,
    smoothing: bool = False,
) -> None:
    """Refuse what ``who`` cannot express, naming the argument."""
    if case.weight is not None:
        raise NotApplicable(f"{who} takes no class weight")
    if _ignored(case):
        raise NotApplicable(f"{who} has no ignore_index")
    if not case.class_indices and not probabilities:
        raise NotApplicable(f"{who} takes class indices, not probability targets")
    if case.class_indices and not indices:
        raise NotApplicable(f"{who} takes probabilities, not class indices")
    if case.label_smoothing and not smoothing:
        raise NotApplicable(f"{who} has no label_smoothing")


def _dense(case: SoftmaxCase) -> np.ndarray:
    """One-hot (class indices) or the probabilities, float64 (exact dtype values)."""
    if not case.class_indices:
        return np.asarray(case.target, dtype=np.float64)
    n, c = case.logits.shape
    out = np.zeros((n, c))
    out[np.arange(n), np.asarray(case.target, dtype=np.int64)] = 1.0
    return out


def _labels(case: SoftmaxCase) -> np.ndarray:
    return np.asarray(case.target, dtype=np.int64)


# --- optax ------------------------------------------------------------------------------


def _optax(kind: str) -> Any:
    def compute(case: SoftmaxCase) -> Outcome:
        jax = _jax()
        import jax.numpy as jnp
        import optax

        if kind == "integer":
            _require(case, "optax.losses.softmax_cross_entropy_with_integer_labels")
            t = jnp.asarray(_labels(case))
            fn = optax.losses.softmax_cross_entropy_with_integer_labels
        elif kind == "log_of_softmax":
            _require(case, "the hand-written jnp.log(jax.nn.softmax(z))")
            t = jnp.asarray(_labels(case))
        else:
            name = "softmax_cross_entropy" if kind == "dense" else "safe_softmax_cross_entropy"
            fn = getattr(optax.losses, name, None)
            if fn is None:
                raise NotApplicable(
                    f"optax {optax.__version__} has no losses.{name}; it is in optax >= 0.2.4"
                )
            _require(case, f"optax.losses.{name}", probabilities=True, smoothing=True)
            t = jnp.asarray(as_dtype(_dense(case), case))
            if case.label_smoothing:
                t = optax.smooth_labels(t, case.label_smoothing)

        def loss(z: Any, t: Any) -> Any:
            if kind == "log_of_softmax":
                logp = jnp.log(jax.nn.softmax(z, axis=1))
                out = -jnp.take_along_axis(logp, t[:, None], axis=1)[:, 0]
            else:
                out = fn(z, t)
            return _reduce(jnp, out, case.reduction)

        out = _run(case, loss, t, key=("optax.softmax", kind, case.reduction))
        if kind != "log_of_softmax":
            return out
        p = jax.nn.softmax(jnp.asarray(as_dtype(case.logits, case)), axis=1)
        return Outcome(out.value, out.grad, probabilities=np.asarray(p).astype(np.float64))

    return compute


def _optax_code(name: str) -> Any:
    def code(case: SoftmaxCase) -> str:
        t = "jax.nn.one_hot(t, C)" if case.class_indices else "t"
        if case.label_smoothing:
            t = f"optax.smooth_labels({t}, {case.label_smoothing!r})"
        suffix = {"mean": ".mean()", "sum": ".sum()", "none": ""}[case.reduction]
        return f"optax.losses.{name}(z, {t}){suffix}"

    return code


def _suffix(case: SoftmaxCase) -> str:
    return {"mean": ".mean()", "sum": ".sum()", "none": ""}[case.reduction]


# --- Keras --------------------------------------------------------------------------------


def _keras_ce(sparse: bool, from_logits: bool) -> Any:
    def compute(case: SoftmaxCase) -> Outcome:
        import torch

        keras = _keras()
        cls_name = "SparseCategoricalCrossentropy" if sparse else "CategoricalCrossentropy"
        who = f"keras.losses.{cls_name}"
        if sparse:
            _require(case, who)
        else:
            _require(case, who, probabilities=True, smoothing=True)
        z = _tensor(case.logits, case, requires_grad=True)
        reduction = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}[case.reduction]
        kwargs: dict[str, Any] = {"from_logits": from_logits, "reduction": reduction}
        if sparse:
            t = torch.from_numpy(_labels(case))
        else:
            t = _tensor(_dense(case), case)
            kwargs["label_smoothing"] = case.label_smoothing
        loss_fn = getattr(keras.losses, cls_name)(**kwargs)
        p = None if from_logits else keras.ops.softmax(z, axis=1)
        out = loss_fn(t, z if from_logits else p)
        if p is None:
            return _outcome(out, z)
        with torch.no_grad():
            eps = keras.config.epsilon()
            pd = p.detach()
            clipped = (torch.clamp(pd, eps, 1 - eps) != pd).numpy()
        return _outcome(out, z, p, clipped=clipped)

    return compute


def _keras_code(sparse: bool, from_logits: bool) -> Any:
    def code(case: SoftmaxCase) -> str:
        cls_name = "SparseCategoricalCrossentropy" if sparse else "CategoricalCrossentropy"
        args = []
        if from_logits:
            args.append("from_logits=True")
        if not sparse and case.label_smoothing:
            args.append(f"label_smoothing={case.label_smoothing!r}")
        if case.reduction != "mean":
            args.append(f"reduction={'None' if case.reduction == 'none' else repr('sum')}")
        t = "t" if sparse or not case.class_indices else "keras.ops.one_hot(t, C)"
        x = "z" if from_logits else "keras.ops.softmax(z)"
        return f"keras.losses.{cls_name}({', '.join(args)})({t}, {x})"

    return code


# --- NumPy and SciPy --------------------------------------------------------------------


def _smoothed(case: SoftmaxCase, dtype: Any) -> Any:
    c = case.logits.shape[1]
    t = as_dtype(_dense(case), case)
    if case.label_smoothing:
        eps = np.asarray(case.label_smoothing, dtype=dtype)
        t = t * (np.ones((), dtype=dtype) - eps) + eps / np.asarray(c, dtype=dtype)
    return t


def _pick(logp: Any, case: SoftmaxCase) -> Any:
    """``-logp[range(N), t]`` for class indices without smoothing, else ``-(t*logp).sum(1)``."""
    if case.class_indices and not case.label_smoothing:
        return -np.take_along_axis(logp, _labels(case)[:, None], axis=1)[:, 0]
    return -(_smoothed(case, logp.dtype) * logp).sum(axis=1, dtype=logp.dtype)


def _numpy(kind: str) -> Any:
    def compute(case: SoftmaxCase) -> Outcome:
        who = {
            "stable": "the hand-written NumPy log-softmax",
            "naive": "the hand-written NumPy softmax",
            "scipy": "scipy.special.log_softmax",
        }[kind]
        _require(case, who, probabilities=True, smoothing=True)
        z = as_dtype(case.logits, case)
        p = None
        with np.errstate(all="ignore"):
            if kind == "stable":
                m = z.max(axis=1, keepdims=True)
                s = np.exp(z - m).sum(axis=1, keepdims=True, dtype=z.dtype)
                logp = z - m - np.log(s)
            elif kind == "naive":
                e = np.exp(z)
                p = e / e.sum(axis=1, keepdims=True, dtype=z.dtype)
                logp = np.log(p)
            else:
                import scipy.special

                logp = scipy.special.log_softmax(z, axis=1)
            value = reduce(np.asarray(_pick(logp, case)), case.reduction)
        return Outcome(
            value=as_float64(np.asarray(value).astype(np.float64)),
            probabilities=None if p is None else as_float64(p.astype(np.float64)),
        )

    return compute


def _numpy_code(kind: str) -> Any:
    def code(case: SoftmaxCase) -> str:
        logp = {
            "stable": "(z - m - np.log(np.exp(z - m).sum(1, keepdims=True)))",
            "naive": "np.log(np.exp(z) / np.exp(z).sum(1, keepdims=True))",
            "scipy": "scipy.special.log_softmax(z, axis=1)",
        }[kind]
        if case.class_indices and not case.label_smoothing:
            body = f"-{logp}[np.arange(N), t]"
        else:
            body = f"-(t * {logp}).sum(1)"
        prefix = "m = z.max(1, keepdims=True); " if kind == "stable" else ""
        suffix = {"mean": ".mean()", "sum": ".sum()", "none": ""}[case.reduction]
        return prefix + (f"({body}){suffix}" if suffix else body)

    return code


# --- logitlab.stable ----------------------------------------------------------------------


def _stable(case: SoftmaxCase) -> Outcome:
    from logitlab import stable

    z = _tensor(case.logits, case, requires_grad=True)
    if case.class_indices:
        import torch

        t = torch.from_numpy(_labels(case))
    else:
        t = _tensor(case.target, case)
    loss = stable.softmax_cross_entropy(
        z,
        t,
        weight=_tensor(case.weight, case),
        ignore_index=case.ignore_index,
        reduction=case.reduction,
        label_smoothing=case.label_smoothing,
    )
    return _outcome(loss, z)


_OPTAX = ("jax", "optax")
_KERAS = ("keras",)

FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="optax.softmax_ce",
        framework="jax",
        flushes_subnormals=True,
        quantity="softmax_ce",
        via_probabilities=False,
        code="optax.losses.softmax_cross_entropy_with_integer_labels(z, t).mean()",
        summary="optax's softmax cross-entropy from logits and class indices",
        compute=_scoped(_optax("integer")),
        requires=_OPTAX,
        extra="jax",
        code_for=lambda c: (
            f"optax.losses.softmax_cross_entropy_with_integer_labels(z, t){_suffix(c)}"
        ),
    ),
    Formulation(
        name="optax.softmax_ce_dense",
        framework="jax",
        flushes_subnormals=True,
        quantity="softmax_ce",
        via_probabilities=False,
        code="optax.losses.softmax_cross_entropy(z, jax.nn.one_hot(t, C)).mean()",
        summary="optax's softmax cross-entropy on one-hot or probability targets: "
        "-sum(t * log_softmax(z)), so 0 * (-inf) = NaN at a masked logit",
        compute=_scoped(_optax("dense")),
        requires=_OPTAX,
        extra="jax",
        code_for=_optax_code("softmax_cross_entropy"),
    ),
    Formulation(
        name="optax.safe_softmax_ce",
        framework="jax",
        flushes_subnormals=True,
        quantity="softmax_ce",
        via_probabilities=False,
        code="optax.losses.safe_softmax_cross_entropy(z, jax.nn.one_hot(t, C)).mean()",
        summary="optax's mask-safe variant: -inf logits with target 0 contribute 0, not NaN",
        compute=_scoped(_optax("safe")),
        requires=_OPTAX,
        extra="jax",
        code_for=_optax_code("safe_softmax_cross_entropy"),
    ),
    Formulation(
        name="jax.log_of_softmax",
        framework="jax",
        flushes_subnormals=True,
        quantity="softmax_ce",
        via_probabilities=True,
        code="-jnp.take_along_axis(jnp.log(jax.nn.softmax(z)), t[:, None], 1)",
        summary="log of JAX's softmax probabilities",
        compute=_scoped(_optax("log_of_softmax")),
        requires=("jax",),
        extra="jax",
    ),
    *(
        Formulation(
            name=f"keras.{'sparse' if sparse else 'categorical'}_ce_"
            f"{'logits' if from_logits else 'probabilities'}",
            framework="keras",
            quantity="softmax_ce",
            via_probabilities=not from_logits,
            code=(
                f"keras.losses.{'Sparse' if sparse else ''}CategoricalCrossentropy("
                f"{'from_logits=True' if from_logits else ''})"
                f"({'t' if sparse else 'keras.ops.one_hot(t, C)'}, "
                f"{'z' if from_logits else 'keras.ops.softmax(z)'})"
            ),
            summary=(
                f"Keras 3 (torch backend) {'sparse ' if sparse else ''}categorical "
                + (
                    "cross-entropy from logits, in floatx"
                    if from_logits
                    else "cross-entropy on softmax probabilities: clips to [1e-7, 1-1e-7]"
                )
            ),
            compute=_keras_ce(sparse, from_logits),
            requires=_KERAS,
            extra="keras",
            code_for=_keras_code(sparse, from_logits),
        )
        for sparse in (True, False)
        for from_logits in (False, True)
    ),
    Formulation(
        name="numpy.log_softmax",
        framework="numpy",
        quantity="softmax_ce",
        via_probabilities=False,
        code="m = z.max(1, keepdims=True); (-(z - m - np.log(np.exp(z - m).sum(1, "
        "keepdims=True)))[np.arange(N), t]).mean()",
        summary="log-softmax written by hand in NumPy, shifted by the row maximum",
        compute=_numpy("stable"),
        code_for=_numpy_code("stable"),
    ),
    Formulation(
        name="numpy.naive_softmax",
        framework="numpy",
        quantity="softmax_ce",
        via_probabilities=True,
        code="(-np.log(np.exp(z) / np.exp(z).sum(1, keepdims=True))[np.arange(N), t]).mean()",
        summary="softmax written by hand without the shift: exp(z) overflows, then inf/inf",
        compute=_numpy("naive"),
        code_for=_numpy_code("naive"),
    ),
    Formulation(
        name="scipy.log_softmax",
        framework="scipy",
        quantity="softmax_ce",
        via_probabilities=False,
        code="(-scipy.special.log_softmax(z, axis=1)[np.arange(N), t]).mean()",
        summary="SciPy's log_softmax, then pick the target class",
        compute=_numpy("scipy"),
        requires=("scipy",),
        code_for=_numpy_code("scipy"),
    ),
    Formulation(
        name="stable.softmax_ce",
        framework="stable",
        quantity="softmax_ce",
        via_probabilities=False,
        code="logitlab.stable.softmax_cross_entropy(z, t)",
        summary="log1p of the other classes' sum, non-negative terms, float64 inside; own backward",
        compute=_stable,
        requires=("torch",),
        code_for=lambda c: f"logitlab.stable.softmax_cross_entropy(z, t{ce_args(c)})",
    ),
)
