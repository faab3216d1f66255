"""Keyless signing and verification through the real sigstore-python client, on a loopback stack."""

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loopback.sigstore import SigstoreStack
from release.checks import ExpectedSigner, verify_release
from release.errors import IdentityTokenError, SigningError, VerificationFailed
from release.instance import SigstoreInstance
from release.signing import sign_release
from tests.helpers import (
    FOR_RELEASE,
    GITHUB_ISSUER,
    LICENCE,
    MANIFEST,
    OMS,
    ONNX,
    PROVENANCE,
    RELEASE_IDENTITY,
    fixture_pin_env,
    pins_file,
    run_cli,
    signer_for,
    without_ambient_credentials,
)

BUNDLES = (f"{ONNX}.sigstore.json", f"{MANIFEST}.sigstore.json", PROVENANCE, OMS)
EXPECTED = ExpectedSigner(issuer=GITHUB_ISSUER, identity=RELEASE_IDENTITY)


def test_sign_then_verify_round_trip(dist, instance, sigstore_stack, pins):
    results = sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    assert [r.bundle.name for r in results] == sorted(BUNDLES)
    for result in results:
        assert not result.kept
        assert (result.signer.identity, result.signer.issuer) == (RELEASE_IDENTITY, GITHUB_ISSUER)
        bundle = json.loads(result.bundle.read_text())
        assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert int(bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"]) == result.log_index
    checks = verify_release(dist, EXPECTED, instance, pins)
    assert [check.name for check in checks] == [
        "files present",
        f"{ONNX} signature",
        f"{MANIFEST} signature",
        "source repository",
        "manifest schema",
        "upstream witness",
        "onnx sha256",
        "onnx metadata",
        "audited pins",
        "licence files",
        "model card",
        "provenance",
        "evaluation",
        "model signature",
    ]


def test_identity_regexp(signed, instance, pins):
    pattern = r"https://github\.com/example/u2netp-mirror/\.github/workflows/release\.yml@refs/tags/.*"
    verify_release(signed, ExpectedSigner(issuer=GITHUB_ISSUER, identity_regexp=pattern), instance, pins)
    with pytest.raises(VerificationFailed, match="do not match"):
        verify_release(signed, ExpectedSigner(issuer=GITHUB_ISSUER, identity_regexp=r"https://evil/.*"), instance, pins)


@pytest.mark.parametrize("name", [ONNX, MANIFEST])
def test_bundles_verify_with_the_stock_sigstore_cli(signed, trust_config, name):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sigstore",
            "--trust-config",
            str(trust_config),
            "verify",
            "identity",
            "--cert-identity",
            RELEASE_IDENTITY,
            "--cert-oidc-issuer",
            GITHUB_ISSUER,
            "--bundle",
            str(signed / f"{name}.sigstore.json"),
            str(signed / name),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"OK: {signed / name}" in result.stderr + result.stdout


def _flip_onnx_byte(dist: Path) -> None:
    data = bytearray((dist / ONNX).read_bytes())
    data[len(data) // 2] ^= 0x01
    (dist / ONNX).write_bytes(bytes(data))


def _edit_manifest(dist: Path) -> None:
    document = json.loads((dist / MANIFEST).read_text())
    document["upstream"]["notice_present"] = True
    (dist / MANIFEST).write_text(json.dumps(document, sort_keys=True, indent=2) + "\n")


def _swap_bundles(dist: Path) -> None:
    first, second = (dist / name for name in BUNDLES[:2])
    data = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(data)


def _drop_bundle(dist: Path) -> None:
    (dist / BUNDLES[1]).unlink()


def _garbage_bundle(dist: Path) -> None:
    (dist / BUNDLES[0]).write_text("{not a bundle")


def _swap_licence(dist: Path) -> None:
    (dist / LICENCE).write_text("MIT License\n\nPermission is hereby granted, free of charge ...\n")


def _drop_licence(dist: Path) -> None:
    (dist / LICENCE).unlink()


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (_flip_onnx_byte, f"{ONNX} signature"),
        (_edit_manifest, f"{MANIFEST} signature"),
        (_swap_bundles, f"{ONNX} signature"),
        (_drop_bundle, "files present"),
        (_garbage_bundle, f"{ONNX} signature"),
        (_swap_licence, "licence files"),
        (_drop_licence, "licence files"),
    ],
    ids=[
        "onnx-byte-flipped",
        "manifest-edited",
        "bundles-swapped",
        "bundle-missing",
        "bundle-garbage",
        "licence-replaced",
        "licence-missing",
    ],
)
def test_tampering_fails_verification(signed, instance, tamper, check, pins):
    tamper(signed)
    with pytest.raises(VerificationFailed) as caught:
        verify_release(signed, EXPECTED, instance, pins)
    assert caught.value.check == check


