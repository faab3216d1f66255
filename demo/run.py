"""``invoke demo``: the whole release, offline, on the embedded fixture.

export -> manifest -> evaluate -> sign -> attach -> verify --repo --tag, exactly as a release runs, against
the loopback Sigstore stack and GitHub server started here and stopped on the way out (Ctrl-C
included).  The fixture is an upstream-shaped stand-in with random weights, so its export is a
``demo`` build: attach publishes it only because the demo says ``allow_unpinned``, and verify,
holding it to the real audited pins, passes it with the warning an operator would see.  The
promotion gate runs on a small labelled set against "the model in use" (here an earlier export of
the same fixture), and its signed verdict is published and required by verify.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flow import ReleaseSettings, run_release
from loopback.github import GitHubServer
from loopback.sigstore import GITHUB_ISSUER, SigstoreStack
from mirror.atomic import write_bytes_atomic
from mirror.contract import OMS_NAME, ONNX_NAME, PROVENANCE_NAME
from mirror.fixture import build_fixture, write_labelled_set
from mirror.reporting import Reporter
from mirror.settings import ExportSettings, shipped_defaults
from release.assets import bundle_path
from release.checks import ExpectedSigner
from release.github import RetryPolicy
from release.instance import SigstoreInstance
from release.target import ReleaseTarget

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-demo"


@dataclass(frozen=True)
class DemoResult:
    release_dir: Path  # what a maintainer publishes
    verified_dir: Path  # what an operator keeps after `verify --repo --tag`
    release_url: str
    trust_dir: Path  # the loopback stack's trust root, kept so the release can be verified again
    identity: str  # the signer the release names
    issuer: str


def replay_commands(result: DemoResult) -> list[str]:
    """Commands that verify the demo release again after the demo's servers are gone.

    Offline: every check needs only the bundles and the trust root the demo left in
    ``trust_dir``.  ``gh`` needs GitHub's CLI, which this project does not install.
    """
    q = shlex.quote
    trust_config, trusted_root = q(str(result.trust_dir / TRUST_CONFIG)), q(str(result.trust_dir / TRUSTED_ROOT))
    onnx, release, verified = result.release_dir / ONNX_NAME, result.release_dir, result.verified_dir
    signer = f"--cert-identity {q(result.identity)} --cert-oidc-issuer {q(result.issuer)}"
    return [
        f"u2netp-mirror verify --dist {q(str(verified))} --trust-config {trust_config} {signer} "
        "--allow-unpinned --require-evaluation",
        f"python -m sigstore --trust-config {trust_config} verify identity "
        f"--bundle {q(str(bundle_path(onnx)))} {signer} {q(str(onnx))}",
        f"python -m model_signing verify sigstore {q(str(release))} --signature {q(str(release / OMS_NAME))} "
        f"--trust_config {trust_config} --identity {q(result.identity)} --identity_provider {q(result.issuer)}",
        f"gh attestation verify {q(str(onnx))} --bundle {q(str(release / PROVENANCE_NAME))} --repo {REPO} "
        f"--signer-workflow {REPO}/.github/workflows/release.yml --source-ref refs/tags/{TAG} "
        f"--deny-self-hosted-runners --custom-trusted-root {trusted_root}",
    ]


TRUST_CONFIG, TRUSTED_ROOT = "trust_config.json", "trusted_root.jsonl"


@contextmanager
def _servers(trust_dir: Path) -> Iterator[tuple[SigstoreStack, GitHubServer, Path]]:
    # Each server is stopped however the block ends (Ctrl-C or SIGTERM included), even one
    # interrupted while the other was still starting.
    with ExitStack() as running:
        stack = SigstoreStack()
        running.callback(stack.stop)
        stack.start()
        github = GitHubServer(token="ghs_demo" + "0" * 32, repo=REPO)
        running.callback(github.stop)
        github.start()
        # Kept beside the release: the stack's keys and certificates outlive its servers, so the
        # release can be verified again afterwards (`python -m sigstore --trust-config`,
        # model_signing's --trust_config; gh's --custom-trusted-root takes the root as JSON lines).
        config = stack.trust_config()
        trust_dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(trust_dir / TRUST_CONFIG, json.dumps(config, indent=2).encode("utf-8"))
        write_bytes_atomic(trust_dir / TRUSTED_ROOT, (json.dumps(config["trustedRoot"]) + "\n").encode("utf-8"))
        yield stack, github, trust_dir / TRUST_CONFIG


def _sizes(directory: Path) -> list[str]:
    return [f"  {path.name:<48} {path.stat().st_size:>10,} bytes" for path in sorted(directory.iterdir())]


def _verify(github: GitHubServer, trust_config: Path, verified_dir: Path, reporter: Reporter) -> None:
    from release.verify import VerifySettings, run_verify, verdict

    reporter.line("demo: verify --repo --tag, as an operator would, holding the release to the real audited pins")
    settings = VerifySettings.from_config(
        shipped_defaults()["u2netp"],
        dist=verified_dir,
        repo=REPO,
        tag=TAG,
        api_url=github.url,
        trust_config=trust_config,
        allow_unpinned=True,
        require_evaluation=True,
    )
    # Anonymous, as an operator of a public repository: a GITHUB_TOKEN in the environment is for
    # GitHub, never for the demo's loopback server.
    settings = replace(settings, target=ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url))
    reporter.line(f"demo: verify: {verdict(run_verify(settings, reporter))}")


def _evaluation_settings(export: ExportSettings, scratch: Path, out: Path, reporter: Reporter) -> Any:
    """The promotion gate's inputs: labelled scenes, and the model in use (an earlier export of the fixture)."""
    from flow.settings import evaluation_settings
    from mirror.pipeline import run_export

    reporter.line("demo: the model in use (an earlier export of the fixture) and labelled scenes for the gate")
    in_use = run_export(replace(export, dist=scratch / "in-use"))
    images, masks = write_labelled_set(scratch / "labelled")
    return evaluation_settings(shipped_defaults()["u2netp"], export, images, masks, in_use.onnx_path, out=out)


