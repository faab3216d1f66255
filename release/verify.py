"""The verify step as both command lines run it: optionally download the release, then check it.

``VerifySettings`` is the one settings object that ``invoke verify`` (from Invoke's config) and
the operator's ``u2netp-mirror verify`` (from its options) build; ``run_verify`` does the rest
and reports through a ``say`` callback, one line per step and per check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.reporting import Indented, Reporter
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
    # Fail a release without a signed evaluation that passed the promotion gate.
    require_evaluation: bool = False
    # Download this release into dist first (through a staging directory); None: check dist as it is.
    target: ReleaseTarget | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        dist: str | Path,
        repo: str | None = None,
        tag: str | None = None,
        api_url: str | None = None,
        identity: str | None = None,
        identity_regexp: str | None = None,
        issuer: str | None = None,
        staging: bool = False,
        trust_config: str | Path | None = None,
        offline: bool = False,
        pins: UpstreamPin | None = None,
        allow_unpinned: bool = False,
        provenance: bool = True,
        require_evaluation: bool = False,
        timeout: float | None = None,
    ) -> VerifySettings:
        """From the ``u2netp`` config, the options winning (twine-style: one settings object for
        both command lines).  With ``repo`` or ``tag`` the release is downloaded first."""
        from mirror.config import check_config

        check_config(config)
        target = ReleaseTarget.from_config(config, repo=repo, tag=tag, api_url=api_url) if repo or tag else None
        # Files already in dist: the configured release (and CI's repository) still name the signer.
        signer_repo = target.repo if target else config["release"]["repo"] or os.environ.get("GITHUB_REPOSITORY")
        signer_tag = target.tag if target else config["release"]["tag"]
        return cls(
            dist=Path(dist),
            expected=ExpectedSigner.from_config(
                config["sigstore"],
                identity=identity,
                identity_regexp=identity_regexp,
                issuer=issuer,
                repo=signer_repo or None,
                tag=signer_tag or None,
            ),
            instance=SigstoreInstance.from_config(
                config["sigstore"], staging=staging, trust_config=trust_config, offline=offline
            ),
            pins=pins or UpstreamPin.from_config(config["pin"]),
            allow_unpinned=allow_unpinned,
            provenance=provenance,
            require_evaluation=require_evaluation,
            target=target,
            retry=RetryPolicy.from_config(config["github"], timeout),
        )


def show_check(check: Check) -> str:
    return f"  {'WARN' if check.warning else 'ok':<4}  {check.name:<42} {check.detail}"


def verdict(checks: list[Check]) -> str:
    if warned := [check.name for check in checks if check.warning]:
        return f"passed, WITH WARNINGS: {', '.join(warned)} (see WARN above)"
    return "all checks passed"


def run_verify(settings: VerifySettings, reporter: Reporter) -> list[Check]:
    """Check the release files (downloaded first if ``settings.target``); raise at the first failure."""

    def check(directory: Path) -> list[Check]:
        reporter.line(f"verify: against {settings.instance.label}, signer {settings.expected.label}")
        return verify_release(
            directory,
            settings.expected,
            settings.instance,
            settings.pins,
            allow_unpinned=settings.allow_unpinned,
            provenance=settings.provenance,
            require_evaluation=settings.require_evaluation,
            on_check=lambda passed: reporter.line(show_check(passed)),
        )

    if settings.target is None:
        reporter.line(f"verify: {settings.dist}")
        return check(settings.dist)

    from .download import fetch_verified

    target = settings.target
    details = Indented(reporter)
    client = GitHubClient.for_target(target, settings.retry, details)
    reporter.line(
        f"verify: downloading release {target.tag} of {target.repo}; it moves into {settings.dist} once verified"
    )
    return fetch_verified(target, settings.dist, client, check, provenance=settings.provenance, reporter=details)
