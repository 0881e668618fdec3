"""logitlab.watch on hand-made inputs whose outcome is known in advance."""

from __future__ import annotations

import gc
import inspect
import math
import os
import warnings
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import logitlab.watch
from logitlab.watch import WatchWarning, watch


def line_here() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def only(report, kind):
    found = [f for f in report.findings if f.kind == kind]
    assert len(found) == 1, report
    return found[0]


def test_import_is_light_and_module_is_callable():
    assert callable(logitlab.watch)
    assert logitlab.watch.watch is watch
    w = logitlab.watch(full=True)
    assert isinstance(w, logitlab.watch.Watcher)


def test_bce_saturated_at_z20_counts_known_in_advance(device):
    # float32 sigmoid(20) = 1 - 2.06e-9 rounds to exactly 1; with y = 0.3 the
    # (1 - y) * log(1 - p) term is log(0): clamped at -100, and sigmoid's backward is 0.
    z = torch.tensor([20.0, 0.5, -1.0], device=device, requires_grad=True)
    y = torch.tensor([0.3, 1.0, 0.0], device=device)
    assert torch.sigmoid(z)[0].item() == 1.0
    with watch(full=True, warn=False) as w:
        loss = F.binary_cross_entropy(torch.sigmoid(z), y)
        line = line_here() - 1
        loss.backward()
    f = only(w.report(), "bce-on-probabilities")
    assert (f.code, f.line, f.file) == ("LGL001", line, __file__)
    assert f.elements == 3 and f.affected == 1
    assert f.counts == {"saturated": 1, "log_clamped": 1, "grad_clamped": 0, "grad_vanished": 1}
    assert f.worst == 20.0
    # The real gradient agrees: torch gives 0 where sigma(z) - y = 0.7 / 3.
    assert z.grad[0].item() == 0.0
    # and the loss really is the clamp: (100 * 0.7 + ...) / 3
    assert loss.item() == pytest.approx(
        (100 * 0.7 + F.softplus(torch.tensor(-0.5)).item() + F.softplus(torch.tensor(-1.0)).item())
        / 3,
        rel=1e-6,
    )


def test_bce_gradient_clamped_at_z_minus50(device):
    # sigmoid(-50) = 1.9e-22 is representable, so the loss is right, but the backward
    # divides by max(p(1-p), 1e-12) = 1e-12: the logit's gradient is 2.4e-11, not -0.125.
    z = torch.full((8,), -50.0, device=device).requires_grad_()
    y = torch.ones(8, device=device)
    with watch(full=True, warn=False) as w:
        F.binary_cross_entropy(torch.sigmoid(z), y).backward()
    expected = (torch.sigmoid(z.detach().double()) - 1) / 8
    assert expected[0].item() == pytest.approx(-0.125)
    assert abs(z.grad[0].item()) < 1e-10  # what torch really gives
    f = only(w.report(), "bce-on-probabilities")
    assert f.counts == {"saturated": 0, "log_clamped": 0, "grad_clamped": 8, "grad_vanished": 0}
    assert f.affected == 8 and f.worst == 50.0


def test_vanished_matches_real_autograd_through_views_and_clamp(device):
    torch.manual_seed(0)
    z = (torch.randn(64, 4, device=device) * 30).requires_grad_()
    y = (torch.rand(64, 4, device=device) > 0.5).float()
    with watch(full=True, warn=False) as w:
        p = torch.sigmoid(z).clamp(1e-7, 1 - 1e-7).view(-1).float()
        F.binary_cross_entropy(p, y.view(-1), reduction="sum").backward()
    reference = torch.sigmoid(z.detach()) - y  # the logits path's gradient
    real_vanished = int(((z.grad == 0) & (reference != 0)).sum())
    assert real_vanished > 0
    f = only(w.report(), "bce-on-probabilities")
    assert f.counts["grad_vanished"] == real_vanished
    assert f.counts["saturated"] == 0  # the clamp hides saturation from the loss


