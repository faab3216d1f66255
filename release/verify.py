"""The verify step as both command lines run it: optionally download the release, then check it.

``VerifySettings`` is the one settings object that ``invoke verify`` (from Invoke's config) and
the operator's ``u2netp-mirror verify`` (from its options) build; ``run_verify`` does the rest
and reports through a ``say`` callback, one line per step and per check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mirror.settings import UpstreamPin

from .checks import Check, ExpectedSigner, verify_release
from .github import GitHubClient, RetryPolicy
from .instance import SigstoreInstance
from .target import ReleaseTarget


@dataclass(frozen=True)
class VerifySettings:
    dist: Path
    expected: ExpectedSigner
    instance: SigstoreInstance
    pins: UpstreamPin
    allow_unpinned: bool = False
    # False only for releases made before the signed provenance (u2netp-mirror 0.2.0).
    provenance: bool = True
    # Download this release into dist first (through a staging directory); None: check dist as it is.
    target: ReleaseTarget | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def show_check(check: Check) -> str:
    return f"  {'WARN' if check.warning else 'ok':<4}  {check.name:<42} {check.detail}"


def verdict(checks: list[Check]) -> str:
    if any(check.warning for check in checks):
        return "passed, WITH WARNINGS: not the audited model"
    return "all checks passed"


def run_verify(settings: VerifySettings, say: Callable[[str], None]) -> list[Check]:
    """Check the release files (downloaded first if ``settings.target``); raise at the first failure."""

    def check(directory: Path) -> list[Check]:
        say(f"verify: against {settings.instance.label}, signer {settings.expected.label}")
        return verify_release(
            directory,
            settings.expected,
            settings.instance,
            settings.pins,
            allow_unpinned=settings.allow_unpinned,
            provenance=settings.provenance,
            on_check=lambda passed: say(show_check(passed)),
        )

    if settings.target is None:
        say(f"verify: {settings.dist}")
        return check(settings.dist)

    from .download import fetch_verified
    from .progress import transfer_progress

    target = settings.target
    client = GitHubClient(
        api_url=target.api_url,
        repo=target.repo,
        token=target.token,
        retry=settings.retry,
        notify=lambda line: say(f"  {line}"),
    )
    say(f"verify: downloading release {target.tag} of {target.repo}; it moves into {settings.dist} once verified")
    with transfer_progress("download") as progress:
        return fetch_verified(
            target,
            settings.dist,
            client,
            check,
            progress,
            provenance=settings.provenance,
            report=lambda line: say(f"  {line}"),
        )
