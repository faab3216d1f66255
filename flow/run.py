"""``run_release``: export -> manifest -> [evaluate] -> sign -> attach, stopping at the first failure.

A re-run converges: export gives the same bytes, sign keeps bundles that still verify, and
attach skips what is already on the release.  A dry run exports into a temporary directory
(every input is checked) and changes nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mirror.errors import InputError
from mirror.reporting import Indented, Reporter

from .settings import ReleaseSettings


@dataclass(frozen=True)
class ReleaseResult:
    dry_run: bool
    export: Any = None  # mirror.pipeline.ExportResult
    signed: tuple[Any, ...] = ()  # release.signing.SignedFile, one per bundle
    attach: Any = None  # release.attach.AttachResult


def report_signed(signed: list[Any], reporter: Reporter) -> None:
    """One line per bundle: kept or new, who signed, and the Rekor entry."""
    for item in signed:
        state = "kept (already signed)" if item.kept else "signed and verified"
        who = f"{item.signer.identity} ({item.signer.issuer})"
        reporter.line(f"{item.bundle}: {state}; {who}, Rekor log index {item.log_index}")


class NotPromoted(InputError):
    """The promotion gate did not promote the new ONNX: nothing is signed or published."""


def _evaluate(settings: ReleaseSettings, reporter: Reporter) -> Path:
    """The promotion gate on the ONNX just exported; its report, if the gate promoted it."""
    from evaluation.run import evaluate

    evaluation = replace(settings.evaluation, candidate=settings.export.onnx_path)
    reporter.line(f"{settings.label}: evaluate (the promotion gate): {evaluation.images}")
    verdict = evaluate(evaluation, Indented(reporter))["verdict"]
    Indented(reporter).line(f"evaluate: {verdict['summary']}")
    if not verdict["promoted"]:
        raise NotPromoted(
            f"{evaluation.out / 'evaluation.json'}: {verdict['summary']}; nothing was signed or published"
        )
    return evaluation.out / "evaluation.json"


def run_release(settings: ReleaseSettings, reporter: Reporter, dry_run: bool = False) -> ReleaseResult:
    """Run the release; raise the first step's ``MirrorError`` (nothing after it runs)."""
    # torch, onnx and sigstore load only now: a wrong option has failed already.
    from mirror.manifest_step import run_manifest
    from mirror.pipeline import run_export
    from release.attach import attach_release
    from release.github import GitHubClient
    from release.signing import sign_release

    details = Indented(reporter)
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="u2netp-mirror-dry-run-") as scratch:
            trial = replace(settings.export, dist=Path(scratch))
            reporter.line(
                f"{settings.label}: dry run: export and manifest into a temporary directory; dist is not touched"
            )
            run_manifest(trial, details, export=run_export(trial, details))
        export = settings.export
        would = f"would write {export.onnx_path} and {export.manifest_path}, sign both, then attach"
        reporter.line(f"{settings.label}: dry run: {would}")
        return ReleaseResult(dry_run=True)
    reporter.line(f"{settings.label}: export")
    exported = run_export(settings.export, details)
    reporter.line(f"{settings.label}: manifest")
    run_manifest(settings.export, details, export=exported)
    report = _evaluate(settings, reporter) if settings.evaluation is not None else None
    reporter.line(f"{settings.label}: sign")
    signed = sign_release(
        settings.export.dist,
        settings.instance,
        settings.identity_token,
        expected=settings.expected,
        evaluation_report=report,
    )
    report_signed(signed, details)
    reporter.line(f"{settings.label}: attach")
    attached = attach_release(
        settings.export.dist,
        settings.target,
        settings.expected,
        settings.instance,
        GitHubClient.for_target(settings.target, settings.retry, details),
        pins=settings.pins,
        allow_unpinned=settings.allow_unpinned,
        draft=settings.draft,
        replace=settings.replace,
        reporter=details,
    )
    return ReleaseResult(dry_run=False, export=exported, signed=tuple(signed), attach=attached)
