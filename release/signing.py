"""``sign``: keyless Sigstore signatures for the ONNX and the manifest, and the signed provenance.

Three bundles: one per file (the ONNX, the manifest) and one DSSE envelope holding the in-toto
statement over the release (``attestation.py``).  Before any request to Fulcio the identity
token is held to the signer ``verify`` will demand for this release: signing with the wrong
identity (the browser flow makes that easy, sigstore-python#567) fails here, not at the
operator's.  Every new bundle is verified before it is written; a bundle that still verifies
for the same content and signer is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sigstore._internal.fulcio.client import FulcioClientError  # what sigstore-python raises for Fulcio's 4xx
from sigstore.errors import Error as SigstoreError
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from mirror.atomic import write_bytes_atomic
from mirror.contract import MANIFEST_NAME, ONNX_NAME, PROVENANCE_NAME
from mirror.errors import MirrorError
from mirror.hashing import sha256_file

from .assets import bundle_path, checked_manifest, licence_copies
from .attestation import StatementError, build_statement, read_statement, subjects_of
from .bundles import SignerIdentity, log_index, prehashed, read_bundle, serves_as_ours, signer_identity
from .checks import ExpectedSigner
from .errors import SigningError, VerificationFailed
from .identity import certificate_identity, resolve_identity_token
from .instance import SigstoreInstance
from .redact import printable


@dataclass(frozen=True)
class SignedFile:
    path: Path  # what is signed (for the provenance: the bundle itself, which holds the statement)
    bundle: Path
    signer: SignerIdentity
    log_index: int
    kept: bool  # an existing valid bundle was kept instead of signing again


def _checked_dist(dist: Path, manifest_sha256: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The manifest, and the sha256 of every file to sign or name, once dist is consistent."""
    try:
        manifest, onnx_sha256 = checked_manifest(dist)
    except VerificationFailed as exc:
        raise SigningError(f"refusing to sign: {exc}") from None
    found = sha256_file(dist / MANIFEST_NAME)
    if manifest_sha256 is not None and found != manifest_sha256:
        raise SigningError(
            f"refusing to sign: {dist / MANIFEST_NAME} has sha256 {found[:16]}…, the build made "
            f"{manifest_sha256[:16]}… (the files changed between the build and this job)"
        )
    for name, expected in licence_copies(manifest).items():
        if not (dist / name).is_file() or sha256_file(dist / name) != expected:
            raise SigningError(f"refusing to sign: {dist / name} is missing or is not the licence the manifest records")
    return manifest, {ONNX_NAME: onnx_sha256, MANIFEST_NAME: found}


def _current(verifier: Verifier, path: Path, digests: dict[str, str], subjects: dict[str, str], signer: Any) -> bool:
    """An existing bundle at ``path`` that serves as ours is kept: no new Rekor entry."""
    if not path.is_file():
        return False
    try:
        bundle = read_bundle(path)
    except MirrorError:
        return False  # unreadable: it gets replaced
    return serves_as_ours(verifier, bundle, path.name, digests, subjects, signer)


def _refuse_unexpected_signer(token_identity: SignerIdentity, expected: ExpectedSigner) -> None:
    if not expected.admits(token_identity.identity, token_identity.issuer):
        raise SigningError(
            f"the identity token is for {token_identity.identity} ({token_identity.issuer}), but verify will "
            f"demand {expected.label}; refusing to sign (nothing was sent to Fulcio). Pass --cert-identity "
            "(and --cert-oidc-issuer) to sign as yourself on purpose"
        )


def _sign_pending(
    signer: Any,
    verifier: Verifier,
    dist: Path,
    pending: dict[str, str],
    statement: Any | None,
) -> list[SignedFile]:
    results = []
    for name, digest in pending.items():
        path = dist / name
        signed = signer.sign_artifact(prehashed(digest))
        who = signer_identity(signed.signing_certificate)
        # Sign-then-verify: the bundle must verify for the identity it claims before it is written.
        verifier.verify_artifact(prehashed(digest), signed, policy.Identity(identity=who.identity, issuer=who.issuer))
        write_bytes_atomic(bundle_path(path), signed.to_json().encode("utf-8"))
        results.append(SignedFile(path, bundle_path(path), who, log_index(signed), kept=False))
    if statement is not None:
        signed = signer.sign_dsse(statement)
        who = signer_identity(signed.signing_certificate)
        read_statement(*verifier.verify_dsse(signed, policy.Identity(identity=who.identity, issuer=who.issuer)))
        path = dist / PROVENANCE_NAME
        write_bytes_atomic(path, signed.to_json().encode("utf-8"))
        results.append(SignedFile(path, path, who, log_index(signed), kept=False))
    return results


def sign_release(
    dist: Path,
    instance: SigstoreInstance,
    identity_token: str | None = None,
    *,
    expected: ExpectedSigner,
    manifest_sha256: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> list[SignedFile]:
    """Sign dist's ONNX and manifest and the provenance statement over the release files.

    Refuses before asking for a token if dist is not consistent (the ONNX and the licence copies
    are the ones the manifest describes; the manifest has ``manifest_sha256`` when given), and
    before any request to Fulcio if the token's identity is not one ``expected`` admits.
    """
    manifest, digests = _checked_dist(dist, manifest_sha256)
    token = resolve_identity_token(identity_token, instance)
    wanted = SignerIdentity(certificate_identity(token), token.issuer)
    _refuse_unexpected_signer(wanted, expected)
    trust = instance.client_trust_config
    verifier = Verifier(trusted_root=trust.trusted_root)
    same_signer = policy.Identity(identity=wanted.identity, issuer=wanted.issuer)

    results: list[SignedFile] = []
    pending: dict[str, str] = {}
    subjects = subjects_of(manifest, digests[MANIFEST_NAME])
    for name, digest in digests.items():
        bundle = bundle_path(dist / name)
        if _current(verifier, bundle, digests, subjects, same_signer):
            results.append(SignedFile(dist / name, bundle, wanted, log_index(read_bundle(bundle)), kept=True))
        else:
            pending[name] = digest
    provenance = dist / PROVENANCE_NAME
    statement = None
    if _current(verifier, provenance, digests, subjects, same_signer):
        results.append(SignedFile(provenance, provenance, wanted, log_index(read_bundle(provenance)), kept=True))
    else:
        statement = build_statement(manifest, digests[MANIFEST_NAME], environ)
    if pending or statement is not None:
        try:
            with SigningContext.from_trust_config(trust).signer(token, cache=True) as signer:
                results += _sign_pending(signer, verifier, dist, pending, statement)
        except FulcioClientError as exc:
            raise SigningError(
                f"Fulcio ({instance.label}) refused to certify the identity {wanted.identity} from issuer "
                f"{wanted.issuer}: {printable(exc, 200)}"
            ) from None
        except (SigstoreError, StatementError, requests.RequestException) as exc:
            raise SigningError(f"signing with {instance.label} failed: {printable(exc, 200)}") from None
    return sorted(results, key=lambda signed: signed.bundle.name)
