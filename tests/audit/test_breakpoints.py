"""Breakpoints: the sides, a case worked out by hand, and the search against brute force.

The brute-force scans evaluate the real framework on every float32 value of a band (in
chunks of 2**20 values, so memory stays bounded) and take the first value where each
criterion holds; the search must report exactly that value.
"""

from __future__ import annotations

import numpy as np
import pytest

from logitlab.analysis import breakpoints as bp
from logitlab.analysis.audit import Settings, _evaluator, audit
from logitlab.core.formats import get_format
from logitlab.formulations import get

F32 = get_format("float32")
HARD = [(0.0, "against"), (0.0, "with"), (1.0, "against"), (1.0, "with")]
CHUNK = 2**20


def test_sides() -> None:
    assert bp.side_sign(0.0, "against") == 1 and bp.side_sign(0.0, "with") == -1
    assert bp.side_sign(1.0, "against") == -1 and bp.side_sign(0.7, "with") == 1
    assert bp.side_sign(0.3, "against") == 1
    assert bp.side_sign(0.5, "against") == 1  # the documented convention


def test_ordinals_round_trip() -> None:
    for v in (F32.smallest_subnormal, 0.5, 8.000144958496094, 120.0, F32.max):
        k = bp.ordinal_of(v, F32)
        assert float(bp.magnitudes(np.array([k]), F32)[0]) == v
    assert (
        bp.ordinal_of(np.nextafter(np.float32(8), np.float32(9)), F32)
        == bp.ordinal_of(8.0, F32) + 1
    )


def test_torch_logits_y0_by_hand() -> None:
    """BCEWithLogitsLoss, y = 0, z < 0: the loss ``log1p(exp(z))`` is formed as
    ``(1 - y) z + max(-z, 0) + log1p(exp(-|z|))``-like sums of terms near |z|, so its error
    is about half an ULP of |z|: 2**-22 below 8 (relative 2**-22 / exp(-8) = 7.1e-4 at most)
    and 2**-21 from 8 on (1.4e-3).  Torch itself, every float32 from -7.99 to -8.0002, and
    the exact loss in float64: the first value over 1e-3 (and over 1 ULP) is -8.000145."""
    import torch

    lo, hi = bp.ordinal_of(7.99, F32), bp.ordinal_of(8.0002, F32)
    z = -bp.magnitudes(np.arange(lo, hi + 1), F32)
    t = torch.tensor(z, dtype=torch.float32)
    loss = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            t, torch.zeros_like(t), reduction="none"
        )
        .double()
        .numpy()
    )
    exact = np.log1p(np.exp(z))  # float64: far finer than float32's ULP
    rel = np.abs(loss - exact) / exact
    ulp = np.abs(loss - exact) / np.spacing(np.float32(exact)).astype(np.float64)
    bad = (rel > 1e-3) & (ulp > 1)
    assert not bad[np.abs(z) < 8].any()
    first = float(z[np.flatnonzero(bad)[0]])
    assert first == pytest.approx(-8.000145, abs=5e-7)
    # and the audit reports that value, not the -8.222 of the old sampled audit
    r = audit("bce", formulations=["torch.logits"], dtypes=["float32"], points=200)
    assert r.onset("torch.logits", "float32", 0.0, "with", "loss relative error").z == first


