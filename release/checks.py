"""``verify``: everything an operator checks before trusting the release files.

Torch-free: it needs the base install only (sigstore, requests, jsonschema).  The signed
manifest is compared with the ONNX's own embedded metadata, and both with the audited pins
this version of the verifier ships: a signature proves who published the files, the pins
prove they are the model that was audited, not a demo build or an unpinned experiment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sigstore.errors import Error as SigstoreError
from sigstore.verify import Verifier, policy

from mirror.errors import MirrorError
from mirror.hashing import sha256_file
from mirror.metadata import read_metadata
from mirror.settings import MANIFEST_NAME, ONNX_NAME, UpstreamPin, bundle_name

from .assets import bundle_path, checked_manifest, licence_copies
from .bundles import IdentityRegexp, prehashed, read_bundle, signer_identity
from .errors import VerificationFailed
from .instance import SigstoreInstance
from .redact import printable


def _as_text(value: object) -> str:
    # The metadata holds strings only; the manifest's booleans and numbers are compared as written.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ONNX metadata key -> where the manifest keeps the same fact.  Every key the metadata has
# is listed: an ONNX whose embedded provenance disagrees with its signed manifest is refused.
METADATA_IN_MANIFEST: dict[str, tuple[str, ...]] = {
    "model_id": ("model_id",),
    "build_kind": ("build_kind",),
    "upstream_repo": ("upstream", "repo"),
    "upstream_commit": ("upstream", "commit"),
    "upstream_module_sha256": ("upstream", "module_sha256"),
    "upstream_pinned": ("upstream", "pinned"),
    "checkpoint_sha256": ("upstream", "checkpoint_sha256"),
    "license": ("upstream", "license_spdx"),
    "exporter_version": ("toolchain", "u2netp_mirror"),
    "torch_version": ("toolchain", "torch"),
    "onnx_version": ("toolchain", "onnx"),
    "opset": ("export", "opset"),
    "input": ("export", "input_name"),
    "output": ("export", "output_name"),
    "selected_output": ("export", "selected_upstream_output"),
}


@dataclass(frozen=True)
class Check:
    name: str
    detail: str
    warning: bool = False


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

    @classmethod
    def choose(
        cls,
        *,
        identity: str | None,
        identity_regexp: str | None,
        issuer: str | None,
        repo: str | None,
        tag: str | None,
        defaults: Mapping[str, Any],
    ) -> ExpectedSigner:
        """The signer to demand: the one given, else the release workflow of ``repo`` at ``tag``.

        ``defaults`` is the ``u2netp.sigstore`` config: ``cert_identity`` (a template with
        {repo} and {tag}) and ``cert_oidc_issuer``.
        """
        chosen_issuer = issuer or str(defaults["cert_oidc_issuer"])
        if identity or identity_regexp:
            return cls(issuer=chosen_issuer, identity=identity or None, identity_regexp=identity_regexp or None)
        if not repo or not tag:
            raise MirrorError(
                "which signer to expect? pass --cert-identity (or --cert-identity-regexp), or --repo and --tag "
                "to expect that repository's release workflow"
            )
        return cls(issuer=chosen_issuer, identity=str(defaults["cert_identity"]).format(repo=repo, tag=tag))


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
        raise VerificationFailed(check, f"{bundle_file.name} does not verify: {printable(exc, 240)}") from None
    who = signer_identity(bundle.signing_certificate)
    return f"signed by {who.identity} ({who.issuer})"


def _at(document: dict[str, Any], where: tuple[str, ...]) -> object:
    value: object = document
    for part in where:
        value = value[part] if isinstance(value, dict) else None
    return value


def metadata_disagreements(metadata: dict[str, str], manifest: dict[str, Any]) -> list[str]:
    """Where the ONNX's embedded metadata and the manifest say different things."""
    problems = [
        f"the ONNX says {key}={printable(metadata.get(key), 80)!r}, the manifest says "
        f"{'.'.join(where)}={printable(_at(manifest, where), 80)!r}"
        for key, where in METADATA_IN_MANIFEST.items()
        if metadata.get(key) != _as_text(_at(manifest, where))
    ]
    written = manifest["export"]["metadata_written"]
    for key in sorted(set(metadata) | set(written)):
        if metadata.get(key) != written.get(key):
            problems.append(f"the ONNX's metadata {printable(key, 60)!r} differs from export.metadata_written")
    return problems


