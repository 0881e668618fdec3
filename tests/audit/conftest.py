from __future__ import annotations

import pytest

from logitlab.analysis.audit import AuditResult, audit


@pytest.fixture(scope="session")
def small_audit() -> AuditResult:
    """A quick audit: torch's paths (and NumPy's) on float16 and float32, 400 logits."""
    return audit(
        "bce",
        formulations=["torch.probabilities", "torch.logits", "numpy.naive"],
        dtypes=["float16", "float32"],
        points=400,
        seed=3,
    )
