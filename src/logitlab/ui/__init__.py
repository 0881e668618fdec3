"""Presentation: CLI commands and tables, audit reports and plots, the explorer page and widget.

These modules only present what :mod:`logitlab.analysis` returns; none computes a number.
"""