def test_wrong_identity_fails(signed, instance, pins):
    other = ExpectedSigner(issuer=GITHUB_ISSUER, identity=RELEASE_IDENTITY.replace("v1.0.0", "v9.9.9"))
    with pytest.raises(VerificationFailed, match="SANs do not match"):
        verify_release(signed, other, instance, pins)


def test_wrong_issuer_fails(signed, instance, pins):
    other = ExpectedSigner(issuer="https://accounts.google.com", identity=RELEASE_IDENTITY)
    with pytest.raises(VerificationFailed, match="signature"):
        verify_release(signed, other, instance, pins)


def test_trust_root_of_another_stack_fails(signed, tmp_path, pins):
    other = SigstoreStack()  # fresh keys; never started: its trust root is all that is needed
    path = tmp_path / "other_trust_config.json"
    other.url = "http://127.0.0.1:9"
    path.write_text(json.dumps(other.trust_config()))
    with pytest.raises(VerificationFailed, match=f"{ONNX} signature"):
        verify_release(signed, EXPECTED, SigstoreInstance(trust_config=path), pins)


def test_signed_by_someone_else_fails_default_identity(dist, instance, sigstore_stack, pins):
    mallory = "https://github.com/mallory/fork/.github/workflows/release.yml@refs/tags/u2netp-mirror-v1.0.0"
    sign_release(dist, instance, sigstore_stack.token(mallory), expected=signer_for(mallory))
    with pytest.raises(VerificationFailed, match="SANs do not match"):
        verify_release(dist, EXPECTED, instance, pins)


def test_onnx_that_does_not_match_the_manifest_fails_even_if_resigned(dist, instance, sigstore_stack):
    _flip_onnx_byte(dist)
    with pytest.raises(SigningError, match="refusing to sign: onnx sha256"):
        sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    assert not any((dist / name).exists() for name in BUNDLES)


