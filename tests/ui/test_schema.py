"""compare's JSON follows its shipped schema, with one encoding of non-finite numbers."""

from __future__ import annotations

import json
import math

import pytest

jsonschema = pytest.importorskip("jsonschema")

import logitlab  # noqa: E402
from logitlab.schemas import load  # noqa: E402

CASES = [
    {},
    {"logits": [20, 20]},
    {"logits": [math.inf, -math.inf, 0.0], "targets": [1.0, 0.3, 0.5], "reduction": "none"},
    {"logits": [1, 2], "targets": [1, 0], "pos_weight": [3.0], "dtype": "bfloat16"},
    {"logits": [100, 100], "targets": [0, 0], "weight": [0, 1], "reduction": "sum"},
    {"logits": [11], "targets": [1], "dtype": "float16", "frameworks": ["all"]},
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_compare_json_matches_its_schema(kwargs: dict) -> None:
    payload = logitlab.compare(**kwargs).to_dict()
    text = json.dumps(payload, allow_nan=False)  # strict JSON: no bare NaN or Infinity
    jsonschema.validate(json.loads(text), load("compare"))


def test_non_finite_numbers_are_strings() -> None:
    payload = logitlab.compare(logits=[math.inf], targets=[0.3], reduction="none").to_dict()
    assert payload["inputs"]["logits"] == ["Infinity"]
    rows = {r["name"]: r for r in payload["rows"]}
    # exact: (1 - 0.3) * softplus(inf) = inf; the logits path returns it
    assert rows["torch.logits"]["value"] == ["Infinity"]
    assert payload["exact"]["value"] == ["Infinity"]


def test_schema_catches_a_wrong_field() -> None:
    payload = logitlab.compare().to_dict()
    payload["rows"][0]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, load("compare"))


def test_audit_json_matches_its_schema() -> None:
    from logitlab.ui.reports import to_json

    result = logitlab.audit(
        formulations=["torch.logits", "torch.naive", "sklearn.log_loss"],
        dtypes=["float16"],
        targets=[0.0, 0.3, 1.0],
    )
    payload = json.loads(to_json(result))
    jsonschema.validate(payload, load("audit"))
    text = json.dumps(payload)
    # one encoding of non-finite numbers: "Infinity", "NaN" (never "inf" or "nan" values)
    assert ': "inf"' not in text and ': "nan"' not in text and ': "-inf"' not in text
    assert payload["breakpoints"] and all(b["dtype"] == "float16" for b in payload["breakpoints"])
