"""Verifiers that are not ours accept our releases and refuse tampered ones: sigstore-js
(@sigstore/verify, what npm and `npx sigstore verify` use, from npm like the workflow linter) and
the OpenSSF model-signing CLI (the released package from PyPI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import GITHUB_ISSUER, LICENCE, MANIFEST, OMS, ONNX, ONNX_BUNDLE, PROVENANCE, RELEASE_IDENTITY, ROOT

pytestmark = pytest.mark.slow

SIGSTORE_JS = ROOT / "tests" / "node" / "sigstore-verify.cjs"


def sigstore_js(trust_config, bundle, artifact, identity=RELEASE_IDENTITY):
    return subprocess.run(
        ["node", str(SIGSTORE_JS), str(trust_config), str(bundle), str(artifact), identity, GITHUB_ISSUER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("bundle", "artifact"), [(ONNX_BUNDLE, ONNX), (PROVENANCE, ONNX), (PROVENANCE, LICENCE)])
def test_sigstore_js_accepts_the_release(signed, trust_config, bundle, artifact):
    result = sigstore_js(trust_config, signed / bundle, signed / artifact)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")


def test_sigstore_js_refuses_a_changed_file_and_another_signer(signed, trust_config):
    (signed / ONNX).write_bytes((signed / ONNX).read_bytes() + b"\0")
    changed = sigstore_js(trust_config, signed / ONNX_BUNDLE, signed / ONNX)
    assert changed.returncode == 1 and "SIGNATURE_ERROR" in changed.stderr
    other = sigstore_js(trust_config, signed / f"{MANIFEST}.sigstore.json", signed / MANIFEST, identity="https://evil/")
    assert other.returncode == 1 and "UNTRUSTED_SIGNER_ERROR: certificate identity error" in other.stderr


def model_signing(directory, trust_config, identity=RELEASE_IDENTITY, *extra):
    """The OpenSSF model-signing CLI (the released package), as its README runs it."""
    args = [sys.executable, "-m", "model_signing", "verify", "sigstore", str(directory)]
    args += ["--signature", str(directory / OMS), "--trust_config", str(trust_config)]
    args += ["--identity", identity, "--identity_provider", GITHUB_ISSUER, *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)


def test_model_signing_accepts_the_release_directory(signed, trust_config):
    result = model_signing(signed, trust_config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout


@pytest.mark.parametrize("tamper", ["changed byte", "extra file", "missing file"])
def test_model_signing_refuses_a_tampered_release(signed, trust_config, tamper):
    if tamper == "changed byte":
        data = bytearray((signed / LICENCE).read_bytes())
        data[100] ^= 1
        (signed / LICENCE).write_bytes(bytes(data))
    elif tamper == "extra file":
        (signed / "extra.onnx").write_bytes(b"not part of the release")
    else:
        (signed / PROVENANCE).unlink()
    result = model_signing(signed, trust_config)
    assert result.returncode != 0 and "Verification failed" in result.stdout + result.stderr


def test_model_signing_refuses_another_identity(signed, trust_config):
    result = model_signing(
        signed, trust_config, "https://github.com/evil/fork/.github/workflows/release.yml@refs/tags/x"
    )
    assert result.returncode != 0 and "Verification failed" in result.stdout + result.stderr


def test_our_verify_refuses_a_model_signature_over_other_files(signed, instance, pins, sigstore_stack):
    from release.checks import verify_release
    from release.errors import VerificationFailed
    from tests.helpers import signer_for

    checks = {check.name: check.detail for check in verify_release(signed, signer_for(), instance, pins)}
    assert checks["model signature"].startswith("OpenSSF model signing v1.0 over 7 files")
    data = bytearray((signed / LICENCE).read_bytes())
    data[100] ^= 1
    (signed / LICENCE).write_bytes(bytes(data))
    with pytest.raises(VerificationFailed, match=r"licence files|model signature"):
        verify_release(signed, signer_for(), instance, pins)
    # A signature over another set of files: the one for a release without the licence copy.
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    from release.oms import build_statement
    from release.signing import _release_digests

    (signed / LICENCE).write_bytes(bytes(data[:100]) + bytes([data[100] ^ 1]) + bytes(data[101:]))
    manifest = json.loads((signed / MANIFEST).read_text())
    digests = _release_digests(signed, manifest, {})
    del digests[LICENCE]
    context = SigningContext.from_trust_config(instance.client_trust_config)
    with context.signer(IdentityToken(sigstore_stack.token(RELEASE_IDENTITY))) as signer:
        (signed / OMS).write_text(signer.sign_dsse(build_statement(digests)).to_json())
    with pytest.raises(VerificationFailed, match=r"model signature: .* names"):
        verify_release(signed, signer_for(), instance, pins)