def _brute(name: str, lanes: list[tuple[float, str]], lo: float, hi: float) -> dict:
    """``(lane, criterion) -> signed z`` of the first value of |z| in [lo, hi] holding the
    criterion, from every float32 value there (``None``: none)."""
    f = get(name)
    evaluate = _evaluator(f, Settings(), F32, lanes)  # type: ignore[arg-type]
    a, b = bp.ordinal_of(lo, F32), bp.ordinal_of(hi, F32)
    found: dict[tuple[int, str], float | None] = {}
    for lane, (y, side) in enumerate(lanes):
        sign = bp.side_sign(y, side)
        known: set[str] | None = None
        for start in range(a, b + 1, CHUNK):
            ks = np.arange(start, min(start + CHUNK, b + 1), dtype=np.int64)
            masks = evaluate(np.full(ks.size, lane), ks)
            assert masks is not None
            known = set(masks)
            for c, m in masks.items():
                hit = np.flatnonzero(m)
                if (lane, c) not in found and hit.size:
                    found[(lane, c)] = sign * float(bp.magnitudes(ks[hit[:1]], F32)[0])
            if all((lane, c) in found for c in known):
                break
        for c in known or ():
            found.setdefault((lane, c), None)
    return found


def _searched(name: str, lanes: list[tuple[float, str]], band: tuple[float, float] | None):
    f = get(name)
    evaluate = _evaluator(f, Settings(), F32, lanes)  # type: ignore[arg-type]
    ords = bp.search(evaluate, F32, len(lanes), list(bp.CRITERIA), band=band)
    return {
        key: None
        if k is None
        else bp.side_sign(*lanes[key[0]]) * float(bp.magnitudes(np.array([k]), F32)[0])
        for key, k in ords.items()
    }


def _check(name: str, lo: float, hi: float) -> None:
    brute = _brute(name, HARD, lo, hi)
    assert _searched(name, HARD, (lo, hi)) == brute
    full = _searched(name, HARD, None)  # what the audit runs: the whole finite range
    for key, zb in brute.items():
        zf = full[key]
        if zb is not None:  # the full search finds it, or one further down
            assert zf is not None and abs(zf) <= abs(zb), key
            if abs(zf) >= lo:
                assert zf == zb, key
        elif zf is not None:
            assert not lo <= abs(zf) <= hi, key


FOUR = ["torch.probabilities", "torch.logits", "optax.logits", "sklearn.log_loss"]


def _needs(name: str) -> None:
    f = get(name)
    if f.missing():
        pytest.skip(f.missing())


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("torch.logits", 7.99, 8.01),  # y = 0 loss: -8.000145
        ("torch.probabilities", 12.2, 12.3),  # y = 0 loss: 12.24105, an isolated sawtooth peak
        ("sklearn.log_loss", 9.6, 9.7),  # y = 1 loss: 9.6629 (1 - eps clip)
        ("optax.logits", 87.3, 87.4),  # XLA flushes the subnormal loss: 87.3365
    ],
)
def test_search_equals_brute_force_narrow(name: str, lo: float, hi: float) -> None:
    _needs(name)
    _check(name, lo, hi)


@pytest.mark.slow
@pytest.mark.parametrize("name", FOUR)
def test_search_equals_brute_force_every_float32_in_half_to_120(name: str) -> None:
    """Every float32 value with |z| in [0.5, 120], y = 0 and 1, both sides (about 2.6e8
    evaluations per formulation, in chunks of 2**20)."""
    _needs(name)
    _check(name, 0.5, 120.0)


def test_sklearn_per_element_equals_one_call_per_element() -> None:
    pytest.importorskip("sklearn")
    from scipy.special import expit
    from sklearn.metrics import log_loss

    from logitlab.formulations._sklearn import _per_sample

    rng = np.random.default_rng(7)
    for dtype in (np.float16, np.float32, np.float64):
        z = np.concatenate([rng.uniform(-40, 40, 150), [0.0, 9.66, 16.7, -16.7, 36.0, 300.0]])
        p = expit(z.astype(dtype))
        y = rng.integers(0, 2, z.size)
        for w in (None, rng.uniform(0, 3, z.size)):
            got = _per_sample(y, p, w)
            one = [
                log_loss(
                    y[i : i + 1],
                    p[i : i + 1],
                    labels=[0, 1],
                    normalize=False,
                    sample_weight=None if w is None else w[i : i + 1],
                )
                for i in range(z.size)
            ]
            np.testing.assert_array_equal(got, np.asarray(one))
