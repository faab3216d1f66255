"""Everything one release needs, built once from the config and the command line's options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.config import check_config
from mirror.settings import ExportSettings, UpstreamPin
from release.checks import ExpectedSigner
from release.github import RetryPolicy
from release.instance import SigstoreInstance
from release.target import ReleaseTarget


@dataclass(frozen=True)
class ReleaseSettings:
    export: ExportSettings
    target: ReleaseTarget
    expected: ExpectedSigner
    instance: SigstoreInstance
    retry: RetryPolicy
    # The pins attach holds the signed release to (the config's; a demo's are its fixture's).
    pins: UpstreamPin
    # None: $SIGSTORE_ID_TOKEN, then ambient CI credentials, then a browser on a terminal.
    identity_token: str | None = field(default=None, repr=False)
    draft: bool = False
    replace: bool = False
    # Publish a build that is not the audited model (marked as such); the demo's is a "demo" build.
    allow_unpinned: bool = False
    # What the progress lines start with: "release: export", or the demo's "demo: export".
    label: str = "release"
    # The promotion gate between manifest and sign (evaluation.run.EvaluationSettings; its
    # candidate is the export's ONNX): not promoted stops the release, promoted is signed and
    # published as release evidence.  None: no evaluation in this release.
    evaluation: Any = None

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        upstream: str | Path | None = None,
        checkpoint: str | Path | None = None,
        dist: str | Path | None = None,
        allow_unpinned: bool = False,
        tolerance: float | None = None,
        mean_tolerance: float | None = None,
        repo: str | None = None,
        tag: str | None = None,
        api_url: str | None = None,
        identity: str | None = None,
        identity_regexp: str | None = None,
        issuer: str | None = None,
        staging: bool = False,
        trust_config: str | Path | None = None,
        timeout: float | None = None,
        identity_token: str | None = None,
        draft: bool = False,
        replace: bool = False,
        entrypoint: str = "invoke release",
        evaluate_images: str | Path | None = None,
        evaluate_masks: str | Path | None = None,
        evaluate_baseline: str | Path | None = None,
    ) -> ReleaseSettings:
        """The release's settings; a bad option or config value fails here, before any work."""
        check_config(config)
        export = ExportSettings.from_config(
            config,
            upstream=upstream,
            checkpoint=checkpoint,
            dist=dist,
            tolerance=tolerance,
            mean_tolerance=mean_tolerance,
            allow_unpinned=bool(allow_unpinned),
            # A build that is not "audited" stops at the audit unless --allow-unpinned (dry run too).
            require_audited=True,
            entrypoint=entrypoint,
        )
        target = ReleaseTarget.from_config(config, repo=repo, tag=tag, api_url=api_url)
        evaluation = None
        if evaluate_images or evaluate_masks or evaluate_baseline:
            evaluation = evaluation_settings(config, export, evaluate_images, evaluate_masks, evaluate_baseline)
        return cls(
            export=export,
            target=target,
            expected=ExpectedSigner.from_config(
                config["sigstore"],
                identity=identity,
                identity_regexp=identity_regexp,
                issuer=issuer,
                repo=target.repo,
                tag=target.tag,
            ),
            instance=SigstoreInstance.from_config(config["sigstore"], staging=staging, trust_config=trust_config),
            retry=RetryPolicy.from_config(config["github"], timeout),
            pins=export.pin,
            identity_token=identity_token,
            draft=bool(draft),
            replace=bool(replace),
            allow_unpinned=bool(allow_unpinned),
            evaluation=evaluation,
        )


def evaluation_settings(
    config: Mapping[str, Any],
    export: ExportSettings,
    images: str | Path | None,
    masks: str | Path | None,
    baseline: str | Path | None,
    out: Path | None = None,
) -> Any:
    """The release's evaluation: the export's ONNX against ``baseline`` on ``images``, into ``out``
    (default dist/evaluation, where `invoke evaluate` writes)."""
    from mirror.errors import UsageError

    if not images or not baseline:
        raise UsageError(
            "--evaluate-images and --evaluate-baseline go together: the gate compares the new ONNX with the "
            "model in use on labelled images"
        )
    from evaluation.gate import Gate
    from evaluation.run import EvaluationSettings

    return EvaluationSettings(
        candidate=export.onnx_path,
        images=Path(images),
        masks=Path(masks) if masks else None,
        baseline=Path(baseline),
        out=out or export.dist / "evaluation",
        gate=Gate.from_config(config["evaluate"]["gate"]),
    )
