"""The evaluation's expected failures, under the project's one base."""

from __future__ import annotations

from mirror.errors import MirrorError


class EvaluationError(MirrorError):
    """A model or an image set that cannot be evaluated; the message says which and why."""
