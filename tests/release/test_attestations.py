"""GitHub artifact attestations end to end: the loopback Fulcio writes the GitHub Actions
extensions real Fulcio derives from the token, verify holds the source repository and ref to the
expected workflow, and attach stores the provenance in the repository's attestations, once."""

from __future__ import annotations

import base64
import json

import pytest

from release.attach import attach_release
from release.checks import verify_release
from release.errors import VerificationFailed
from release.github import Clock, GitHubClient
from release.signing import sign_release
from release.target import ReleaseTarget
from tests.conftest import GITHUB_TOKEN
from tests.helpers import ONNX, PROVENANCE, RELEASE_IDENTITY, signer_for

pytestmark = pytest.mark.slow

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-v1.0.0"


def attach(github, dist, instance, pins):
    client = GitHubClient(api_url=github.url, repo=REPO, token=GITHUB_TOKEN, clock=Clock(sleep=lambda _: None))
    target = ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=GITHUB_TOKEN)
    return attach_release(dist, target, signer_for(), instance, client, pins=pins)


def test_verify_checks_the_source_repository_and_ref_extensions(signed, instance, pins):
    checks = {check.name: check.detail for check in verify_release(signed, signer_for(), instance, pins)}
    assert checks["source repository"] == (
        f"https://github.com/{REPO} at refs/tags/{TAG}, as the certificate's GitHub extensions say"
    )


@pytest.mark.parametrize(("claim", "value"), [("repository", "evil/fork"), ("ref", "refs/heads/main")])
def test_a_certificate_from_another_repository_or_ref_is_refused(dist, instance, pins, sigstore_stack, claim, value):
    # The SAN is the release workflow, but the run was elsewhere (as with a reusable workflow).
    token = sigstore_stack.token(RELEASE_IDENTITY, **{claim: value})
    sign_release(dist, instance, token, expected=signer_for())
    with pytest.raises(VerificationFailed, match="source repository") as caught:
        verify_release(dist, signer_for(), instance, pins)
    assert value in str(caught.value)  # what the certificate says, beside what was expected


def test_attach_stores_the_provenance_as_an_attestation_once(github, signed, instance, pins):
    attach(github, signed, instance, pins)
    (stored,) = github.attestations_stored()
    ours = json.loads((signed / PROVENANCE).read_text())
    assert stored["dsseEnvelope"] == ours["dsseEnvelope"]
    statement = json.loads(base64.b64decode(stored["dsseEnvelope"]["payload"]))
    onnx_sha256 = next(s["digest"]["sha256"] for s in statement["subject"] if s["name"] == ONNX)
    client = GitHubClient(api_url=github.url, repo=REPO, token=None, clock=Clock(sleep=lambda _: None))
    assert [b["dsseEnvelope"] for b in client.attestations_for(onnx_sha256)] == [ours["dsseEnvelope"]]
    attach(github, signed, instance, pins)  # a re-run stores nothing twice
    assert len(github.attestations_stored()) == 1
    assert client.attestations_for("0" * 64) == []


def test_a_token_without_attestations_write_leaves_the_release_a_draft(github, signed, instance, pins):
    from mirror.errors import RemoteError

    github.attestations_forbidden = True
    with pytest.raises(RemoteError, match="attestation"):
        attach(github, signed, instance, pins)
    (release,) = github.releases.values()
    assert release.draft  # nothing is published without its attestation
    github.attestations_forbidden = False
    assert attach(github, signed, instance, pins).published
