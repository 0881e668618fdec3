"""Softmax cross-entropy: the fast reference against mpmath, the torch rows, the audit."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from logitlab.analysis.audit import audit
from logitlab.core.formats import get_format
from logitlab.core.ulp import ordinal
from logitlab.exact import fast
from logitlab.exact._softmax import softmax_cross_entropy


def _mp(row: list[float], t: int) -> tuple[object, list[object]]:
    """loss and gradient of one row straight from the definition, at 1300 bits."""
    with mpmath.workprec(1300):
        z = [mpmath.mpf(v) for v in row]
        top = max(z)
        s = mpmath.fsum(mpmath.exp(v - top) for v in z)
        loss = mpmath.log(s) + top - z[t]
        p = [mpmath.exp(v - top) / s for v in z]
        grad = [pj - (1 if j == t else 0) for j, pj in enumerate(p)]
        return +loss, [+g for g in grad]


def _ulp(a: object, b: object, fmt: object) -> float:
    with mpmath.workprec(1300):
        return float(abs(ordinal(a, fmt) - ordinal(b, fmt)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_fast_softmax_ce_against_mpmath(dtype: str) -> None:
    fmt = get_format(dtype)
    rng = np.random.default_rng(4)
    lim = math.log(fmt.max)
    m = np.concatenate(
        [
            [0.0, fmt.smallest_subnormal, -fmt.smallest_subnormal, lim, -lim, 2 * lim, fmt.max],
            rng.uniform(-3 * lim, 3 * lim, 40),
            10 ** rng.uniform(-8, 1, 10),
        ]
    )
    m = fmt.round(m)
    z = np.zeros((m.size, 3))
    z[:, 0] = m
    for t in (0, 1):
        ref = fast.softmax_ce(z, np.full(m.size, t), fmt)
        values, grads = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
        for i in range(m.size):
            loss, grad = _mp([float(v) for v in z[i]], t)
            assert _ulp(values[i], loss, fmt) < 0.01, (m[i], t)
            for j in range(3):
                assert _ulp(grads[3 * i + j], grad[j], fmt) < 0.01, (m[i], t, j)


def test_fast_softmax_matches_the_exact_module_where_it_resolves() -> None:
    z = np.array([[2.0, -1.0, 0.5], [30.0, 0.0, 0.0]])
    ref = fast.softmax_ce(z, np.array([1, 0]), "float64")
    ex = softmax_cross_entropy(z, np.array([1, 0]), reduction="none")
    assert [float(v) for v in ref.value] == [float(v) for v in ex.values]


def test_softmax_audit_rows() -> None:
    r = audit("softmax_ce", dtypes=["float32"], points=300, families=["m,0,0"])
    names = [row.name for row in r.rows]
    assert names[:3] == ["torch.cross_entropy", "torch.log_softmax_nll", "torch.log_of_softmax"]
    fused = r.row("torch.cross_entropy", "float32").measures
    probs = r.row("torch.log_of_softmax", "float32").measures
    assert fused is not None and probs is not None
    assert probs.value.inf > 0 and fused.value.inf == 0  # log(0) once softmax underflows
    row = r.row("torch.cross_entropy", "float32")
    assert {(o.target, o.side) for o in row.onsets} == {
        (t, s) for t in ("t=swept", "t=other") for s in ("against", "with")
    }


def test_jax_softmax_rows() -> None:
    pytest.importorskip("optax")
    r = audit(
        "softmax_ce",
        formulations=["optax.softmax_ce", "jax.log_of_softmax"],
        dtypes=["float32"],
        points=200,
        families=["m,0,0", "masked"],
    )
    assert {row.family for row in r.rows} == {"m,0,0", "masked"}
    assert all(row.status == "ok" and row.has_autograd for row in r.rows)
    fused = r.row("optax.softmax_ce", "float32").measures
    assert fused is not None and fused.value.inf == 0


def test_first_verdicts_stand_in_a_search() -> None:
    from logitlab.analysis.audit_softmax import FirstVerdicts

    v = FirstVerdicts()
    b = np.array
    first = v.settle(b([0, 0, 1]), b([5, 7, 5]), {"a": b([1, 0, 1], bool), "b": b([0, 0, 1], bool)})
    assert first["a"].tolist() == [True, False, True] and first["b"].tolist() == [
        False,
        False,
        True,
    ]
    assert v.changed == 0
    # (0, 7) was (F, F) and (1, 5) was (T, T): both keep them; (0, 9) is new and twice in the
    # batch: its first occurrence (F, F) stands for the second (T, F).
    again = v.settle(
        b([0, 1, 0, 0]),
        b([7, 5, 9, 9]),
        {"a": b([1, 1, 0, 1], bool), "b": b([0, 0, 0, 0], bool)},
    )
    assert again["a"].tolist() == [False, True, False, False]
    assert again["b"].tolist() == [False, True, False, False]
    assert v.changed == 3
    # a point seen with the same verdicts changes nothing; the criteria must not change
    assert v.settle(b([0]), b([9]), {"a": b([0], bool), "b": b([0], bool)})["a"].tolist() == [False]
    assert v.changed == 3
    with pytest.raises(ValueError, match="criteria changed"):
        v.settle(b([0]), b([9]), {"a": b([0], bool)})