def test_indexing_keeps_the_logits_aligned():
    z = torch.tensor([[30.0, -1.0], [2.0, -40.0]], requires_grad=True)
    y = torch.tensor([0.0, 1.0])
    with watch(full=True, warn=False) as w:
        p = torch.sigmoid(z)[:, 0]  # 30 and 2: only the first saturates
        F.binary_cross_entropy(p, y).backward()
    f = only(w.report(), "bce-on-probabilities")
    assert f.counts["saturated"] == 1 and f.worst == 30.0
    assert f.counts["grad_vanished"] == int((z.grad[:, 0] == 0).sum()) == 1


def test_weight_zero_terms_are_not_counted():
    z = torch.tensor([20.0, 20.0])
    y = torch.tensor([0.0, 0.0])
    with watch(full=True, warn=False) as w:
        F.binary_cross_entropy(torch.sigmoid(z), y, weight=torch.tensor([0.0, 1.0]))
    assert only(w.report(), "bce-on-probabilities").affected == 1


@pytest.mark.parametrize(
    ("dtype", "z", "saturates"),
    [
        # torch computes 1 / (1 + exp(-z)): 1 + exp(-z) rounds to 1 once exp(-z) is under
        # half the spacing above 1, 2**-53 in float64 (z > 36.7), 2**-24 in float32
        # (z > 16.6); bfloat16 and float16 round the float32 result (spacing below 1:
        # 2**-8 and 2**-11, so 1 once 1 - sigmoid(z) < 2**-9 / 2**-12).
        ("float64", 20.0, False),  # exp(-20) = 2.1e-9
        ("float64", 40.0, True),  # exp(-40) = 4.2e-18 < 1.1e-16
        ("float32", 16.0, False),  # exp(-16) = 1.1e-7 > 6.0e-8
        ("float32", 17.0, True),  # exp(-17) = 4.1e-8 < 6.0e-8
        ("bfloat16", 6.0, False),  # 1 - sigmoid(6) = 2.5e-3 > 2**-9 = 1.95e-3
        ("bfloat16", 7.0, True),  # 9.1e-4 < 1.95e-3
        ("float16", 8.0, False),  # 3.4e-4 > 2**-12 = 2.4e-4
        ("float16", 9.0, True),  # 1.2e-4 < 2.4e-4
    ],
)
def test_saturation_threshold_per_dtype(dtype, z, saturates, device):
    torch_dtype = getattr(torch, dtype)
    t = torch.tensor([z], dtype=torch_dtype, device=device)
    y = torch.tensor([0.0], dtype=torch_dtype, device=device)
    assert (torch.sigmoid(t).item() == 1.0) is saturates
    with watch(full=True, warn=False) as w:
        F.binary_cross_entropy(torch.sigmoid(t), y)
    kinds = {f.kind for f in w.report().findings}
    assert ("bce-on-probabilities" in kinds) is saturates


def test_logits_path_reports_nothing(device):
    z = torch.tensor([20.0, -50.0, 300.0], device=device, requires_grad=True)
    y = torch.tensor([0.3, 1.0, 0.0], device=device)
    with watch(full=True, warn=False) as w:
        F.binary_cross_entropy_with_logits(z, y).backward()
        torch.log_softmax(torch.tensor([[0.0, -104.0]], device=device), dim=1)
        F.logsigmoid(z)
    assert w.report().findings == []


def test_log_of_softmax_104_below_the_max(device):
    # float32 exp(-104) = 6.8e-46 is below the smallest subnormal 1.4e-45: softmax is 0.
    x = torch.tensor([[3.0, 3.0 - 104.0, 1.0]], device=device)
    with watch(full=True, warn=False) as w:
        out = torch.log(F.softmax(x, dim=1))
    assert math.isinf(out[0, 1].item())
    f = only(w.report(), "log-of-softmax")
    assert f.code == "LGL010" and f.affected == 1 and f.counts["neg_inf"] == 1
    assert f.worst == 104.0


def test_log_of_one_minus_sigmoid_uses_the_negated_logits():
    z = torch.tensor([-30.0, 30.0, 0.0])  # 1 - sigmoid: 1 (lost digits), 0 (-inf), 0.5
    with watch(full=True, warn=False) as w:
        torch.log(1 - torch.sigmoid(z))
    f = only(w.report(), "log-of-sigmoid")
    assert f.code == "LGL011"
    assert f.counts == {"neg_inf": 1, "lost_digits": 1} and f.worst == 30.0


