"""Shared fixtures: the upstream-shaped checkout is built once per session, copied per test."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mirror.fixture import Fixture, build_fixture


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A skipped test proves nothing and CI must not pass on one: report it as a failure.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped tests are not allowed here: {report.longrepr}"


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("pristine") / "U-2-Net")


@pytest.fixture
def checkout(pristine: Fixture, tmp_path: Path) -> Fixture:
    """A private copy of the fixture checkout that a test may modify."""
    root = tmp_path / "U-2-Net"
    shutil.copytree(pristine.root, root, symlinks=True)
    return replace(pristine, root=root, checkpoint=root / pristine.checkpoint.relative_to(pristine.root))


@pytest.fixture(scope="session")
def sigstore_stack():
    """A real Sigstore stack (OIDC, Fulcio, CT, Rekor v1) on 127.0.0.1 for the whole session."""
    from loopback.sigstore import SigstoreStack

    stack = SigstoreStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def trust_config(sigstore_stack, tmp_path_factory) -> Path:
    import json

    path = tmp_path_factory.mktemp("sigstore") / "trust_config.json"
    path.write_text(json.dumps(sigstore_stack.trust_config()))
    return path


@pytest.fixture(scope="session")
def exported_dist(pristine, tmp_path_factory) -> Path:
    """dist/ with a real ONNX and manifest exported from the fixture (unsigned); copy before changing."""
    from mirror.manifest_step import run_manifest
    from mirror.pipeline import run_export
    from tests.helpers import settings_for

    settings = settings_for(pristine, tmp_path_factory.mktemp("exported") / "dist")
    run_manifest(settings, export=run_export(settings))
    return settings.dist


@pytest.fixture
def dist(exported_dist, tmp_path) -> Path:
    """A private copy of the exported dist/ that a test may sign or tamper with."""
    copy = tmp_path / "dist"
    shutil.copytree(exported_dist, copy)
    return copy


@pytest.fixture
def pins(pristine):
    """The audited pins the tests' verifier holds releases to: the fixture's, as configured pins."""
    from tests.helpers import audited_pins

    return audited_pins(pristine)


@pytest.fixture
def instance(trust_config):
    from release.instance import SigstoreInstance

    return SigstoreInstance(trust_config=trust_config)


@pytest.fixture
def signed(dist, instance, sigstore_stack):
    """A private dist/ signed by the release workflow's identity on the loopback stack."""
    from release.signing import sign_release
    from tests.helpers import RELEASE_IDENTITY, signer_for

    sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    return dist


GITHUB_TOKEN = "ghs_loopbackTestToken0123456789abcdefXYZ"


@pytest.fixture
def github():
    """A fresh loopback GitHub Releases API per test."""
    from loopback.github import GitHubServer

    server = GitHubServer(token=GITHUB_TOKEN).start()
    yield server
    server.stop()
