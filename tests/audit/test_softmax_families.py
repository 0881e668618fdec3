"""The softmax audit's families: the generalised fast reference against mpmath, exact
breakpoints against brute force (float16) and a scan of neighbours (float32), the masked
rows' behaviour, label smoothing's applicability, and the CLI."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
from typer.testing import CliRunner

from logitlab.analysis import audit_softmax as sm
from logitlab.analysis.audit import audit
from logitlab.cli import app
from logitlab.core.formats import get_format
from logitlab.core.ulp import ordinal
from logitlab.exact import fast
from logitlab.formulations import Formulation, NotApplicable
from logitlab.formulations._base import Outcome

runner = CliRunner()


def _mp_ce(row: list[float], t: int, eps: float) -> tuple[object, list[object]]:
    """F.cross_entropy's loss and gradient of one row from the definition, at 1300 bits:
    ``q = (1 - eps) onehot + eps / K``, ``loss = -sum q log p``, ``grad = p - q``, with
    ``log p_j = z_j - top - log1p(R)`` (``R`` the sum over all but the top) and
    ``p_top - q_top = expm1(log p_top) + (1 - q_top)``: 1300 bits hold the rows' tiny
    terms only relative to themselves."""
    with mpmath.workprec(1300):
        k = len(row)
        z = [mpmath.mpf(v) for v in row]
        top = max(v for v in z if v != -mpmath.inf)
        first = z.index(top)
        rest = mpmath.fsum(
            mpmath.exp(v - top) for j, v in enumerate(z) if v != -mpmath.inf and j != first
        )
        q = [(1 - mpmath.mpf(eps)) * (j == t) + mpmath.mpf(eps) / k for j in range(k)]
        loss = mpmath.mpf(0)
        grad = []
        for j, v in enumerate(z):
            if v == -mpmath.inf:
                assert q[j] == 0
                grad.append(mpmath.mpf(0) - q[j])
                continue
            logp = v - top - mpmath.log1p(rest)
            loss += -q[j] * logp
            if j == first:
                grad.append(mpmath.expm1(logp) + (1 - q[j]))
            else:
                grad.append(mpmath.exp(logp) - q[j])
        return +loss, [+g for g in grad]


def _ulp(a: object, b: object, fmt: object) -> float:
    with mpmath.workprec(1300):
        return float(abs(ordinal(a, fmt) - ordinal(b, fmt)))


def _rows(fmt: object, k: int, n: int, seed: int, masked: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lim = math.log(get_format(fmt).max)  # type: ignore[arg-type]
    z = rng.uniform(-8, 0, (n, k))
    z[:, 1] = 0
    m = np.concatenate(
        [
            rng.uniform(-3 * lim, 3 * lim, n // 3),
            rng.uniform(-40, 40, n // 3),
            10 ** rng.uniform(-8, 1, n - 2 * (n // 3)) * rng.choice([-1, 1], n - 2 * (n // 3)),
        ]
    )
    z[:, 0] = m
    z = get_format(fmt).round(z)  # type: ignore[arg-type]
    if masked:
        z[:, 2 : 2 + masked] = -np.inf
    return z


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize(
    ("k", "eps", "masked"), [(10, 0.0, 0), (10, 0.0, 3), (3, 0.1, 0), (10, 0.1, 0)]
)
def test_fast_reference_against_mpmath(dtype: str, k: int, eps: float, masked: int) -> None:
    """Random other logits (differences not representable), -inf entries and label
    smoothing: within 0.01 ULP everywhere, and the exact=False bounds hold."""
    fmt = get_format(dtype)
    z = _rows(dtype, k, 24, seed=k + masked + int(10 * eps))
    if masked:
        z[:, 2 : 2 + masked] = -np.inf
    t = np.arange(z.shape[0]) % 2  # the swept class and the runner-up
    ref = fast.softmax_ce(z, t, fmt, label_smoothing=eps)
    loose = fast.softmax_ce(z, t, fmt, label_smoothing=eps, exact=False)
    assert loose.value_err is not None and loose.grad_err is not None
    values, grads = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
    lv, lg = fast.to_mpf(loose.value), fast.to_mpf(loose.grad)
    ve, ge = fast.to_mpf(loose.value_err), fast.to_mpf(loose.grad_err)
    for i in range(z.shape[0]):
        loss, grad = _mp_ce([float(v) for v in z[i]], int(t[i]), eps)
        assert _ulp(values[i], loss, fmt) < 0.01, (z[i], t[i])
        with mpmath.workprec(1300):
            assert abs(lv[i] - loss) <= ve[i], (z[i], t[i])
        for j in range(k):
            assert _ulp(grads[k * i + j], grad[j], fmt) < 0.01, (z[i], t[i], j)
            with mpmath.workprec(1300):
                assert abs(lg[k * i + j] - grad[j]) <= ge[k * i + j], (z[i], t[i], j)


def test_fast_reference_masked_target_and_all_masked() -> None:
    # (0, -inf, 0) with label 1: p = (1/2, 0, 1/2): loss +inf, gradient p - onehot
    z = np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]])
    ref = fast.softmax_ce(z, np.array([1, 1]), "float32")
    assert ref.value[0] == np.inf
    assert [float(g) for g in ref.grad[0]] == [0.5, -1.0, 0.5]
    assert np.isnan(ref.value[1])
    assert ref.fallback == 2


def test_family_rows() -> None:
    fmt = get_format("bfloat16")
    for fam in sm.FAMILIES:
        base = sm.base_row(fam, fmt, 7)
        assert base.shape == (fam.classes,)
        assert base[1] == 0 and np.all(base[2:] <= 0)
        assert np.count_nonzero(base == -np.inf) == fam.masked
        finite = base[np.isfinite(base)]
        assert np.array_equal(fmt.round(finite), finite)  # values of the format
    # the seed draws the other logits; the same seed, the same row
    fam = sm._BY_NAME["K=10"]
    assert np.array_equal(sm.base_row(fam, fmt, 1), sm.base_row(fam, fmt, 1))
    assert not np.array_equal(sm.base_row(fam, fmt, 1), sm.base_row(fam, fmt, 2))


def _exact_loss64(z: np.ndarray, t: int) -> np.ndarray:
    # an independent float64 formula: log(sum exp(z - max)) + max - z_t
    top = z.max(axis=1, keepdims=True)
    return np.log(np.exp(z - top).sum(axis=1)) + top[:, 0] - z[:, t]


def _ulp16(e: np.ndarray) -> np.ndarray:
    return np.exp2(np.floor(np.log2(np.abs(e))) - 10)


@pytest.fixture(scope="module")
def k10() -> object:
    return audit(
        "softmax_ce",
        formulations=["torch.cross_entropy"],
        dtypes=["float16", "float32"],
        points=200,
        families=["K=10"],
    )


def test_float16_breakpoint_by_brute_force(k10: object) -> None:
    """F.cross_entropy, K=10, t=swept, m > 0: every float16 margin from the smallest up,
    run in torch directly; the first where the loss is off by > max(1e-3, 2 eps) and
    > 1 ULP is the audit's onset."""
    import torch

    fmt = get_format("float16")
    onset = k10.onset(  # type: ignore[attr-defined]
        "torch.cross_entropy", "float16", "t=swept", "with", "loss relative error", "K=10"
    )
    assert onset.z is not None and onset.z > 0
    base = sm.base_row(sm._BY_NAME["K=10"], fmt, 0)
    m = fmt.values()
    m = m[(m > 0) & (m <= 2 * onset.z)]
    z = np.repeat(base[None], m.size, axis=0)
    z[:, 0] = m
    loss = (
        torch.nn.functional.cross_entropy(
            torch.tensor(z, dtype=torch.float16),
            torch.zeros(m.size, dtype=torch.int64),
            reduction="none",
        )
        .double()
        .numpy()
    )
    exact = _exact_loss64(z, 0)
    bad = (np.abs(loss - exact) / exact > 2 * 2.0**-10) & (np.abs(loss - exact) / _ulp16(exact) > 1)
    assert bad.any()
    assert float(m[np.flatnonzero(bad)[0]]) == onset.z


