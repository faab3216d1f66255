"""``invoke demo``: the whole release, offline, on the embedded fixture (an application of the
release flow against the loopback services, not a test double)."""

from __future__ import annotations

from .run import NEXT_STEPS, DemoResult, replay_commands, run_demo

__all__ = ["NEXT_STEPS", "DemoResult", "replay_commands", "run_demo"]
