"""The evaluation's expected failures, under the project's one base."""

from __future__ import annotations

from mirror.errors import InputError, UsageError


class EvaluationError(InputError):
    """A model or an image set that cannot be evaluated; the message says which and why."""


class EvaluationUsageError(EvaluationError, UsageError):
    """An evaluation option that is out of range (exit status 2)."""
