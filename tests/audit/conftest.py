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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.slow`` tests (the brute-force scans) run when asked for: ``-m slow``
    or ``LOGITLAB_SLOW=1``; otherwise they are skipped, saying so."""
    import os

    if config.getoption("markexpr") or os.environ.get("LOGITLAB_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or LOGITLAB_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
