"""The promotion gate as release evidence: sign signs evaluate's verdict as an in-toto test-result
statement about the ONNX; verify checks it (and can require it); stock sigstore accepts it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from sigstore.models import Bundle
from sigstore.verify import Verifier, policy

from evaluation.run import EvaluationSettings, evaluate
from mirror.fixture import write_labelled_set
from release.checks import verify_release
from release.errors import SigningError, VerificationFailed
from release.evaluation import PREDICATE_TYPE
from release.signing import sign_release
from tests.helpers import (
    EVALUATION,
    EVALUATION_BUNDLE,
    GITHUB_ISSUER,
    MANIFEST,
    ONNX,
    RELEASE_IDENTITY,
    signer_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def report(signed, tmp_path):
    """evaluate's report on the signed dist's ONNX against the model in use (here: a copy of it)."""
    images, masks = write_labelled_set(tmp_path / "labelled")
    baseline = tmp_path / "in-use.onnx"
    shutil.copyfile(signed / ONNX, baseline)
    settings = EvaluationSettings(
        candidate=signed / ONNX, baseline=baseline, images=images, masks=masks, out=tmp_path / "evaluation"
    )
    assert evaluate(settings)["verdict"]["promoted"]
    return settings.out / "evaluation.json"


def _sign(dist, instance, sigstore_stack, report=None):
    return sign_release(
        dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for(), evaluation_report=report
    )


def test_a_promoted_evaluation_is_signed_released_and_verified(signed, report, instance, sigstore_stack, pins):
    signed_now = _sign(signed, instance, sigstore_stack, report)
    assert (signed / EVALUATION).read_bytes() == report.read_bytes()
    assert [item.kept for item in signed_now if item.bundle.name == EVALUATION_BUNDLE] == [False]
    bundle = Bundle.from_json((signed / EVALUATION_BUNDLE).read_bytes())
    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    _, payload = verifier.verify_dsse(bundle, policy.Identity(identity=RELEASE_IDENTITY, issuer=GITHUB_ISSUER))
    statement = json.loads(payload)
    assert statement["predicateType"] == PREDICATE_TYPE == "https://in-toto.io/attestation/test-result/v0.1"
    assert [subject["name"] for subject in statement["subject"]] == [ONNX]
    test_result = statement["predicate"]
    assert test_result["result"] == "pass" and test_result["failedTests"] == []
    assert any(test.startswith("upstream witness: 3 of upstream's saved maps") for test in test_result["passedTests"])
    assert [item["name"] for item in test_result["configuration"][:2]] == [EVALUATION, MANIFEST]
    checks = {check.name: check for check in verify_release(signed, signer_for(), instance, pins)}
    assert checks["evaluation"].detail.startswith("pass: promoted: every rule holds; against in-use.onnx")
    verify_release(signed, signer_for(), instance, pins, require_evaluation=True)
    # Signing again keeps the evaluation's bundle: the same statement, no new log entry.
    again = _sign(signed, instance, sigstore_stack)
    assert [item.kept for item in again if item.bundle.name == EVALUATION_BUNDLE] == [True]


def test_the_stock_sigstore_cli_accepts_it_against_the_onnx_only(
    signed, report, instance, sigstore_stack, trust_config
):
    _sign(signed, instance, sigstore_stack, report)
    args = [sys.executable, "-m", "sigstore", "--trust-config", str(trust_config), "verify", "identity"]
    args += ["--cert-identity", RELEASE_IDENTITY, "--cert-oidc-issuer", GITHUB_ISSUER]
    args += ["--bundle", str(signed / EVALUATION_BUNDLE)]
    accepted = subprocess.run([*args, str(signed / ONNX)], capture_output=True, text=True, timeout=120, check=False)
    assert accepted.returncode == 0, accepted.stderr
    refused = subprocess.run([*args, str(signed / MANIFEST)], capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0  # the statement is about the ONNX alone


def test_require_evaluation_fails_a_release_without_one(signed, instance, pins):
    checks = {check.name: check for check in verify_release(signed, signer_for(), instance, pins)}
    assert checks["evaluation"].detail.startswith("none in this release")
    with pytest.raises(VerificationFailed, match="carries no signed evaluation"):
        verify_release(signed, signer_for(), instance, pins, require_evaluation=True)


def test_a_changed_report_fails_verify(signed, report, instance, sigstore_stack, pins):
    _sign(signed, instance, sigstore_stack, report)
    document = json.loads((signed / EVALUATION).read_text())
    document["verdict"]["summary"] = "promoted: every rule holds (and then some)"
    (signed / EVALUATION).write_text(json.dumps(document))
    with pytest.raises(VerificationFailed, match=r"evaluation.*configuration"):
        verify_release(signed, signer_for(), instance, pins)
    (signed / EVALUATION).unlink()
    with pytest.raises(VerificationFailed, match="missing"):
        verify_release(signed, signer_for(), instance, pins)


def test_sign_refuses_a_report_that_did_not_promote_or_is_of_another_onnx(
    signed, report, instance, sigstore_stack, tmp_path
):
    document = json.loads(report.read_text())
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps({**document, "verdict": {**document["verdict"], "promoted": False}}))
    with pytest.raises(SigningError, match="the gate did not promote this ONNX"):
        _sign(signed, instance, sigstore_stack, failing)
    other = tmp_path / "other.json"
    candidate = {**document["inputs"]["candidate"], "sha256": "0" * 64}
    other.write_text(json.dumps({**document, "inputs": {**document["inputs"], "candidate": candidate}}))
    with pytest.raises(SigningError, match="evaluated an ONNX with sha256 0000"):
        _sign(signed, instance, sigstore_stack, other)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "u2netp-mirror-evaluation-v1"}')
    with pytest.raises(SigningError, match="not an evaluation report"):
        _sign(signed, instance, sigstore_stack, broken)
    assert not (signed / EVALUATION).exists() and not (signed / EVALUATION_BUNDLE).exists()