def _torch_f32(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    t = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(
        t, torch.zeros(z.shape[0], dtype=torch.int64), reduction="none"
    )
    loss.sum().backward()
    assert t.grad is not None
    return loss.detach().double().numpy(), t.grad.double().numpy()


def _below(onset: float, n: int) -> np.ndarray:
    """The float32 value ``onset`` and the ``n`` float32 values below it, ascending."""
    top = np.float32(onset)
    ks = np.arange(-n, 1)
    return (top.view(np.int32) + ks).astype(np.int32).view(np.float32).astype(np.float64)


def test_float32_breakpoints_by_scanning_neighbours(k10: object) -> None:
    """Float32 onsets of F.cross_entropy, K=10, t=swept, m > 0, against torch run
    directly on the 2**16 margins below each (the clean stretch the search requires) and
    an independent float64 reference (``R = sum_{c>0} exp(z_c - m)``: the loss
    ``log1p(R)``, the gradient ``-R / (1 + R)`` on class 0 and ``exp(z_c - m) / (1 + R)``
    elsewhere)."""
    base = sm.base_row(sm._BY_NAME["K=10"], get_format("float32"), 0)
    for criterion in ("loss relative error", "gradient vanishes"):
        onset = k10.onset(  # type: ignore[attr-defined]
            "torch.cross_entropy", "float32", "t=swept", "with", criterion, "K=10"
        )
        assert onset.z is not None
        m = _below(onset.z, 2**16)
        z = np.repeat(base[None], m.size, axis=0)
        z[:, 0] = m
        loss, grad = _torch_f32(z)
        e = np.exp(z[:, 1:] - m[:, None])
        r = e.sum(axis=1)
        if criterion == "loss relative error":
            exact = np.log1p(r)
            ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
            err = np.abs(loss - exact)
            bad = (err / exact > 1e-3) & (err / ulp > 1)
        else:
            eg = np.concatenate([-(r / (1 + r))[:, None], e / (1 + r)[:, None]], axis=1)
            real = np.abs(eg) > 2 * 2.0**-23 * np.abs(eg).max(axis=1, keepdims=True)
            bad = ((grad == 0) & real).any(axis=1)
        assert bad[-1], criterion
        assert not bad[:-1].any(), (criterion, m[np.flatnonzero(bad)[0]])


def test_masked_target_behaviour() -> None:
    r = audit(
        "softmax_ce",
        formulations=["torch.cross_entropy", "torch.log_of_softmax"],
        dtypes=["float32"],
        points=100,
        families=["target masked"],
    )
    fused = r.row("torch.cross_entropy", "float32", "target masked").behaviour
    probs = r.row("torch.log_of_softmax", "float32", "target masked").behaviour
    assert fused is not None and probs is not None
    # F.cross_entropy: loss +inf and the finite limit p - onehot; log(softmax): NaN grad
    assert fused["target masked"]["loss"] == "inf" and fused["target masked"]["grad"] == "finite"
    assert fused["target masked"]["class"] == "as the limit"
    assert "NaN" in probs["target masked"]["grad"] and probs["target masked"]["class"] == "NaN"
    assert fused["all masked"]["exact_loss"] == "NaN"
    assert r.row("torch.cross_entropy", "float32", "target masked").onsets == []


def _smoothing_formulation(kind: str) -> Formulation:
    def compute(case: object) -> Outcome:
        import torch
        import torch.nn.functional as F

        if kind == "refuses":
            raise NotApplicable("no label smoothing here")
        z = torch.tensor(case.logits, dtype=torch.float32, requires_grad=True)  # type: ignore[attr-defined]
        t = torch.from_numpy(np.asarray(case.labels, dtype=np.int64))  # type: ignore[attr-defined]
        eps = case.label_smoothing if kind == "takes" else 0.0  # type: ignore[attr-defined]
        loss = F.cross_entropy(z, t, reduction="none", label_smoothing=eps)
        loss.sum().backward()
        assert z.grad is not None
        return Outcome(loss.detach().double().numpy(), z.grad.double().numpy())

    return Formulation(
        f"test.{kind}", "torch", "softmax_ce", False, "F.cross_entropy(...)", "test", compute
    )


def test_smoothing_applicability() -> None:
    """A path that takes label_smoothing is measured; one that ignores it, or refuses
    it, is a not-applicable row."""
    fmt = get_format("float32")
    fam = sm._BY_NAME["smoothing"]
    base = sm.base_row(fam, fmt, 0)
    m = fmt.round(np.array([-20.0, -1.0, 0.5, 3.0, 30.0]))
    labels = np.repeat([0, 1], m.size)
    mm = np.tile(m, 2)
    ref = fast.softmax_ce(sm.family_rows(base, mm), labels, fmt, label_smoothing=fam.smoothing)
    takes = sm._sweep_row(_smoothing_formulation("takes"), fmt, fam, base, mm, labels, ref)
    assert takes.status == "ok" and takes.measures is not None
    # float32 F.cross_entropy with smoothing: a few ULPs, not the unsmoothed loss
    assert takes.measures.value.max_ulp < 8
    ignores = sm._sweep_row(_smoothing_formulation("ignores"), fmt, fam, base, mm, labels, ref)
    assert ignores.status == "not applicable" and "ignores label_smoothing" in str(ignores.reason)
    refuses = sm._sweep_row(_smoothing_formulation("refuses"), fmt, fam, base, mm, labels, ref)
    assert refuses.status == "not applicable" and refuses.reason == "no label smoothing here"


def test_cli_families_and_errors() -> None:
    from logitlab.ui import cli_audit

    assert tuple(f.name for f in sm.FAMILIES) == cli_audit._FAMILIES
    bad = runner.invoke(app, ["audit", "-q", "softmax_ce", "--family", "K=7"])
    assert bad.exit_code == 2 and "--family" in bad.output and "K=1000" in bad.output
    bce = runner.invoke(app, ["audit", "--family", "K=10"])
    assert bce.exit_code == 2 and "--family" in bce.output
    args = ["audit", "-q", "softmax_ce", "-d", "bfloat16", "-f", "torch.cross_entropy"]
    result = runner.invoke(app, [*args, "-j", "1", "--family", "masked", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["settings"]["families"] == ["masked"]
    assert {row["family"] for row in data["rows"]} == {"masked"}
    assert data["breakpoints"] and all(b["family"] == "masked" for b in data["breakpoints"])


def test_report_blocks_show_families_at_80_columns() -> None:
    from logitlab.ui.reports import to_blocks

    r = audit(
        "softmax_ce",
        formulations=["torch.cross_entropy"],
        dtypes=["bfloat16"],
        families=["m,0,0", "target masked"],
    )
    lines = to_blocks(r, 80)
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "== family m,0,0: rows (m, 0, 0)" in text
    assert "== family target masked" in text and "as the limit" in text


def test_cli_focal_reports_breakpoints() -> None:
    args = ["audit", "-q", "focal", "-d", "float16", "-j", "1", "--format", "json"]
    result = runner.invoke(app, [*args, "-f", "torch.torchvision_formula"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["settings"]["quantity"] == "focal"
    assert data["settings"]["alpha"] == 0.25 and data["settings"]["gamma"] == 2.0
    assert data["breakpoints"] and {b["dtype"] for b in data["breakpoints"]} == {"float16"}
    assert {b["target"] for b in data["breakpoints"]} >= {0.0, 1.0}


def test_cli_focal_arguments() -> None:
    for args, flag in (
        (["--alpha", "1.5"], "--alpha"),
        (["--alpha", "x"], "--alpha"),
        (["--gamma", "-1"], "--gamma"),
    ):
        result = runner.invoke(app, ["audit", "-q", "focal", "-d", "float16", *args])
        assert result.exit_code == 2 and flag in result.output, (args, result.output)
    none = runner.invoke(app, ["audit", "-q", "focal", "--alpha", "none", "--gamma", "nan"])
    assert none.exit_code == 2 and "--gamma" in none.output


def test_softmax_json_matches_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from logitlab.schemas import load
    from logitlab.ui.reports import to_json

    r = audit(
        "softmax_ce",
        formulations=["torch.cross_entropy"],
        dtypes=["float16"],
        families=["masked", "target masked"],
    )
    data = json.loads(to_json(r))
    jsonschema.validate(data, load("audit"))
    masked = [row for row in data["rows"] if row["family"] == "target masked"]
    assert masked and masked[0]["behaviour"]["target masked"]["class"] == "as the limit"