def run_demo(scratch: Path, dist: Path, reporter: Reporter) -> DemoResult:
    """Run the whole release in ``scratch`` (servers, fixture) and ``dist`` (its files)."""
    release_dir, verified_dir = dist / "release", dist / "verified"
    reporter.line(
        "demo: build the fixture: an upstream-shaped git checkout and a random checkpoint (not U2NETP's weights)"
    )
    fixture = build_fixture(scratch / "U-2-Net")
    defaults = shipped_defaults()["u2netp"]
    expected = ExpectedSigner.from_config(defaults["sigstore"], repo=REPO, tag=TAG)
    with _servers(dist / "trust") as (stack, github, trust_config):
        reporter.line(f"demo: Sigstore stack at {stack.url}, GitHub Releases API at {github.url} (loopback only)")
        export = ExportSettings(
            upstream=fixture.root,
            checkpoint=fixture.checkpoint,
            dist=release_dir,
            pin=fixture.pin,
            entrypoint="invoke demo",
        )
        evaluation = _evaluation_settings(export, scratch, dist / "evaluation", reporter)
        reporter.line(
            "demo: the release flow, as `invoke release` runs it: a demo build, so attach publishes it "
            "only because the demo allows an unpinned build"
        )
        settings = ReleaseSettings(
            export=export,
            target=ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=github.token),
            expected=expected,
            instance=SigstoreInstance(trust_config=trust_config),
            retry=RetryPolicy(timeout=30),
            pins=fixture.pin,
            # Keyless, as the tag's release workflow would sign.
            identity_token=stack.token(expected.identity or "", issuer=GITHUB_ISSUER),
            allow_unpinned=True,
            label="demo",
            evaluation=evaluation,
        )
        result = run_release(settings, reporter)
        _verify(github, trust_config, verified_dir, reporter)
    for title, directory in (("published", release_dir), ("downloaded and verified", verified_dir)):
        reporter.line(f"demo: {title}: {directory}")
        for line in _sizes(directory):
            reporter.line(line)
    return DemoResult(
        release_dir,
        verified_dir,
        result.attach.release_url,
        dist / "trust",
        expected.identity or "",
        expected.issuer,
    )


NEXT_STEPS = (
    "next, on the real model:",
    "  invoke fetch-upstream --dest ../U-2-Net      # the audited upstream commit",
    "  # put upstream's u2netp.pth at ../U-2-Net/saved_models/u2netp/u2netp.pth",
    "  invoke export && invoke manifest             # dist/u2netp_mirror_v1.onnx and its manifest",
    "  # publishing is the release workflow's job (docs/maintainer-guide.md); operators verify with:",
    "  u2netp-mirror verify --repo OWNER/REPO --tag TAG",
)
