"""logitlab: see, measure and fix what floating point does to probabilities, logits and losses."""

from logitlab._version import __version__

__all__ = ["__version__"]
