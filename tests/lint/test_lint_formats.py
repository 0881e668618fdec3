"""Every number a message quotes is derived in ``_formats``; here each one is checked
against values worked out independently with NumPy (nextafter, float32 arithmetic) and
mpmath, and the messages are checked to quote them and to fit the file."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, lint_source
from logitlab.lint._formats import FLOAT16, FLOAT32, FLOAT64, Format, approx

ALL = Options(select=frozenset(c.code for c in CODES))
NP = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


@pytest.mark.parametrize("fmt", [FLOAT16, FLOAT32, FLOAT64], ids=lambda f: f.name)
def test_one_minus_eps_boundary(fmt: Format) -> None:
    t = NP[fmt.name]
    one = t(1)
    eps = t(fmt.one_minus_eps_is_one)
    assert one - eps == one  # the tie rounds to 1.0 (even)
    bigger = np.nextafter(eps, one)
    assert one - bigger < one
    assert fmt.spacing_below_one == float(one - np.nextafter(one, t(0)))


@pytest.mark.parametrize("fmt", [FLOAT16, FLOAT32, FLOAT64], ids=lambda f: f.name)
def test_one_plus_eps_boundary(fmt: Format) -> None:
    t = NP[fmt.name]
    one = t(1)
    eps = t(fmt.one_plus_eps_is_one)
    assert one + eps == one
    assert one + np.nextafter(eps, one) > one


def test_float32_1_minus_5e_8_does_not_round_to_one() -> None:
    assert np.float32(1) - np.float32(5e-8) == np.float32(0.99999994)
    assert FLOAT32.one_minus_eps_is_one < 5e-8


@pytest.mark.parametrize("fmt", [FLOAT16, FLOAT32, FLOAT64], ids=lambda f: f.name)
def test_exp_overflow(fmt: Format) -> None:
    t = NP[fmt.name]
    finfo = np.finfo(t)
    assert fmt.log_max == pytest.approx(float(mpmath.log(mpmath.mpf(float(finfo.max)))), rel=1e-12)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(t(fmt.log_max * (1 + 1e-3))))
        assert np.isfinite(np.exp(t(fmt.log_max * (1 - 1e-3))))


@pytest.mark.parametrize("fmt", [FLOAT32, FLOAT64], ids=lambda f: f.name)
def test_exp_underflow(fmt: Format) -> None:
    t = NP[fmt.name]
    tiny = float(finfo_smallest_subnormal(t))
    assert fmt.log_underflow == pytest.approx(math.log(tiny) - math.log(2), rel=1e-12)
    # exact exp rounded to the format: 0 just below, the smallest subnormal just above
    below = mpmath.exp(mpmath.mpf(fmt.log_underflow) - mpmath.mpf("0.01"))
    above = mpmath.exp(mpmath.mpf(fmt.log_underflow) + mpmath.mpf("0.01"))
    assert t(float(below)) == 0 and t(float(above)) > 0


def finfo_smallest_subnormal(t: type) -> float:
    return float(np.nextafter(t(0), t(1)))


@pytest.mark.parametrize("fmt", [FLOAT16, FLOAT32, FLOAT64], ids=lambda f: f.name)
def test_sigmoid_rounds_to_one(fmt: Format) -> None:
    mpmath.mp.prec = 200
    t = NP[fmt.name]

    def rounded_sigmoid(z: float) -> object:
        exact = 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
        # round the 200-bit value to the format: via the neighbours of its float64 value
        return t(float(exact))

    z = fmt.sigmoid_is_one
    assert rounded_sigmoid(z + 1e-3) == 1
    assert rounded_sigmoid(z - 1e-2) < 1


def test_known_values_in_messages() -> None:
    assert approx(FLOAT32.sigmoid_is_one) == "17.3"
    assert approx(FLOAT64.sigmoid_is_one) == "37.4"
    assert approx(FLOAT32.log_max) == "88.7"
    assert approx(FLOAT64.log_max) == "710"


def _msg(source: str, code: str) -> str:
    found = [f for f in lint_source(source, "m.py", ALL) if f.code == code]
    assert found, f"no {code} in {lint_source(source, 'm.py', ALL)}"
    return found[0].message


BCE_NUMPY = """\
import numpy as np


def loss(p, y):
    q = np.clip(p, 1e-7, 1 - {eps})
    return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
"""


def test_no_rounding_note_for_5e_8_and_note_for_1e_8() -> None:
    msg = _msg(BCE_NUMPY.format(eps="5e-08"), "LGL040")
    assert "rounds to 1.0" not in msg
    msg = _msg(BCE_NUMPY.format(eps="1e-08"), "LGL040")
    assert "1 - 1e-08 rounds to 1.0 in float32 (" in msg and "float64 (" not in msg


def test_numpy_bce_gets_numpy_advice_and_both_dtypes() -> None:
    msg = _msg(BCE_NUMPY.format(eps="1e-7"), "LGL040")
    assert "np.logaddexp(0, z)" in msg and "binary_cross_entropy_with_logits" not in msg
    assert f"{approx(FLOAT32.sigmoid_is_one)} in float32" in msg
    assert f"{approx(FLOAT64.sigmoid_is_one)} in float64" in msg


def test_dtype_from_a_cast_one_line_before() -> None:
    source = """\
import numpy as np


def loss(p, y):
    p = p.astype(np.float64)
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
"""
    msg = _msg(source, "LGL040")
    assert "float32" not in msg and f"{approx(FLOAT64.sigmoid_is_one)} in float64" in msg


def test_log_sigmoid_in_tensorflow_file_gets_tf_advice() -> None:
    source = "import tensorflow as tf\n\n\ndef f(z):\n    return tf.math.log(tf.sigmoid(z))\n"
    msg = _msg(source, "LGL011")
    assert "tf.math.log_sigmoid" in msg and "F.logsigmoid" not in msg
