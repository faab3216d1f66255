"""``sign``: keyless Sigstore signatures for the ONNX and the manifest, and the signed provenance.

Bundles: one per file (the ONNX, the manifest) and one DSSE envelope holding the in-toto
statement over the release (``attestation.py``); the signed evaluation (``evaluation.py``) when
the release carries the promotion gate's report; and, last, the OpenSSF model-signing signature
over every other file (``oms.py``).  Before any request to Fulcio the identity
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

from mirror.atomic import write_bytes_atomic, write_files_atomic
from mirror.contract import (
    EVALUATION_NAME,
    EVALUATION_STATEMENT_NAME,
    MANIFEST_NAME,
    OMS_NAME,
    ONNX_NAME,
    PROVENANCE_NAME,
    carried,
)
from mirror.errors import InputError, MirrorError
from mirror.hashing import sha256_file

from . import evaluation
from .assets import bundle_path, checked_manifest, described_files
from .attestation import StatementError, build_statement, read_statement, subjects_of
from .bundles import (
    SignerIdentity,
    log_index,
    model_signature_serves,
    prehashed,
    read_bundle,
    serves_as_ours,
    signer_identity,
)
from .checks import ExpectedSigner
from .errors import SigningError, VerificationFailed
from .identity import certificate_identity, resolve_identity_token
from .instance import SigstoreInstance
from .oms import build_statement as oms_statement
from .oms import read_statement as oms_files
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
    for name, expected in described_files(manifest).items():
        if not (dist / name).is_file() or sha256_file(dist / name) != expected:
            raise SigningError(f"refusing to sign: {dist / name} is missing or is not the file the manifest records")
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


# A statement to sign, where its bundle goes, and how a verified envelope is read back.
_Statement = tuple[Any, str, Any]


def _sign_pending(
    signer: Any,
    verifier: Verifier,
    dist: Path,
    pending: dict[str, str],
    statements: list[_Statement],
    evaluation_report: evaluation.EvaluationReport | None,
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
    for statement, name, reader in statements:
        signed = signer.sign_dsse(statement)
        who = signer_identity(signed.signing_certificate)
        reader(*verifier.verify_dsse(signed, policy.Identity(identity=who.identity, issuer=who.issuer)))
        path = dist / name
        files = {path: signed.to_json().encode("utf-8")}
        if name == EVALUATION_STATEMENT_NAME and evaluation_report is not None:
            # The report and the statement naming its sha256 arrive together, or neither does.
            files[dist / EVALUATION_NAME] = evaluation_report.data
        write_files_atomic(files)
        results.append(SignedFile(path, path, who, log_index(signed), kept=False))
    return results


def _release_digests(dist: Path, manifest: dict[str, Any], digests: dict[str, str]) -> dict[str, str]:
    """name -> sha256 of every file the release carries, as dist holds them now, but the model signature."""
    evaluated = (dist / EVALUATION_STATEMENT_NAME).is_file()
    names = carried(notice=manifest["upstream"]["notice_present"], evaluation=evaluated)
    return {name: digests.get(name) or sha256_file(dist / name) for name in names if name != OMS_NAME}


def _oms_current(
    verifier: Verifier, dist: Path, manifest: dict[str, Any], digests: dict[str, str], signer: Any
) -> bool:
    """dist's model signature is kept if it verifies for this signer and names exactly dist's files."""
    path = dist / OMS_NAME
    if not path.is_file():
        return False
    try:
        bundle = read_bundle(path)
    except MirrorError:
        return False  # unreadable: it gets replaced
    return model_signature_serves(verifier, bundle, _release_digests(dist, manifest, digests), signer)


def _evaluation_report(dist: Path, given: Path | None, onnx_sha256: str) -> evaluation.EvaluationReport | None:
    """The promotion gate's report to sign: ``given``, or the one dist already carries; None without either."""
    path = given if given is not None else dist / EVALUATION_NAME
    if given is None and not path.is_file():
        return None
    try:
        report = evaluation.read_report(path)
    except InputError as exc:
        raise SigningError(f"refusing to sign: {exc}") from None
    if report.candidate_sha256 != onnx_sha256:
        raise SigningError(
            f"refusing to sign: {path} evaluated an ONNX with sha256 {report.candidate_sha256[:16]}…, not "
            f"{dist / ONNX_NAME} ({onnx_sha256[:16]}…); run `invoke evaluate` on the ONNX in dist"
        )
    if not report.promoted:
        raise SigningError(f"refusing to sign: {path}: the gate did not promote this ONNX ({report.summary})")
    return report


