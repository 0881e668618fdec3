"""The ground floor: floating-point formats, errors in ULPs, number formatting, validated inputs.

Everything else builds on these modules; they import no framework but NumPy (and
``ml_dtypes`` for bfloat16).  ``errors`` imports nothing at all, so the linter can use it.
"""
