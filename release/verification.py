"""``invoke verify``: everything an operator checks before trusting the release files.

Torch-free: it needs the base install only (sigstore, requests, jsonschema).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from sigstore.errors import Error as SigstoreError
from sigstore.verify import Verifier, policy

from mirror.errors import MirrorError, VerificationFailed
from mirror.hashing import sha256_file
from mirror.metadata import read_metadata

from .assets import MANIFEST_NAME, ONNX_NAME, bundle_path, checked_manifest, licence_copies
from .bundles import IdentityRegexp, prehashed, read_bundle, signer_identity
from .instance import SigstoreInstance

# ONNX metadata key -> where the manifest keeps the same fact.
_METADATA_VS_MANIFEST = {
    "model_id": ("model_id",),
    "upstream_commit": ("upstream", "commit"),
    "upstream_module_sha256": ("upstream", "module_sha256"),
    "checkpoint_sha256": ("upstream", "checkpoint_sha256"),
}


@dataclass(frozen=True)
class Check:
    name: str
    detail: str


@dataclass(frozen=True)
class ExpectedSigner:
    """Exactly one of ``identity`` / ``identity_regexp``, and the OIDC issuer."""

    issuer: str
    identity: str | None = None
    identity_regexp: str | None = None

    def policy(self) -> policy.VerificationPolicy:
        if (self.identity is None) == (self.identity_regexp is None):
            raise MirrorError("give exactly one of --cert-identity and --cert-identity-regexp")
        if self.identity is not None:
            return policy.Identity(identity=self.identity, issuer=self.issuer)
        return IdentityRegexp(self.identity_regexp or "", self.issuer)

    @property
    def label(self) -> str:
        return f"{self.identity or '~' + (self.identity_regexp or '')} ({self.issuer})"


def _signature_check(verifier: Verifier, path: Path, digest: str, expected: policy.VerificationPolicy) -> str:
    bundle_file = bundle_path(path)
    check = f"{path.name} signature"
    try:
        bundle = read_bundle(bundle_file)
    except MirrorError as exc:
        raise VerificationFailed(check, str(exc)) from None
    try:
        verifier.verify_artifact(prehashed(digest), bundle, expected)
    except (SigstoreError, requests.RequestException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise VerificationFailed(check, f"{bundle_file.name} does not verify: {first[:240]}") from None
    who = signer_identity(bundle.signing_certificate)
    return f"signed by {who.identity} ({who.issuer})"


def verify_release(
    dist: Path,
    expected: ExpectedSigner,
    instance: SigstoreInstance,
    on_check: Callable[[Check], None] = lambda check: None,
) -> list[Check]:
    """Run every check; raise ``VerificationFailed`` (naming the check) at the first failure.

    ``on_check`` sees each passed check as it happens, so a caller can show progress.
    """
    passed: list[Check] = []

    def record(name: str, detail: str) -> None:
        passed.append(Check(name, detail))
        on_check(passed[-1])

    identity_policy = expected.policy()
    onnx_path, manifest_path = dist / ONNX_NAME, dist / MANIFEST_NAME
    for required in (onnx_path, manifest_path, bundle_path(onnx_path), bundle_path(manifest_path)):
        if not required.is_file():
            raise VerificationFailed("files present", f"{required}: missing")
    record("files present", "ONNX, manifest and both Sigstore bundles")

    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    onnx_sha256 = sha256_file(onnx_path)
    for path, digest in ((onnx_path, onnx_sha256), (manifest_path, sha256_file(manifest_path))):
        record(f"{path.name} signature", _signature_check(verifier, path, digest, identity_policy))

    manifest, _ = checked_manifest(dist, onnx_sha256)
    record("manifest schema", manifest["schema"])
    record("onnx sha256", f"{onnx_sha256} = manifest outputs.onnx_sha256")

    try:
        metadata = read_metadata(onnx_path)
    except (ValueError, OSError) as exc:
        raise VerificationFailed("onnx metadata", f"{onnx_path}: not a readable ONNX model ({exc})") from None
    for key, where in _METADATA_VS_MANIFEST.items():
        value: object = manifest
        for part in where:
            value = value[part]  # type: ignore[index]
        if metadata.get(key) != value:
            raise VerificationFailed(
                "onnx metadata",
                f"the ONNX says {key}={metadata.get(key)!r}, the manifest says {'.'.join(where)}={value!r}",
            )
    record("onnx metadata", "model id, upstream commit and module, checkpoint sha256 agree with the manifest")

    # The licence files are not signed themselves; the signed manifest records their hashes.
    licences = licence_copies(manifest)
    for name, expected_sha256 in licences.items():
        path = dist / name
        if not path.is_file():
            raise VerificationFailed("licence files", f"{path}: missing (the release carries upstream's licence)")
        if sha256_file(path) != expected_sha256:
            raise VerificationFailed("licence files", f"{path}: is not the upstream licence file the manifest records")
    record("licence files", f"{', '.join(licences)} match the manifest's sha256")
    return passed