def test_nll_on_softmax_and_cross_entropy_on_softmax():
    x = torch.randn(5, 3)
    t = torch.tensor([0, 1, 2, 0, 1])
    with watch(full=True, warn=False) as w:
        F.nll_loss(torch.softmax(x, 1), t)
        nn.CrossEntropyLoss()(nn.Softmax(dim=1)(x), t)
        F.nll_loss(F.log_softmax(x, 1), t)  # right: not reported
        F.cross_entropy(x, t)
    report = w.report()
    assert only(report, "nll-on-probabilities").code == "LGL020"
    assert only(report, "nll-on-probabilities").affected == 5
    assert only(report, "cross-entropy-on-softmax").code == "LGL021"
    assert len(report.findings) == 2


@pytest.mark.parametrize(
    ("expr", "kind", "code"),
    [
        (lambda x: 1 / (1 + torch.exp(-x)), "hand-written-sigmoid-overflow", "LGL030"),
        (lambda x: torch.log(1 + torch.exp(-x)), "hand-written-softplus-overflow", "LGL031"),
        (lambda x: torch.log1p(torch.exp(-x)), "hand-written-softplus-overflow", "LGL031"),
        (lambda x: torch.log(torch.exp(-x).sum()), "hand-written-logsumexp-overflow", "LGL032"),
    ],
)
def test_hand_written_exp_overflow(expr, kind, code, device):
    # float32 exp overflows above log(3.4e38) = 88.72: exp(89) = inf, exp(88) is finite.
    x = torch.tensor([-89.0, -88.0, 1.0], device=device)
    with watch(full=True, warn=False) as w:
        expr(x)
    f = only(w.report(), kind)
    assert f.code == code and f.counts["overflow"] == 1 and f.worst == 89.0
    with watch(full=True, warn=False) as w:
        expr(x[1:])
    assert w.report().findings == []


def test_bfloat16_loss_resolution_at_36(device):
    loss_value = torch.tensor(36.0, dtype=torch.bfloat16, device=device)
    with watch(full=True, warn=False) as w:
        (loss_value.clone().requires_grad_() * 1).backward()
    f = only(w.report(), "loss-resolution")
    # bfloat16 keeps 8 significant bits: in [32, 64) the grid is 2**(5 - 7) = 0.25 wide.
    assert f.code == "LGW100" and f.worst == pytest.approx(0.25 / 36)
    with watch(full=True, warn=False) as w:  # float32 losses are fine
        (torch.tensor(36.0, device=device, requires_grad=True) * 1).backward()
    assert w.report().findings == []


def test_autocast_cpu_bfloat16_upcast_and_early_saturation():
    torch.manual_seed(0)
    lin = nn.Linear(4, 1)
    x = torch.randn(32, 4) * 10
    y = torch.zeros(32)
    with watch(full=True, warn=False) as w, torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lin(x).squeeze(1)
        p = torch.sigmoid(logits)
        loss = F.binary_cross_entropy(p, y)
    assert p.dtype == torch.bfloat16 and loss.dtype == torch.float32
    report = w.report()
    up = only(report, "autocast-upcast")
    assert up.code == "LGW110" and up.affected == 32 and "bfloat16" in up.note
    expected = int((p.detach() == 1).sum())  # bfloat16 sigmoid is 1 above z ~ 6.2
    assert expected > 0
    assert only(report, "bce-on-probabilities").counts["saturated"] == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA autocast refuses BCE")
def test_cuda_autocast_refuses_bce():
    z = torch.randn(4, device="cuda")
    y = torch.rand(4, device="cuda")
    with (
        watch(full=True, warn=False) as w,
        torch.autocast("cuda"),
        pytest.raises(RuntimeError, match="autocast"),
    ):
        F.binary_cross_entropy(torch.sigmoid(z), y)
    f = only(w.report(), "autocast-refused")
    assert f.code == "LGL001" and "autocast" in f.note


def test_sampling_every_n_and_full():
    z = torch.tensor([20.0])
    y = torch.tensor([0.0])
    for options, checks in (({"every": 4}, 8 + 8), ({"full": True}, 40)):
        with watch(warn=False, **options) as w:
            for _ in range(40):
                F.binary_cross_entropy(torch.sigmoid(z), y)
        f = only(w.report(), "bce-on-probabilities")
        # every=4: the first 8 calls, then calls 12, 16, ..., 40
        assert (f.calls, f.checked, f.affected) == (40, checks, checks)


