"""Invoke's entry point for this checkout: the tasks live in ``mirror.cli``.

They live in the package so that the ``u2netp-mirror`` console script, which operators
get from ``pip install u2netp-mirror`` without a checkout, runs the very same tasks.
"""

from mirror.cli import namespace

__all__ = ["namespace"]
