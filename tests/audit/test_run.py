"""The runner: rows per (formulation, dtype), statuses, notes, seeds, workers."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from logitlab import formulations
from logitlab.analysis.audit import AuditResult, audit
from logitlab.core.errors import InputError
from logitlab.formulations import Formulation, Outcome


def test_rows_in_order_with_measures(small_audit: AuditResult) -> None:
    assert [(r.name, r.dtype) for r in small_audit.rows] == [
        (n, d)
        for n in ("torch.probabilities", "torch.logits", "numpy.naive")
        for d in ("float16", "float32")
    ]
    assert all(r.status == "ok" and r.measures is not None for r in small_audit.rows)
    assert small_audit.row("numpy.naive", "float32").has_autograd is False


def test_probabilities_path_breaks_where_sigmoid_saturates(small_audit: AuditResult) -> None:
    r = small_audit.row("torch.probabilities", "float32")
    assert r.measures is not None
    # torch.sigmoid(z) = 1 / (1 + exp(-z)) is exactly 1 once 1 + exp(-z) rounds to 1, i.e.
    # exp(-z) <= 2**-24 (half an ULP of 1 from above; the tie goes to the even 1): from
    # z = 24 ln 2 = 16.6355323...  The first float32 at or above it is where log(1 - p) is
    # clamped and the y = 0 gradient vanishes; the audit must put its breakpoint there.
    with mpmath.workprec(100):
        threshold = 24 * mpmath.log(2)
        first = np.float32(float(threshold))
        if mpmath.mpf(float(first)) < threshold:
            first = np.nextafter(first, np.float32(np.inf))
    assert float(first) == 16.63553237915039
    v = small_audit.onset("torch.probabilities", "float32", 0.0, "against", "gradient vanishes")
    assert v.z == float(first)
    # Just below it the float32 sigmoid is still below 1 (so the breakpoint is the first).
    below = np.nextafter(first, np.float32(0))
    assert float(torch.sigmoid(torch.tensor(below))) < 1.0
    assert float(torch.sigmoid(torch.tensor(first))) == 1.0
    assert r.measures.counts["log clamped"] > 0
    logits = small_audit.row("torch.logits", "float32").measures
    assert logits is not None and logits.counts["log clamped"] == 0


def test_float16_is_exhaustive(small_audit: AuditResult) -> None:
    m = small_audit.row("torch.logits", "float16").measures
    # Every float16 logit: 31 binades (subnormals included) of 1024 values each side of 0,
    # less the two zeros, plus +-0 and +-inf: 2 * (31 * 1024 - 1) + 4 = 63,490.  Targets:
    # the 11 defaults less 1e-10 and 1 - 1e-10, which round to 0 and 1 in float16: 9.
    assert m is not None and m.points == (2 * (31 * 1024 - 1) + 4) * 9
    assert small_audit.reference["float16"]["points"] == m.points


def test_same_seed_same_numbers() -> None:
    kw = dict(formulations=["torch.logits"], dtypes=["float32"], points=300)
    a = audit("bce", seed=1, **kw)  # type: ignore[arg-type]
    b = audit("bce", seed=1, **kw)  # type: ignore[arg-type]
    assert a.rows[0].measures is not None and b.rows[0].measures is not None
    assert a.rows[0].measures.to_dict() == b.rows[0].measures.to_dict()


def test_elementwise_quantity() -> None:
    r = audit("sigmoid", formulations=["torch.sigmoid", "numpy.sigmoid"], dtypes=["bfloat16"])
    m = r.row("torch.sigmoid", "bfloat16").measures
    assert m is not None and m.value.p99_ulp < 1
    # torch's bfloat16 sigmoid flushes to 0 from -89; the exact one still has subnormals
    o = r.onset("torch.sigmoid", "bfloat16", None, "negative", "loss relative error")
    assert o.z == -89.0


def test_weight_and_pos_weight() -> None:
    r = audit(
        "bce",
        formulations=["torch.logits", "torch.probabilities"],
        dtypes=["float32"],
        points=200,
        pos_weight=3.0,
        weight=0.5,
    )
    assert r.row("torch.logits", "float32").status == "ok"
    assert r.row("torch.probabilities", "float32").status == "not applicable"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"quantity": "nope"}, "quantity"),
        ({"formulations": ["torch.nope"]}, "formulation"),
        ({"dtypes": ["float8"]}, "dtype"),
        ({"points": 3}, "points"),
        ({"pos_weight": -1.0}, "pos_weight"),
        ({"targets": [1.5]}, "targets"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(InputError) as info:
        audit(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


def test_unknown_formulation_lists_choices() -> None:
    with pytest.raises(InputError, match=r"torch\.logits"):
        audit("bce", formulations=["torch.nope"])


@pytest.fixture
def fake_formulations(monkeypatch: pytest.MonkeyPatch) -> None:
    catalogue = dict(formulations._load())

    def boom(case: object) -> Outcome:
        raise RuntimeError("\"exp\" not implemented for 'Half'\nmore text")

    def upcast(case: object) -> Outcome:
        z = np.asarray(case.logits)  # type: ignore[attr-defined]
        return Outcome(value=1 / (1 + np.exp(-z)) + 1e-12)

    for f in (
        Formulation(
            "fake.missing", "fake", "sigmoid", True, "x", "x", boom, ("no_such_mod",), "fake"
        ),
        Formulation("fake.refuses", "fake", "sigmoid", True, "x", "x", boom),
        Formulation("fake.upcasts", "fake", "sigmoid", True, "x", "x", upcast),
    ):
        catalogue[f.name] = f
    monkeypatch.setattr(formulations, "_catalogue", catalogue)


@pytest.mark.usefixtures("fake_formulations")
def test_skipped_error_and_upcast_rows() -> None:
    r = audit(
        "sigmoid",
        formulations=["fake.missing", "fake.refuses", "fake.upcasts"],
        dtypes=["float16"],
    )
    missing, refuses, upcasts = r.rows
    assert missing.status == "skipped" and "pip install 'logitlab[fake]'" in (missing.reason or "")
    assert refuses.status == "error" and refuses.reason == (
        "RuntimeError: \"exp\" not implemented for 'Half'"
    )
    assert upcasts.status == "ok" and any("float64" in n and "upcast" in n for n in upcasts.notes)


def test_two_workers_match_one() -> None:
    kw = dict(formulations=["numpy.logits"], dtypes=["bfloat16", "float32"], points=500, seed=2)
    one = audit("bce", workers=1, **kw)  # type: ignore[arg-type]
    two = audit("bce", workers=2, **kw)  # type: ignore[arg-type]
    assert two.workers == 2
    assert [r.measures.to_dict() for r in one.rows if r.measures] == [
        r.measures.to_dict() for r in two.rows if r.measures
    ]