def test_adaptive_sampling_checks_first_calls_then_fewer():
    z = torch.tensor([20.0])
    y = torch.tensor([0.0])
    with watch(warn=False) as w:
        for _ in range(2000):
            F.binary_cross_entropy(torch.sigmoid(z), y)
    f = only(w.report(), "bce-on-probabilities")
    assert f.calls == 2000 and 8 + 2000 // 64 <= f.checked <= 2000


def test_warning_once_per_site_and_first_step():
    z = torch.tensor([0.0, 20.0], requires_grad=True)
    y = torch.tensor([0.0, 0.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with watch(full=True) as w:
            for step in range(10):
                loss = F.binary_cross_entropy(torch.sigmoid(z * min(step, 1)), y)
                line = line_here() - 1
                loss.backward()
                w.on_step()
    ours = [c for c in caught if issubclass(c.category, WatchWarning)]
    assert len(ours) == 1
    assert (
        ours[0].filename == __file__ and ours[0].lineno == line and "LGL001" in str(ours[0].message)
    )
    f = only(w.report(), "bce-on-probabilities")
    assert f.first_step == 1 and f.affected == 9  # step 0 has z * 0 = 0: nothing saturates


def test_decorator():
    @watch(full=True, warn=False)
    def train():
        F.binary_cross_entropy(torch.sigmoid(torch.tensor([20.0])), torch.tensor([0.0]))

    train()
    train()
    assert only(train.watcher.report(), "bce-on-probabilities").calls == 2


def _train(watched: bool) -> list[torch.Tensor]:
    torch.manual_seed(1234)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    x = torch.randn(64, 6) * 3
    y = (x[:, :1] > 0).float()
    criterion = nn.BCELoss()
    w = watch(full=True, warn=False)
    if watched:
        w.__enter__()
    try:
        for _ in range(30):
            opt.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            opt.step()
            w.on_step()
    finally:
        if watched:
            w.__exit__(None, None, None)
            assert w.report().findings  # it saw the saturation it must not alter
    return [p.detach().clone() for p in model.parameters()]


def test_watch_changes_no_value_or_gradient():
    plain = _train(False)
    watched = _train(True)
    for a, b in zip(plain, watched):
        assert torch.equal(a, b)


def test_no_tensor_outlives_its_step():
    model = nn.Linear(8, 1)
    x = torch.randn(16, 8) * 100
    y = torch.zeros(16, 1)
    with watch(full=True, warn=False) as w:
        z = model(x)
        p = torch.sigmoid(z)
        refs = [weakref.ref(z), weakref.ref(p)]
        F.binary_cross_entropy(p, y).backward()
        del z, p
        gc.collect()
        assert all(r() is None for r in refs)
        assert len(w._mode.prov) == 0
    assert only(w.report(), "bce-on-probabilities").affected > 0


def test_report_text_json_and_rich(tmp_path):
    import io
    import json

    with watch(full=True, warn=False) as w:
        F.binary_cross_entropy(torch.sigmoid(torch.tensor([20.0, 1.0])), torch.tensor([0.0, 1.0]))
    report = w.report()
    data = json.loads(report.to_json())
    assert data["findings"][0]["code"] == "LGL001" and data["findings"][0]["affected"] == 1
    buf = io.StringIO()
    report.print(buf)  # not a terminal: plain lines, whole numbers
    assert "affected 1 (saturated 1" in buf.getvalue()
    assert f"{os.path.relpath(__file__)}:" in buf.getvalue()  # relative to the working dir


def test_bad_options():
    with pytest.raises(ValueError, match="every"):
        watch(every=0)


def test_rich_table_on_a_terminal_escapes_user_text(monkeypatch):
    import io

    monkeypatch.setenv("COLUMNS", "200")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with watch(full=True, warn=False) as w:
        F.binary_cross_entropy(torch.sigmoid(torch.tensor([20.0])), torch.tensor([0.0]))
    report = w.report()
    report.findings[0].file = "[bold]odd[/bold].py"  # markup in a user's path stays text
    out = Terminal()
    report.print(out)
    text = out.getvalue()
    assert "LGL001" in text and "[bold]odd" in text
