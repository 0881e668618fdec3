"""Shared test settings.

In CI (``CI`` set) hypothesis runs derandomized: the same examples every run, so a red
build means a change broke something, not that a new random example was drawn.  Local
runs keep exploring with fresh examples (and remember failures in ``.hypothesis/``).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