def test_rerun_keeps_valid_bundles_and_logs_nothing_new(signed, instance, sigstore_stack):
    before = {name: (signed / name).read_bytes() for name in BUNDLES}
    entries = len(sigstore_stack.leaves)
    results = sign_release(signed, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    assert all(result.kept for result in results)
    assert {name: (signed / name).read_bytes() for name in BUNDLES} == before
    assert len(sigstore_stack.leaves) == entries


def test_stale_or_broken_bundles_are_replaced(signed, instance, sigstore_stack, pins):
    _garbage_bundle(signed)
    kept_before = (signed / BUNDLES[1]).read_bytes()
    results = {
        r.bundle.name: r
        for r in sign_release(signed, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    }
    assert not results[BUNDLES[0]].kept and results[BUNDLES[1]].kept
    assert (signed / BUNDLES[1]).read_bytes() == kept_before
    verify_release(signed, EXPECTED, instance, pins)


def test_bundle_of_another_signer_is_replaced(dist, instance, sigstore_stack, pins):
    someone = "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main"
    sign_release(dist, instance, sigstore_stack.token(someone), expected=signer_for(someone))
    results = sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    assert not any(result.kept for result in results)
    verify_release(dist, EXPECTED, instance, pins)


def test_expired_token_is_a_clear_error(dist, instance, sigstore_stack):
    token = sigstore_stack.token(RELEASE_IDENTITY, lifetime=-60)
    expired = r"the identity token expired at .* s ago\); get a fresh one"
    with pytest.raises(IdentityTokenError, match=expired) as caught:
        sign_release(dist, instance, token, expected=signer_for())
    assert token not in str(caught.value)


def test_no_token_in_a_non_interactive_shell_fails_at_once(dist, trust_config):
    result = run_cli(
        "sign",
        *FOR_RELEASE,
        "--dist",
        str(dist),
        "--trust-config",
        str(trust_config),
        env_override=without_ambient_credentials(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "no identity token for signing" in result.stderr and "SIGSTORE_ID_TOKEN" in result.stderr
    assert not any((dist / name).exists() for name in BUNDLES)


@pytest.mark.slow
def test_command_line_sign_and_verify_never_show_the_token(dist, trust_config, sigstore_stack, pristine):
    token = sigstore_stack.token(RELEASE_IDENTITY)
    env = {**without_ambient_credentials(), **fixture_pin_env(pristine), "SIGSTORE_ID_TOKEN": token}
    signed = run_cli("sign", *FOR_RELEASE, "--dist", str(dist), "--trust-config", str(trust_config), env_override=env)
    assert signed.returncode == 0, signed.stderr
    assert f"{RELEASE_IDENTITY} ({GITHUB_ISSUER}), Rekor log index" in signed.stdout
    again = run_cli("sign", *FOR_RELEASE, "--dist", str(dist), "--trust-config", str(trust_config), env_override=env)
    assert again.returncode == 0 and again.stdout.count("kept (already signed)") == 4
    verified = run_cli(
        "verify",
        "--dist",
        str(dist),
        "--trust-config",
        str(trust_config),
        env_override={
            **env,
            "INVOKE_U2NETP_RELEASE_REPO": "example/u2netp-mirror",
            "INVOKE_U2NETP_RELEASE_TAG": "u2netp-mirror-v1.0.0",
        },
    )
    assert verified.returncode == 0, verified.stderr
    assert "verify: all checks passed" in verified.stdout and "ok    onnx metadata" in verified.stdout
    secret_parts = [token, *token.split(".")]
    for output in (signed, again, verified):
        assert not any(part in output.stdout + output.stderr for part in secret_parts)
    for path in dist.rglob("*"):
        assert not any(part.encode() in path.read_bytes() for part in secret_parts), path


def test_command_line_verify_failure_is_one_line(signed, trust_config):
    _flip_onnx_byte(signed)
    result = run_cli(
        "verify",
        "--dist",
        str(signed),
        "--trust-config",
        str(trust_config),
        "--cert-identity",
        RELEASE_IDENTITY,
        "--cert-oidc-issuer",
        GITHUB_ISSUER,
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {ONNX} signature: {ONNX}.sigstore.json does not verify")


def test_verify_needs_to_know_the_signer(signed, trust_config):
    env = {k: v for k, v in without_ambient_credentials().items() if k != "GITHUB_REPOSITORY"}
    result = run_cli("verify", "--dist", str(signed), "--trust-config", str(trust_config), env_override=env)
    assert result.returncode == 2 and "pass --cert-identity" in result.stderr  # a usage error


@pytest.mark.slow
def test_verify_does_not_import_torch_and_console_script_works(signed, trust_config, pristine, tmp_path):
    argv = [
        "verify",
        "--dist",
        str(signed),
        "--trust-config",
        str(trust_config),
        "--cert-identity",
        RELEASE_IDENTITY,
        "--cert-oidc-issuer",
        GITHUB_ISSUER,
        "--pins",
        str(pins_file(pristine.pin, tmp_path)),
    ]
    probe = (
        "import sys\n"
        "from release.cli import main\n"
        f"code = main({argv!r})\n"
        "heavy = {'torch', 'onnxruntime', 'onnx', 'numpy'} & set(sys.modules)\n"
        "print('TORCH' if heavy else 'NO TORCH', code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=signed, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "verify: all checks passed" in result.stdout and result.stdout.rstrip().endswith("NO TORCH 0")
    script = Path(sys.executable).with_name("u2netp-mirror")
    installed = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, timeout=120, cwd=signed.parent, check=False
    )
    assert installed.returncode == 0, installed.stderr
    shutil.rmtree(signed)


def test_bundles_carry_a_verifiable_rfc3161_timestamp(signed, sigstore_stack):
    from rfc3161_client import VerifierBuilder, decode_timestamp_response

    from release.bundles import read_bundle

    for name in BUNDLES:
        document = json.loads((signed / name).read_text())
        (stamp,) = document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
        response = decode_timestamp_response(base64.b64decode(stamp["signedTimestamp"]))
        verifier = (
            VerifierBuilder()
            .tsa_certificate(sigstore_stack.tsa_leaf)
            .add_root_certificate(sigstore_stack.tsa_root)
            .build()
        )
        assert verifier.verify_message(response, read_bundle(signed / name).signature)
        assert response.tst_info.gen_time.microsecond == 0


def test_ambient_github_actions_credentials_sign_as_the_release_workflow(dist, trust_config, sigstore_stack, pristine):
    sigstore_stack.actions_identity = RELEASE_IDENTITY
    env = {**without_ambient_credentials(), **fixture_pin_env(pristine), **sigstore_stack.actions_env}
    signed = run_cli("sign", *FOR_RELEASE, "--dist", str(dist), "--trust-config", str(trust_config), env_override=env)
    assert signed.returncode == 0, signed.stderr
    assert f"{RELEASE_IDENTITY} ({GITHUB_ISSUER})" in signed.stdout
    assert sigstore_stack.actions_request_token not in signed.stdout + signed.stderr
    verified = run_cli(
        "verify",
        "--dist",
        str(dist),
        "--trust-config",
        str(trust_config),
        env_override={
            **env,
            "GITHUB_REPOSITORY": "example/u2netp-mirror",
            "INVOKE_U2NETP_RELEASE_TAG": "u2netp-mirror-v1.0.0",
        },
    )
    assert verified.returncode == 0, verified.stderr


def test_github_actions_without_id_token_permission_is_explained(dist, trust_config):
    env = {**without_ambient_credentials(), "GITHUB_ACTIONS": "true"}
    result = run_cli(
        "sign", *FOR_RELEASE, "--dist", str(dist), "--trust-config", str(trust_config), env_override=env, timeout=60
    )
    assert result.returncode == 1
    assert "ambient credential detection failed" in result.stderr and "ACTIONS_ID_TOKEN_REQUEST_TOKEN" in result.stderr