def _evaluation_current(
    verifier: Verifier,
    dist: Path,
    report: evaluation.EvaluationReport,
    digests: dict[str, str],
    manifest: dict[str, Any],
    signer: Any,
) -> bool:
    """dist's signed evaluation is kept if it verifies for this signer and says what ``report`` says."""
    path = dist / EVALUATION_STATEMENT_NAME
    if not path.is_file() or not (dist / EVALUATION_NAME).is_file():
        return False
    try:
        statement = evaluation.read_statement(*verifier.verify_dsse(read_bundle(path), signer))
    except (MirrorError, SigstoreError, StatementError, requests.RequestException):
        return False
    on_disk = sha256_file(dist / EVALUATION_NAME) == report.sha256
    return on_disk and not evaluation.disagreements(
        statement, report, digests[ONNX_NAME], manifest, digests[MANIFEST_NAME]
    )


def _statements_to_sign(
    verifier: Verifier,
    dist: Path,
    manifest: dict[str, Any],
    digests: dict[str, str],
    report: evaluation.EvaluationReport | None,
    signer: Any,
    environ: Mapping[str, str],
) -> tuple[list[Path], list[_Statement]]:
    """The statement bundles dist holds that still serve (kept), and the statements to sign anew:
    the provenance always, the evaluation when there is a report."""
    kept: list[Path] = []
    statements: list[_Statement] = []
    provenance = dist / PROVENANCE_NAME
    if _current(verifier, provenance, digests, subjects_of(manifest, digests[MANIFEST_NAME]), signer):
        kept.append(provenance)
    else:
        statements.append((build_statement(manifest, digests[MANIFEST_NAME], environ), PROVENANCE_NAME, read_statement))
    if report is not None:
        if _evaluation_current(verifier, dist, report, digests, manifest, signer):
            kept.append(dist / EVALUATION_STATEMENT_NAME)
        else:
            statement = evaluation.build_statement(
                report, digests[ONNX_NAME], manifest, digests[MANIFEST_NAME], environ
            )
            statements.append((statement, EVALUATION_STATEMENT_NAME, evaluation.read_statement))
    return kept, statements


def sign_release(
    dist: Path,
    instance: SigstoreInstance,
    identity_token: str | None = None,
    *,
    expected: ExpectedSigner,
    manifest_sha256: str | None = None,
    environ: Mapping[str, str] = os.environ,
    evaluation_report: Path | None = None,
) -> list[SignedFile]:
    """Sign dist's ONNX and manifest, the provenance statement over the release files, and the
    evaluation: ``evaluation_report`` (an evaluation.json of dist's ONNX whose gate promoted it,
    copied into dist beside its statement) or the report dist already carries.

    Refuses before asking for a token if dist is not consistent (the ONNX and the licence copies
    are the ones the manifest describes; the manifest has ``manifest_sha256`` when given; the
    evaluation is of this ONNX and promoted it), and before any request to Fulcio if the token's
    identity is not one ``expected`` admits.
    """
    manifest, digests = _checked_dist(dist, manifest_sha256)
    report = _evaluation_report(dist, evaluation_report, digests[ONNX_NAME])
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
    kept, statements = _statements_to_sign(verifier, dist, manifest, digests, report, same_signer, environ)
    results += [SignedFile(path, path, wanted, log_index(read_bundle(path)), kept=True) for path in kept]
    oms = dist / OMS_NAME
    # Signed last: the model-signing statement covers every other file, the new bundles included.
    oms_current = not pending and not statements and _oms_current(verifier, dist, manifest, digests, same_signer)
    if oms_current:
        results.append(SignedFile(oms, oms, wanted, log_index(read_bundle(oms)), kept=True))
    if pending or statements or not oms_current:
        try:
            with SigningContext.from_trust_config(trust).signer(token, cache=True) as signer:
                results += _sign_pending(signer, verifier, dist, pending, statements, report)
                if not oms_current:
                    over_the_release = oms_statement(_release_digests(dist, manifest, digests))
                    results += _sign_pending(
                        signer, verifier, dist, {}, [(over_the_release, OMS_NAME, oms_files)], None
                    )
        except FulcioClientError as exc:
            raise SigningError(
                f"Fulcio ({instance.label}) refused to certify the identity {wanted.identity} from issuer "
                f"{wanted.issuer}: {printable(exc, 200)}"
            ) from None
        except (SigstoreError, StatementError, requests.RequestException) as exc:
            raise SigningError(f"signing with {instance.label} failed: {printable(exc, 200)}") from None
    return sorted(results, key=lambda signed: signed.bundle.name)
