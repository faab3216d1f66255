"""Sigstore bundles of release files: reading, checking one file against its bundle, writing.

Files are hashed in chunks and handed to sigstore-python pre-hashed, so a large ONNX is
never read into memory whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.x509 import (
    Certificate,
    ObjectIdentifier,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
    UnrecognizedExtension,
)
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle
from sigstore.verify import Verifier, policy
from sigstore_models.common.v1 import HashAlgorithm

from mirror.contract import BUNDLE_SUFFIX, MAX_DOCUMENT_BYTES, PROVENANCE_NAME
from mirror.errors import InputError, MirrorError, UsageError

_FULCIO_ISSUER = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


def prehashed(sha256_hex: str) -> Hashed:
    """A file's sha256 in the form sigstore-python signs and verifies without re-reading it."""
    return Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(sha256_hex))


# A Sigstore bundle is a few KiB (a certificate chain, a log entry, a signature or a small
# DSSE envelope); a file far larger is not one, and is never read whole.
MAX_BUNDLE_BYTES = MAX_DOCUMENT_BYTES


def read_bundle(path: Path) -> Bundle:
    """Parse a Sigstore bundle; raise ``MirrorError`` naming the file if it is not one."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BUNDLE_BYTES + 1)
        if len(data) > MAX_BUNDLE_BYTES:
            raise InputError(f"{path}: over {MAX_BUNDLE_BYTES >> 10:,} KiB; not a Sigstore bundle (they are a few KiB)")
        return Bundle.from_json(data)
    except FileNotFoundError:
        raise InputError(f"{path}: missing") from None
    except (SigstoreError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a Sigstore bundle ({first[:160]})") from None


@dataclass(frozen=True)
class SignerIdentity:
    """Who signed: the certificate's SAN and OIDC issuer."""

    identity: str
    issuer: str


def signer_identity(certificate: Certificate) -> SignerIdentity:
    sans = certificate.extensions.get_extension_for_class(SubjectAlternativeName).value
    names = sans.get_values_for_type(UniformResourceIdentifier) + sans.get_values_for_type(RFC822Name)
    # Fulcio's issuer extension is not one cryptography knows: it comes back unrecognised, raw.
    issuer = certificate.extensions.get_extension_for_oid(_FULCIO_ISSUER).value
    raw = issuer.value if isinstance(issuer, UnrecognizedExtension) else b""
    return SignerIdentity(identity=names[0] if names else "", issuer=raw.decode())


def log_index(bundle: Bundle) -> int:
    # Read from the bundle's public JSON form rather than sigstore-python's private model.
    return int(json.loads(bundle.to_json())["verificationMaterial"]["tlogEntries"][0]["logIndex"])


class IdentityRegexp:
    """Like cosign's --certificate-identity-regexp: the SAN must fully match ``pattern``."""

    def __init__(self, pattern: str, issuer: str) -> None:
        try:
            self._pattern = re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"--cert-identity-regexp {pattern!r}: not a regular expression ({exc})") from None
        self._issuer = policy.OIDCIssuer(issuer)

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        self._issuer.verify(cert)
        sans = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        names = sans.get_values_for_type(UniformResourceIdentifier) + sans.get_values_for_type(RFC822Name)
        if not any(self._pattern.fullmatch(name) for name in names):
            raise VerificationError(f"certificate's SANs {names} do not match {self._pattern.pattern!r}")


def serves_as_ours(
    verifier: Verifier,
    bundle: Bundle,
    name: str,
    digests: Mapping[str, str],
    subjects: Mapping[str, str],
    signer: policy.VerificationPolicy,
) -> bool:
    """Would ``bundle``, found as release file ``name``, do as well as a signature we would make?

    A file's bundle: it verifies for that file's digest (in ``digests``) and the signer.  The
    provenance: its statement verifies for the signer and names exactly ``subjects``; its run
    details may differ (another run of the same release), since the files are what it attests.
    Sign keeps such a bundle instead of signing again; attach treats one on the release as
    equal to ours.  Anything unreadable, stale or someone else's is not.
    """
    from .attestation import read_statement, statement_subjects

    try:
        if name == PROVENANCE_NAME:
            return statement_subjects(read_statement(*verifier.verify_dsse(bundle, signer))) == dict(subjects)
        artifact = name.removesuffix(BUNDLE_SUFFIX)
        if artifact == name or artifact not in digests:
            return False
        verifier.verify_artifact(prehashed(digests[artifact]), bundle, signer)
        return True
    except (MirrorError, SigstoreError, ValueError):  # a StatementError is a ValueError too
        return False


def model_signature_serves(
    verifier: Verifier, bundle: Bundle, files: Mapping[str, str], signer: policy.VerificationPolicy
) -> bool:
    """Would ``bundle`` do as the release's model signature: it verifies for the signer and
    signs exactly ``files`` (name -> sha256), every other file of the release as it will be."""
    from .oms import read_statement

    try:
        return read_statement(*verifier.verify_dsse(bundle, signer)) == dict(files)
    except (MirrorError, SigstoreError, ValueError):  # a StatementError is a ValueError too
        return False