def pin_disagreements(manifest: dict[str, Any], pins: UpstreamPin) -> list[str]:
    """Where the signed manifest departs from the audited pins the verifier ships."""
    upstream = manifest["upstream"]
    problems = []
    if manifest["build_kind"] != "audited":
        problems.append(f"build_kind is {manifest['build_kind']!r} (signed), the audited model is an 'audited' build")
    if upstream["pin"]["source"] != "config":
        problems.append(f"upstream.pin.source is {upstream['pin']['source']!r} (signed), not the project's pins")
    if not upstream["pinned"]:
        problems.append("upstream.pinned is false (signed): the checkout did not match its pins")
    if upstream["repo"] != pins.repo_url:
        problems.append(
            f"upstream.repo is {printable(upstream['repo'], 80)!r} (signed), the audited pin is {pins.repo_url!r}"
        )
    for field, signed, audited in (
        ("upstream.commit", upstream["commit"], pins.commit),
        ("upstream.module_sha256", upstream["module_sha256"], pins.module_sha256),
        ("upstream.license_sha256", upstream["license_sha256"], pins.license_sha256),
        ("upstream.checkpoint_sha256", upstream["checkpoint_sha256"], pins.checkpoint_sha256),
    ):
        if audited and signed != audited:
            problems.append(f"{field} is {signed[:16]}… (signed), the audited pin is {audited[:16]}…")
    return problems


def _files_present(dist: Path) -> str:
    for name in (ONNX_NAME, MANIFEST_NAME, bundle_name(ONNX_NAME), bundle_name(MANIFEST_NAME)):
        if not (dist / name).is_file():
            raise VerificationFailed("files present", f"{dist / name}: missing")
    return "ONNX, manifest and both Sigstore bundles"


def _metadata_agrees(onnx_path: Path, manifest: dict[str, Any]) -> str:
    if manifest["outputs"]["onnx_path"] != onnx_path.name:
        raise VerificationFailed(
            "onnx metadata",
            f"the manifest describes {printable(manifest['outputs']['onnx_path'], 80)!r}, not {onnx_path.name}",
        )
    try:
        metadata = read_metadata(onnx_path)
    except (ValueError, OSError) as exc:
        raise VerificationFailed("onnx metadata", f"{onnx_path}: not a readable ONNX model ({exc})") from None
    if problems := metadata_disagreements(metadata, manifest):
        raise VerificationFailed("onnx metadata", problems[0])
    return f"{len(metadata)} embedded fields agree with the manifest"


def _licences_match(dist: Path, manifest: dict[str, Any]) -> str:
    # The licence files are not signed themselves; the signed manifest records their hashes.
    licences = licence_copies(manifest)
    for name, expected_sha256 in licences.items():
        path = dist / name
        if not path.is_file():
            raise VerificationFailed("licence files", f"{path}: missing (the release carries upstream's licence)")
        if sha256_file(path) != expected_sha256:
            raise VerificationFailed("licence files", f"{path}: is not the upstream licence file the manifest records")
    return f"{', '.join(licences)} match the manifest's sha256"


def verify_release(
    dist: Path,
    expected: ExpectedSigner,
    instance: SigstoreInstance,
    pins: UpstreamPin,
    *,
    allow_unpinned: bool = False,
    on_check: Callable[[Check], None] = lambda check: None,
) -> list[Check]:
    """Run every check; raise ``VerificationFailed`` (naming the check) at the first failure.

    ``pins`` are the audited pins to hold the manifest to; ``allow_unpinned`` turns a mismatch
    into a warning (a ``Check`` with ``warning=True``) instead of a failure.  ``on_check`` sees
    each check as it passes, so a caller can show progress.
    """
    passed: list[Check] = []

    def record(name: str, detail: str, warning: bool = False) -> None:
        passed.append(Check(name, detail, warning))
        on_check(passed[-1])

    identity_policy = expected.policy()
    record("files present", _files_present(dist))
    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    onnx_path, manifest_path = dist / ONNX_NAME, dist / MANIFEST_NAME
    onnx_sha256 = sha256_file(onnx_path)
    for path, digest in ((onnx_path, onnx_sha256), (manifest_path, sha256_file(manifest_path))):
        record(f"{path.name} signature", _signature_check(verifier, path, digest, identity_policy))

    manifest, _ = checked_manifest(dist, onnx_sha256)
    record("manifest schema", manifest["schema"])
    record("onnx sha256", f"{onnx_sha256} = manifest outputs.onnx_sha256")
    record("onnx metadata", _metadata_agrees(onnx_path, manifest))
    if problems := pin_disagreements(manifest, pins):
        if not allow_unpinned:
            raise VerificationFailed(
                "audited pins", f"{problems[0]}; this is not the audited model (--allow-unpinned accepts it)"
            )
        more = f" (and {len(problems) - 1} more differences)" if len(problems) > 1 else ""
        record("audited pins", f"WARNING: not the audited model: {problems[0]}{more}", warning=True)
    else:
        record("audited pins", f"build {manifest['build_kind']}, upstream {manifest['upstream']['commit'][:12]}")
    record("licence files", _licences_match(dist, manifest))
    return passed
