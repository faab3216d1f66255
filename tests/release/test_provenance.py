"""The signed provenance: an in-toto Statement (SLSA v1) over the release, and sign's identity check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sigstore import dsse
from sigstore.models import Bundle
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from release.attestation import BUILD_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, predicate
from release.checks import verify_release
from release.errors import VerificationFailed
from release.signing import sign_release
from tests.helpers import (
    FOR_RELEASE,
    GITHUB_ISSUER,
    LICENCE,
    MANIFEST,
    MODEL_CARD,
    MODEL_ID,
    OMS,
    ONNX,
    PROVENANCE,
    RELEASE_IDENTITY,
    fixture_pin_env,
    run_cli,
    signer_for,
    without_ambient_credentials,
)

MALLORY = "https://github.com/mallory/fork/.github/workflows/release.yml@refs/tags/u2netp-mirror-v1.0.0"
ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "example/u2netp-mirror",
    "GITHUB_WORKFLOW_REF": "example/u2netp-mirror/.github/workflows/release.yml@refs/tags/u2netp-mirror-v1.0.0",
    "GITHUB_RUN_ID": "123456",
    "GITHUB_RUN_ATTEMPT": "2",
}


def statement_of(path: Path) -> dict:
    envelope = json.loads(path.read_text())["dsseEnvelope"]
    assert envelope["payloadType"] == PAYLOAD_TYPE
    import base64

    return json.loads(base64.b64decode(envelope["payload"]))


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_statement_names_every_file_and_says_how_they_were_made(signed):
    statement = statement_of(signed / PROVENANCE)
    manifest = json.loads((signed / MANIFEST).read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE == "https://slsa.dev/provenance/v1"
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == {
        name: sha256(signed / name) for name in (ONNX, MANIFEST, LICENCE, MODEL_CARD)
    }
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == BUILD_TYPE
    commit = manifest["upstream"]["commit"]
    assert build["externalParameters"]["upstream"] == {"repo": manifest["upstream"]["repo"], "commit": commit}
    assert build["externalParameters"]["checkpoint_sha256"] == manifest["upstream"]["checkpoint_sha256"]
    assert build["externalParameters"]["export"]["validation_shapes"] == [[1, 320, 320], [1, 45, 77], [2, 64, 48]]
    git, checkpoint, *toolchain = build["resolvedDependencies"]
    assert git == {"uri": f"git+https://github.com/xuebinqin/U-2-Net@{commit}", "digest": {"gitCommit": commit}}
    assert checkpoint["digest"] == {"sha256": manifest["upstream"]["checkpoint_sha256"]}
    assert [dependency["uri"].split("@")[0] for dependency in toolchain] == [
        "pkg:pypi/torch",
        "pkg:pypi/onnx",
        "pkg:pypi/onnxruntime",
    ]
    assert statement["predicate"]["runDetails"]["builder"]["id"] == "https://u2netp-mirror.invalid/builders/local"
    assert "metadata" not in statement["predicate"]["runDetails"]


def test_in_github_actions_the_builder_is_the_workflow_run(signed):
    manifest = json.loads((signed / MANIFEST).read_text())
    details = predicate(manifest, ACTIONS)["runDetails"]
    assert details["builder"]["id"] == RELEASE_IDENTITY  # the identity the signing certificate carries
    assert (
        details["metadata"]["invocationId"] == "https://github.com/example/u2netp-mirror/actions/runs/123456/attempts/2"
    )


def test_the_statement_is_deterministic_outside_actions(signed, instance, sigstore_stack):
    first = statement_of(signed / PROVENANCE)
    (signed / PROVENANCE).unlink()
    sign_release(signed, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    assert statement_of(signed / PROVENANCE) == first  # a new signature over the same statement


def test_sigstore_pythons_own_verify_dsse_accepts_it(signed, instance):
    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    bundle = Bundle.from_json((signed / PROVENANCE).read_bytes())
    payload_type, payload = verifier.verify_dsse(
        bundle, policy.Identity(identity=RELEASE_IDENTITY, issuer=GITHUB_ISSUER)
    )
    assert payload_type == PAYLOAD_TYPE and json.loads(payload)["predicateType"] == PREDICATE_TYPE


@pytest.mark.parametrize("name", [ONNX, MANIFEST, LICENCE])
def test_the_stock_sigstore_cli_matches_each_file_against_the_statement(signed, trust_config, name):
    args = [sys.executable, "-m", "sigstore", "--trust-config", str(trust_config), "verify", "identity"]
    args += ["--cert-identity", RELEASE_IDENTITY, "--cert-oidc-issuer", GITHUB_ISSUER]
    args += ["--bundle", str(signed / PROVENANCE), str(signed / name)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert f"OK: {signed / name}" in result.stderr + result.stdout
    other = signed / "other.bin"
    other.write_bytes(b"not a release file")
    refused = subprocess.run([*args[:-1], str(other)], capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0  # a file the statement does not name


def _sign_statement(dist: Path, instance, sigstore_stack, identity: str, statement: dsse.Statement) -> None:
    context = SigningContext.from_trust_config(instance.client_trust_config)
    with context.signer(IdentityToken(sigstore_stack.token(identity))) as signer:
        (dist / PROVENANCE).write_text(signer.sign_dsse(statement).to_json())


def _statement(dist: Path, **changes) -> dsse.Statement:
    """Our statement for dist, with ``changes`` (subjects, commit) made to it."""
    manifest = json.loads((dist / MANIFEST).read_text())
    if "commit" in changes:
        manifest["upstream"]["commit"] = changes["commit"]
    subjects = {name: sha256(dist / name) for name in (ONNX, MANIFEST, LICENCE, MODEL_CARD)}
    subjects.update(changes.get("subjects", {}))
    return (
        dsse.StatementBuilder()
        .subjects([dsse.Subject(name=n, digest=dsse.DigestSet({"sha256": d})) for n, d in subjects.items()])
        .predicate_type(PREDICATE_TYPE)
        .predicate(predicate(manifest, {}))
        .build()
    )


@pytest.mark.parametrize(
    ("tamper", "check", "message"),
    [
        ("subject changed, re-signed by another identity", "provenance", "does not verify"),
        ("statement over other files", "provenance", f"the statement gives {ONNX} sha256 00000000"),
        ("statement naming one more file", "provenance", "names files the release does not carry"),
        ("provenance missing", "files present", "--no-provenance only for releases made before"),
        ("same statement, another identity", "provenance", "does not verify"),
        ("another upstream commit", "provenance", "the statement says upstream commit 'bbbbbbbb"),
        ("an artifact bundle in its place", "provenance", "without a DSSE envelope"),
    ],
)
def test_tampered_provenance_fails_verification(signed, instance, sigstore_stack, pins, tamper, check, message):
    if tamper == "subject changed, re-signed by another identity":
        _sign_statement(signed, instance, sigstore_stack, MALLORY, _statement(signed, subjects={ONNX: "f" * 64}))
    elif tamper == "statement over other files":
        _sign_statement(
            signed, instance, sigstore_stack, RELEASE_IDENTITY, _statement(signed, subjects={ONNX: "0" * 64})
        )
    elif tamper == "statement naming one more file":
        extra = _statement(signed, subjects={f"{MODEL_ID}.extra": "1" * 64})
        _sign_statement(signed, instance, sigstore_stack, RELEASE_IDENTITY, extra)
    elif tamper == "provenance missing":
        (signed / PROVENANCE).unlink()
    elif tamper == "same statement, another identity":
        _sign_statement(signed, instance, sigstore_stack, MALLORY, _statement(signed))
    elif tamper == "another upstream commit":
        _sign_statement(signed, instance, sigstore_stack, RELEASE_IDENTITY, _statement(signed, commit="b" * 40))
    elif tamper == "an artifact bundle in its place":  # right signer, but no statement at all
        shutil.copy(signed / f"{ONNX}.sigstore.json", signed / PROVENANCE)
    with pytest.raises(VerificationFailed, match=message) as caught:
        verify_release(signed, signer_for(), instance, pins)
    assert caught.value.check == check


def test_no_provenance_is_only_for_releases_older_than_it(signed, instance, pins, tmp_path, sigstore_stack):
    with pytest.raises(VerificationFailed, match=r"only for releases made before 0\.2\.0"):
        verify_release(signed, signer_for(), instance, pins, provenance=False)
    # A release made before the statement existed: no provenance, and its manifest says 0.1.0.
    from tests.release.synthetic import PINS, write_release

    old = tmp_path / "old"
    write_release(old, version="0.1.0")
    sign_release(old, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    (old / PROVENANCE).unlink()
    (old / OMS).unlink()  # nor the model signature, which came later still
    with pytest.raises(VerificationFailed, match="files present"):
        verify_release(old, signer_for(), instance, PINS)
    checks = {check.name: check for check in verify_release(old, signer_for(), instance, PINS, provenance=False)}
    assert checks["provenance"].warning and "0.1.0" in checks["provenance"].detail
    assert "model signature" not in checks


def test_sign_refuses_a_token_verify_would_reject_before_asking_fulcio(dist, sigstore_stack, tmp_path, pristine):
    import socket

    with socket.socket() as closed:  # Fulcio, Rekor and the TSA all "live" on a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = sigstore_stack.trust_config()
    unreachable = f"http://127.0.0.1:{port}"
    for key in ("caUrls", "rekorTlogUrls", "tsaUrls"):
        for service in config["signingConfig"][key]:
            service["url"] = unreachable
    trust = tmp_path / "unreachable.json"
    trust.write_text(json.dumps(config))
    before = sorted(p.name for p in dist.iterdir())
    token = sigstore_stack.token(MALLORY)
    env = {**without_ambient_credentials(), **fixture_pin_env(pristine), "SIGSTORE_ID_TOKEN": token}
    result = run_cli("sign", *FOR_RELEASE, "--dist", str(dist), "--trust-config", str(trust), env_override=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert f"the identity token is for {MALLORY} ({GITHUB_ISSUER})" in line
    assert f"verify will demand {RELEASE_IDENTITY}" in line and "nothing was sent to Fulcio" in line
    assert sorted(p.name for p in dist.iterdir()) == before  # no bundle written
    # Told to expect that identity on purpose, sign goes on, and only then meets the closed port.
    on_purpose = run_cli(
        "sign", "--cert-identity", MALLORY, "--dist", str(dist), "--trust-config", str(trust), env_override=env
    )
    assert on_purpose.returncode == 1 and "nothing was sent to Fulcio" not in on_purpose.stderr
    assert "signing with trust config" in on_purpose.stderr
    assert token not in result.stderr + on_purpose.stderr


def test_sign_refuses_a_manifest_the_build_did_not_make(dist, instance, sigstore_stack):
    from release.errors import SigningError

    with pytest.raises(SigningError, match=r"the build made 0000000000000000… \(the files changed"):
        sign_release(
            dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for(), manifest_sha256="0" * 64
        )
    assert not (dist / PROVENANCE).exists()
    sign_release(
        dist,
        instance,
        sigstore_stack.token(RELEASE_IDENTITY),
        expected=signer_for(),
        manifest_sha256=sha256(dist / MANIFEST),
    )
    assert (dist / PROVENANCE).is_file()


@pytest.mark.slow
def test_provenance_round_trip_through_attach_and_verify_download(
    github, signed, instance, pins, trust_config, pristine, tmp_path
):
    from tests.release.test_trust_boundary import attach_lib

    attach_lib(github, signed, instance, pins)
    (release,) = github.releases.values()
    assert PROVENANCE in {asset.name for asset in release.assets.values()}
    env = {**without_ambient_credentials(), **fixture_pin_env(pristine), "GITHUB_API_URL": github.url}
    args = ("verify", *FOR_RELEASE, "--dist", str(tmp_path / "fetched"), "--trust-config", str(trust_config))
    result = run_cli(*args, env_override=env)
    assert result.returncode == 0, result.stderr
    assert "ok    provenance" in result.stdout and "in-toto SLSA v1 statement over 4 files" in result.stdout
    assert (tmp_path / "fetched" / PROVENANCE).read_bytes() == (signed / PROVENANCE).read_bytes()
