"""``invoke sign``: keyless Sigstore signatures for the ONNX and the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests
from sigstore._internal.fulcio.client import FulcioClientError  # what sigstore-python raises for Fulcio's 4xx
from sigstore.errors import Error as SigstoreError
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from mirror.atomic import write_bytes_atomic
from mirror.errors import MirrorError
from mirror.hashing import sha256_file
from mirror.settings import MANIFEST_NAME, ONNX_NAME

from .assets import bundle_path, checked_manifest
from .bundles import SignerIdentity, log_index, prehashed, read_bundle, signer_identity
from .errors import SigningError, VerificationFailed
from .identity import certificate_identity, resolve_identity_token
from .instance import SigstoreInstance
from .redact import printable


@dataclass(frozen=True)
class SignedFile:
    path: Path
    bundle: Path
    signer: SignerIdentity
    log_index: int
    kept: bool  # an existing valid bundle was kept instead of signing again


def _existing_bundle_is_current(verifier: Verifier, bundle: Path, digest: str, wanted: policy.Identity) -> bool:
    if not bundle.is_file():
        return False
    try:
        verifier.verify_artifact(prehashed(digest), read_bundle(bundle), wanted)
    except (MirrorError, SigstoreError):
        return False  # unreadable, stale or someone else's: it gets replaced
    return True


def sign_release(dist: Path, instance: SigstoreInstance, identity_token: str | None = None) -> list[SignedFile]:
    """Sign dist's ONNX and manifest, writing ``<file>.sigstore.json`` beside each.

    Refuses before asking for a token if the ONNX is not the one the manifest describes.
    Every new bundle is verified against the identity in its own certificate before it is
    written; an existing bundle that already verifies for this file and signer is kept.
    """
    try:
        _, onnx_sha256 = checked_manifest(dist)
    except VerificationFailed as exc:
        raise SigningError(f"refusing to sign: {exc}") from None
    token = resolve_identity_token(identity_token, instance)
    wanted = SignerIdentity(certificate_identity(token), token.issuer)
    trust = instance.client_trust_config
    verifier = Verifier(trusted_root=trust.trusted_root)

    digests = {ONNX_NAME: onnx_sha256, MANIFEST_NAME: sha256_file(dist / MANIFEST_NAME)}
    results: list[SignedFile] = []
    pending: list[str] = []
    for name, digest in digests.items():
        bundle = bundle_path(dist / name)
        if _existing_bundle_is_current(
            verifier, bundle, digest, policy.Identity(identity=wanted.identity, issuer=wanted.issuer)
        ):
            parsed = read_bundle(bundle)
            results.append(SignedFile(dist / name, bundle, wanted, log_index(parsed), kept=True))
        else:
            pending.append(name)
    if not pending:
        return results

    try:
        context = SigningContext.from_trust_config(trust)
        with context.signer(token, cache=True) as signer:
            for name in pending:
                path, digest = dist / name, digests[name]
                signed = signer.sign_artifact(prehashed(digest))
                who = signer_identity(signed.signing_certificate)
                # Sign-then-verify: the bundle must verify for the identity it claims before
                # anything is written.
                verifier.verify_artifact(
                    prehashed(digest), signed, policy.Identity(identity=who.identity, issuer=who.issuer)
                )
                write_bytes_atomic(bundle_path(path), signed.to_json().encode("utf-8"))
                results.append(SignedFile(path, bundle_path(path), who, log_index(signed), kept=False))
    except FulcioClientError as exc:
        raise SigningError(
            f"Fulcio ({instance.label}) refused to certify the identity {wanted.identity} from issuer "
            f"{wanted.issuer}: {printable(exc, 200)}"
        ) from None
    except (SigstoreError, requests.RequestException) as exc:
        raise SigningError(f"signing with {instance.label} failed: {printable(exc, 200)}") from None
    return sorted(results, key=lambda signed: signed.path.name)
