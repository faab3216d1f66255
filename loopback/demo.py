"""``invoke demo``: the whole release, offline, on the embedded fixture.

export -> manifest -> sign -> attach -> verify --repo --tag, exactly as a release runs, against
the loopback Sigstore stack and GitHub server started here and stopped on the way out (Ctrl-C
included).  The fixture is an upstream-shaped stand-in with random weights, so its export is a
``demo`` build: attach publishes it only because the demo says ``allow_unpinned``, and verify,
holding it to the real audited pins, passes it with the warning an operator would see.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from mirror.fixture import Fixture, build_fixture
from mirror.manifest_step import run_manifest
from mirror.pipeline import run_export
from mirror.settings import ExportSettings, UpstreamPin, shipped_defaults
from release.checks import ExpectedSigner
from release.instance import SigstoreInstance

from .github import GitHubServer
from .sigstore import GITHUB_ISSUER, SigstoreStack

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-demo"
Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    release_dir: Path  # what a maintainer publishes
    verified_dir: Path  # what an operator keeps after `verify --repo --tag`
    release_url: str


@contextmanager
def _servers(scratch: Path) -> Iterator[tuple[SigstoreStack, GitHubServer, Path]]:
    # Each server is stopped however the block ends (Ctrl-C or SIGTERM included), even one
    # interrupted while the other was still starting.
    with ExitStack() as running:
        stack = SigstoreStack()
        running.callback(stack.stop)
        stack.start()
        github = GitHubServer(token="ghs_demo" + "0" * 32, repo=REPO)
        running.callback(github.stop)
        github.start()
        trust_config = scratch / "trust_config.json"
        trust_config.write_text(json.dumps(stack.trust_config()), encoding="utf-8")
        yield stack, github, trust_config


def _sizes(directory: Path) -> list[str]:
    return [f"    {path.name:<48} {path.stat().st_size:>10,} bytes" for path in sorted(directory.iterdir())]


def _indented(say: Say) -> Say:
    return lambda line: say(f"  {line}")


def _export(fixture: Fixture, release_dir: Path, say: Say) -> None:
    settings = ExportSettings(
        upstream=fixture.root,
        checkpoint=fixture.checkpoint,
        dist=release_dir,
        pin=fixture.pin,
        entrypoint="invoke demo",
    )
    say("demo: export")
    exported = run_export(settings, report=_indented(say))
    say("demo: manifest")
    run_manifest(settings, report=_indented(say), export=exported)


def _sign(
    stack: SigstoreStack, instance: SigstoreInstance, expected: ExpectedSigner, release_dir: Path, say: Say
) -> None:
    from release.signing import sign_release

    say("demo: sign the ONNX, the manifest and the provenance (keyless, as the tag's release workflow would)")
    token = stack.token(expected.identity or "", issuer=GITHUB_ISSUER)
    for signed in sign_release(release_dir, instance, token, expected=expected):
        say(f"  {signed.bundle.name}: signed by {signed.signer.identity}, Rekor log index {signed.log_index}")


def _attach(
    github: GitHubServer,
    instance: SigstoreInstance,
    expected: ExpectedSigner,
    fixture: Fixture,
    release_dir: Path,
    say: Say,
) -> str:
    from release.attach import attach_release
    from release.github import GitHubClient, RetryPolicy
    from release.target import ReleaseTarget

    say(f"demo: attach to release {TAG} of {REPO} (a demo build, so with allow_unpinned)")
    target = ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=github.token)
    client = GitHubClient(api_url=github.url, repo=REPO, token=github.token, retry=RetryPolicy(timeout=30))
    result = attach_release(
        release_dir, target, expected, instance, client, pins=fixture.pin, allow_unpinned=True, report=_indented(say)
    )
    return result.release_url


def _verify(
    github: GitHubServer, instance: SigstoreInstance, expected: ExpectedSigner, verified_dir: Path, say: Say
) -> None:
    from release.target import ReleaseTarget
    from release.verify import VerifySettings, run_verify, verdict

    say("demo: verify --repo --tag, as an operator would, holding the release to the real audited pins")
    settings = VerifySettings(
        dist=verified_dir,
        expected=expected,
        instance=instance,
        pins=UpstreamPin.from_config(shipped_defaults()["u2netp"]["pin"]),
        allow_unpinned=True,
        target=ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url),
    )
    say(f"demo: verify: {verdict(run_verify(settings, say))}")


def run_demo(scratch: Path, dist: Path, say: Say) -> DemoResult:
    """Run the whole release in ``scratch`` (servers, fixture) and ``dist`` (its files)."""
    release_dir, verified_dir = dist / "release", dist / "verified"
    say("demo: build the fixture: an upstream-shaped git checkout and a random checkpoint (not U2NETP's weights)")
    fixture = build_fixture(scratch / "U-2-Net")
    expected = ExpectedSigner.choose(
        identity=None,
        identity_regexp=None,
        issuer=None,
        repo=REPO,
        tag=TAG,
        defaults=shipped_defaults()["u2netp"]["sigstore"],
    )
    with _servers(scratch) as (stack, github, trust_config):
        say(f"demo: Sigstore stack at {stack.url}, GitHub Releases API at {github.url} (loopback only)")
        instance = SigstoreInstance(trust_config=trust_config)
        _export(fixture, release_dir, say)
        _sign(stack, instance, expected, release_dir, say)
        release_url = _attach(github, instance, expected, fixture, release_dir, say)
        _verify(github, instance, expected, verified_dir, say)
    for title, directory in (("published", release_dir), ("downloaded and verified", verified_dir)):
        say(f"demo: {title}: {directory}")
        for line in _sizes(directory):
            say(line)
    return DemoResult(release_dir, verified_dir, release_url)


NEXT_STEPS = (
    "next, on the real model:",
    "  invoke fetch-upstream --dest ../U-2-Net      # the audited upstream commit",
    "  # put upstream's u2netp.pth at ../U-2-Net/saved_models/u2netp/u2netp.pth",
    "  invoke export && invoke manifest             # dist/u2netp_mirror_v1.onnx and its manifest",
    "  # publishing is the release workflow's job (docs/maintainer-guide.md); operators verify with:",
    "  u2netp-mirror verify --repo OWNER/REPO --tag TAG",
)
