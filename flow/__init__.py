"""The release flow: export -> manifest -> sign -> attach, composed once.

``ReleaseSettings.from_config(config, **overrides)`` builds everything a release needs from the
``u2netp`` config and the command line's options; ``run_release(settings, reporter)`` runs it.
The ``release`` task, ``invoke demo``, the bench and the tests' fixtures all call these two,
so the flow is wired in one place (twine-style: one settings object for the CLI and library).
It sits above ``mirror`` (the export side) and ``release`` (signing, GitHub), which import
nothing of it.
"""

from __future__ import annotations

from .run import ReleaseResult, run_release
from .settings import ReleaseSettings

__all__ = ["ReleaseResult", "ReleaseSettings", "run_release"]
