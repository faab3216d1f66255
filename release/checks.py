"""``verify``: everything an operator checks before trusting the release files.

Torch-free: it needs the base install only (sigstore, requests, jsonschema).  The signed
manifest is compared with the ONNX's own embedded metadata, and both with the audited pins
this version of the verifier ships: a signature proves who published the files, the pins
prove they are the model that was audited, not a demo build or an unpinned experiment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from cryptography import x509
from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle
from sigstore.verify import Verifier, policy

from mirror.config import check_signer_template
from mirror.contract import (
    EVALUATION_NAME,
    EVALUATION_STATEMENT_NAME,
    MANIFEST_NAME,
    METADATA_IN_MANIFEST,
    MODEL_CARD_NAME,
    OMS_NAME,
    ONNX_NAME,
    PROVENANCE_NAME,
    carried,
    licence_names,
)
from mirror.errors import MirrorError, UsageError
from mirror.hashing import sha256_file
from mirror.metadata import read_metadata
from mirror.settings import CHECKPOINT_PIN_KEY, UpstreamPin

from . import evaluation, oms
from .assets import bundle_path, checked_manifest, described_files, licence_copies
from .attestation import LOCAL_BUILDER, StatementError, disagreements, read_statement, statement_subjects
from .bundles import IdentityRegexp, prehashed, read_bundle, signer_identity
from .errors import VerificationFailed
from .instance import SigstoreInstance
from .redact import printable

T = TypeVar("T")


def _as_text(value: object) -> str:
    # The metadata holds strings only; the manifest's booleans and numbers are compared as written.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Check:
    name: str
    detail: str
    warning: bool = False


GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
_WORKFLOW_IDENTITY = re.compile(r"https://github\.com/(?P<repo>[^/]+/[^/]+)/\.github/workflows/[^@]+@(?P<ref>.+)")


@dataclass(frozen=True)
class ExpectedSigner:
    """Exactly one of ``identity`` / ``identity_regexp``, and the OIDC issuer."""

    issuer: str
    identity: str | None = None
    identity_regexp: str | None = None

    def policy(self) -> policy.VerificationPolicy:
        if (self.identity is None) == (self.identity_regexp is None):
            raise UsageError("give exactly one of --cert-identity and --cert-identity-regexp")
        if self.identity is not None:
            return policy.Identity(identity=self.identity, issuer=self.issuer)
        return IdentityRegexp(self.identity_regexp or "", self.issuer)

    @property
    def label(self) -> str:
        return f"{self.identity or '~' + (self.identity_regexp or '')} ({self.issuer})"

    def source(self) -> tuple[str, str] | None:
        """(source repository URI, ref) a GitHub Actions workflow identity implies, else None.

        ``https://github.com/OWNER/REPO/.github/workflows/F@REF`` ran on OWNER/REPO at REF: a
        certificate whose source-repository extensions (Fulcio's OIDs …1.12 and …1.14) name
        another repository or ref was made by a run elsewhere (a reusable workflow called from
        another repository), whatever its SAN.
        """
        found = _WORKFLOW_IDENTITY.fullmatch(self.identity or "")
        if self.issuer != GITHUB_ACTIONS_ISSUER or found is None:
            return None
        return f"https://github.com/{found['repo']}", found["ref"]

    def admits(self, identity: str, issuer: str) -> bool:
        """Whether a certificate for ``identity`` from ``issuer`` would pass this policy."""
        if issuer != self.issuer:
            return False
        if self.identity is not None:
            return identity == self.identity
        try:
            return re.fullmatch(self.identity_regexp or "", identity) is not None
        except re.error as exc:
            raise UsageError(
                f"--cert-identity-regexp {self.identity_regexp!r}: not a regular expression ({exc})"
            ) from None

    @classmethod
    def from_config(
        cls,
        sigstore: Mapping[str, Any],
        *,
        identity: str | None = None,
        identity_regexp: str | None = None,
        issuer: str | None = None,
        repo: str | None = None,
        tag: str | None = None,
    ) -> ExpectedSigner:
        """The signer to demand: the one given, else the release workflow of ``repo`` at ``tag``.

        ``sigstore`` is the ``u2netp.sigstore`` config: ``cert_identity`` (a template with
        {repo} and {tag}) and ``cert_oidc_issuer``.
        """
        chosen_issuer = issuer or str(sigstore["cert_oidc_issuer"])
        if identity or identity_regexp:
            return cls(issuer=chosen_issuer, identity=identity or None, identity_regexp=identity_regexp or None)
        if not repo or not tag:
            raise UsageError(
                "which signer to expect? pass --cert-identity (or --cert-identity-regexp), or --repo and --tag "
                "to expect that repository's release workflow"
            )
        template = check_signer_template(sigstore["cert_identity"])
        return cls(issuer=chosen_issuer, identity=template.format(repo=repo, tag=tag))


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


def _source_holds(path: Path, expected: ExpectedSigner) -> Check | None:
    """The source repository and ref in the signing certificate's GitHub extensions, where it has
    them, against those the expected workflow identity implies; None when there is nothing to hold."""
    wanted = expected.source()
    if wanted is None:
        return None
    certificate = read_bundle(bundle_path(path)).signing_certificate
    checked = []
    for rule, oid in (
        (policy.OIDCSourceRepositoryURI(wanted[0]), "1.3.6.1.4.1.57264.1.12"),
        (policy.OIDCSourceRepositoryRef(wanted[1]), "1.3.6.1.4.1.57264.1.14"),
    ):
        try:
            certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
        except x509.ExtensionNotFound:
            continue  # a certificate from an issuer that writes no such extension
        try:
            rule.verify(certificate)
        except SigstoreError as exc:
            raise VerificationFailed("source repository", f"{bundle_path(path).name}: {printable(exc, 240)}") from None
        checked.append(oid)
    if not checked:
        return None
    return Check("source repository", f"{wanted[0]} at {wanted[1]}, as the certificate's GitHub extensions say")


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
    """Each way the signed manifest departs from the audited pins the verifier ships, or the pins
    are incomplete: a pin that is not set (no checkpoint audited yet) is a problem, never a skip."""
    upstream = manifest["upstream"]
    problems = []
    if manifest["build_kind"] != "audited":
        problems.append(f"build_kind is {manifest['build_kind']!r} (signed), the audited model is an 'audited' build")
    witnessed = manifest.get("witness")
    held = isinstance(witnessed, dict) and witnessed.get("held") is True
    if manifest["build_kind"] == "audited" and not held:
        problems.append("build_kind is 'audited' (signed), but the manifest records no upstream witness that held")
    elif not held:
        said = (
            f"did not hold (worst {printable(witnessed.get('worst_max_diff'), 10)}/255, signed)"
            if isinstance(witnessed, dict)
            else "was not measured (the checkout held no test set)"
        )
        problems.append(f"the upstream witness {said}: nothing shows these weights are upstream's")
    if upstream["pin"]["source"] != "config":
        problems.append(f"upstream.pin.source is {upstream['pin']['source']!r} (signed), not the project's pins")
    if not upstream["pinned"]:
        signed = upstream.get("pin_problems") or []
        said = f": {'; '.join(printable(p, 200) for p in signed)}" if signed else ""
        problems.append(f"upstream.pinned is false (signed), a pin did not hold at export{said}")
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
        if audited is None:
            problems.append(
                f"{field}: the pins this verifier holds set no {CHECKPOINT_PIN_KEY} (no checkpoint has been audited), "
                "so no release is the audited model"
            )
        elif signed != audited:
            problems.append(f"{field} is {signed[:16]}… (signed), the audited pin is {audited[:16]}…")
    return problems


# The first version that signs a provenance statement; releases made before it have none.
PROVENANCE_SINCE = "0.2.0"


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _files_present(dist: Path, provenance: bool) -> str:
    # The licence copies are checked against the manifest, which says whether there is a NOTICE.
    names = [name for name in carried(notice=False, provenance=provenance) if name not in licence_names()]
    for name in names:
        if not (dist / name).is_file():
            hint = (
                " (--no-provenance only for releases made before u2netp-mirror 0.2.0)"
                if name == PROVENANCE_NAME
                else ""
            )
            raise VerificationFailed("files present", f"{dist / name}: missing{hint}")
    return "ONNX, manifest, their Sigstore bundles" + (
        ", the signed provenance and the model signature" if provenance else ""
    )


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


def _licences_match(dist: Path, manifest: dict[str, Any], sha256_of: Callable[[Path], str]) -> dict[str, str]:
    """The licence copies' sha256, once each is the file the (signed) manifest records."""
    licences = licence_copies(manifest)
    for name, expected_sha256 in licences.items():
        path = dist / name
        if not path.is_file():
            raise VerificationFailed("licence files", f"{path}: missing (the release carries upstream's licence)")
        if sha256_of(path) != expected_sha256:
            raise VerificationFailed("licence files", f"{path}: is not the upstream licence file the manifest records")
    return licences


def _card_matches(dist: Path, manifest: dict[str, Any], sha256_of: Callable[[Path], str]) -> dict[str, str]:
    """The model card's sha256, once it is the card the (signed) manifest records (0.3.0 and later)."""
    card = {name: digest for name, digest in described_files(manifest).items() if name == MODEL_CARD_NAME}
    for name, expected_sha256 in card.items():
        if not (dist / name).is_file() or sha256_of(dist / name) != expected_sha256:
            raise VerificationFailed("model card", f"{dist / name}: missing, or not the card the manifest records")
    return card


def _signed_statement(
    verifier: Verifier,
    path: Path,
    expected: policy.VerificationPolicy,
    reader: Callable[[str, bytes], T],
    check: str,
) -> tuple[Bundle, T]:
    """``path``'s bundle and the statement its DSSE envelope carries, once the envelope verifies for
    ``expected`` and ``reader`` accepts the statement; else one line naming ``check``."""
    try:
        bundle = read_bundle(path)
        return bundle, reader(*verifier.verify_dsse(bundle, expected))
    except MirrorError as exc:
        raise VerificationFailed(check, str(exc)) from None
    except (SigstoreError, requests.RequestException) as exc:
        raise VerificationFailed(check, f"{path.name} does not verify: {printable(exc, 240)}") from None
    except StatementError as exc:
        raise VerificationFailed(check, f"{path.name}: {exc}") from None


def _provenance_holds(
    verifier: Verifier,
    dist: Path,
    expected: policy.VerificationPolicy,
    manifest: dict[str, Any],
    digests: dict[str, str],
) -> str:
    """The signed statement: same signer, its subjects are exactly these files, its build is the manifest's."""
    path = dist / PROVENANCE_NAME
    bundle, statement = _signed_statement(verifier, path, expected, read_statement, "provenance")
    try:
        subjects = statement_subjects(statement)
    except StatementError as exc:
        raise VerificationFailed("provenance", f"{path.name}: {exc}") from None
    for name, digest in digests.items():
        if subjects.get(name) != digest:
            said = f"sha256 {subjects[name][:16]}…" if name in subjects else "no subject"
            raise VerificationFailed(
                "provenance", f"the statement gives {name} {said}, the file has sha256 {digest[:16]}…"
            )
    if extra := sorted(set(subjects) - set(digests)):
        raise VerificationFailed("provenance", f"the statement names files the release does not carry: {extra}")
    if problems := disagreements(statement, manifest):
        raise VerificationFailed("provenance", problems[0])
    builder = _builder_id(statement)
    signer = signer_identity(bundle.signing_certificate).identity
    # The builder must be the identity that signed (the release workflow, as in the certificate),
    # or say honestly that the build ran outside GitHub Actions; never another workflow.
    if builder not in (signer, LOCAL_BUILDER):
        raise VerificationFailed(
            "provenance",
            f"the statement names the builder {printable(builder, 120)!r}, but it was signed by {signer}: "
            "a statement must name the workflow that signed it",
        )
    return f"in-toto SLSA v1 statement over {len(subjects)} files, same signer, built by {printable(builder, 120)}"


def _builder_id(statement: dict[str, Any]) -> str:
    details = statement.get("predicate", {}).get("runDetails") if isinstance(statement.get("predicate"), dict) else None
    builder = details.get("builder") if isinstance(details, dict) else None
    found = builder.get("id") if isinstance(builder, dict) else None
    if not isinstance(found, str):
        raise VerificationFailed("provenance", "the statement names no runDetails.builder.id")
    return found


def _pins_hold(manifest: dict[str, Any], pins: UpstreamPin, allow_unpinned: bool) -> Check:
    if problems := pin_disagreements(manifest, pins):
        every = "; ".join(problems)
        if not allow_unpinned:
            raise VerificationFailed(
                "audited pins", f"{every}; this is not the audited model (--allow-unpinned accepts it)"
            )
        return Check("audited pins", f"WARNING: not the audited model: {every}", warning=True)
    return Check("audited pins", f"build {manifest['build_kind']}, upstream {manifest['upstream']['commit'][:12]}")


def _witness_reported(witnessed: dict[str, Any]) -> Check:
    """The upstream witness the signed manifest records: reported, and a warning if it did not hold."""
    summary = (
        f"{witnessed['images_compared']} of upstream's saved maps, worst {witnessed['worst_max_diff']}/255 "
        f"(at most {witnessed['threshold']})"
    )
    if witnessed["held"]:
        return Check("upstream witness", f"held: {summary}")
    return Check("upstream witness", f"WARNING: did not hold: {summary}", warning=True)


def _evaluation_holds(
    verifier: Verifier,
    dist: Path,
    expected: policy.VerificationPolicy,
    manifest: dict[str, Any],
    digests: dict[str, str],
    required: bool,
) -> Check:
    """The signed evaluation: same signer, about this ONNX, and the report beside it is the one it names."""
    path, report_path = dist / EVALUATION_STATEMENT_NAME, dist / EVALUATION_NAME
    if not report_path.is_file():
        raise VerificationFailed("evaluation", f"{report_path}: missing (the signed evaluation names it)")
    try:
        report = evaluation.read_report(report_path)
    except MirrorError as exc:
        raise VerificationFailed("evaluation", str(exc)) from None
    _, statement = _signed_statement(verifier, path, expected, evaluation.read_statement, "evaluation")
    onnx_sha256, manifest_sha256 = digests[ONNX_NAME], digests[MANIFEST_NAME]
    if report.candidate_sha256 != onnx_sha256:
        raise VerificationFailed(
            "evaluation", f"{report_path.name} evaluated another ONNX (sha256 {report.candidate_sha256[:16]}…)"
        )
    if problems := evaluation.disagreements(statement, report, onnx_sha256, manifest, manifest_sha256):
        raise VerificationFailed("evaluation", f"{path.name}: {problems[0]}")
    baseline = report.baseline
    against = f"against {printable(baseline['file'], 60)} ({baseline['sha256'][:12]})" if baseline else "no baseline"
    passed, failed = evaluation.tests_of(report, manifest)
    detail = f"{report.summary}; {against}; {len(passed)} tests passed, {len(failed)} failed"
    if statement["predicate"]["result"] != evaluation.PASS:
        if required:
            raise VerificationFailed("evaluation", f"the signed evaluation did not pass: {detail}")
        return Check("evaluation", f"WARNING: did not pass: {detail}", warning=True)
    return Check("evaluation", f"pass: {detail}")


def _model_signature_holds(
    verifier: Verifier,
    dist: Path,
    expected: policy.VerificationPolicy,
    manifest: dict[str, Any],
    sha256_of: Callable[[Path], str],
) -> str:
    """The OpenSSF model-signing signature: same signer, and it names exactly the release's files with their sha256."""
    path = dist / OMS_NAME
    _, signed = _signed_statement(verifier, path, expected, oms.read_statement, "model signature")
    evaluated = (dist / EVALUATION_STATEMENT_NAME).is_file()
    names = [n for n in carried(notice=manifest["upstream"]["notice_present"], evaluation=evaluated) if n != OMS_NAME]
    if sorted(signed) != sorted(names):
        raise VerificationFailed(
            "model signature",
            f"{path.name} names {printable(sorted(signed), 200)}, the release carries {sorted(names)}",
        )
    for name in names:
        if sha256_of(dist / name) != signed[name]:
            raise VerificationFailed("model signature", f"{name}: not the file {path.name} signs")
    return f"OpenSSF model signing v1.0 over {len(names)} files, same signer"


def _skip_provenance(manifest: dict[str, Any]) -> Check:
    made_by = str(manifest["toolchain"]["u2netp_mirror"])
    if _version(made_by) >= _version(PROVENANCE_SINCE):
        raise VerificationFailed(
            "provenance",
            f"this release was made by u2netp-mirror {printable(made_by, 20)}, which signs its provenance; "
            f"--no-provenance is only for releases made before {PROVENANCE_SINCE}",
        )
    return Check("provenance", f"skipped: --no-provenance, a release made by u2netp-mirror {made_by}", warning=True)


def verify_release(
    dist: Path,
    expected: ExpectedSigner,
    instance: SigstoreInstance,
    pins: UpstreamPin,
    *,
    allow_unpinned: bool = False,
    provenance: bool = True,
    require_evaluation: bool = False,
    on_check: Callable[[Check], None] = lambda check: None,
    known_sha256: Mapping[str, str] | None = None,
) -> list[Check]:
    """Run every check; raise ``VerificationFailed`` (naming the check) at the first failure.

    ``pins`` are the audited pins to hold the manifest to; ``allow_unpinned`` turns a mismatch
    into a warning (a ``Check`` with ``warning=True``) instead of a failure.  ``provenance=False``
    skips the signed provenance, for releases older than it only.  A signed evaluation is checked
    where the release carries one; ``require_evaluation`` fails a release without one, or whose
    evaluation did not pass.  ``on_check`` sees each check
    as it passes, so a caller can show progress.  ``known_sha256`` (name -> sha256) saves
    hashing files the caller has just hashed.
    """
    passed: list[Check] = []

    def record(check: Check) -> None:
        passed.append(check)
        on_check(check)

    identity_policy = expected.policy()
    record(Check("files present", _files_present(dist, provenance)))
    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    onnx_path, manifest_path = dist / ONNX_NAME, dist / MANIFEST_NAME
    known = dict(known_sha256 or {})

    def sha256_of(path: Path) -> str:
        # A caller that has just hashed the files (attach's preflight) passes their digests; each
        # other file is hashed once, though the licence, card and model-signature checks all ask.
        if path.name not in known:
            known[path.name] = sha256_file(path)
        return known[path.name]

    digests = {ONNX_NAME: sha256_of(onnx_path), MANIFEST_NAME: sha256_of(manifest_path)}
    for name, digest in digests.items():
        record(Check(f"{name} signature", _signature_check(verifier, dist / name, digest, identity_policy)))
    if (source := _source_holds(onnx_path, expected)) is not None:
        record(source)

    manifest, _ = checked_manifest(dist, digests[ONNX_NAME])
    record(Check("manifest schema", manifest["schema"]))
    if (witnessed := manifest.get("witness")) is not None:
        record(_witness_reported(witnessed))
    record(Check("onnx sha256", f"{digests[ONNX_NAME]} = manifest outputs.onnx_sha256"))
    record(Check("onnx metadata", _metadata_agrees(onnx_path, manifest)))
    record(_pins_hold(manifest, pins, allow_unpinned))
    licences = _licences_match(dist, manifest, sha256_of)
    record(Check("licence files", f"{', '.join(licences)} match the manifest's sha256"))
    if card := _card_matches(dist, manifest, sha256_of):
        record(Check("model card", f"{MODEL_CARD_NAME} matches the manifest's outputs.model_card_sha256"))
    if provenance:
        detail = _provenance_holds(verifier, dist, identity_policy, manifest, {**digests, **licences, **card})
        record(Check("provenance", detail))
    else:
        record(_skip_provenance(manifest))
    if (dist / EVALUATION_STATEMENT_NAME).is_file():
        record(_evaluation_holds(verifier, dist, identity_policy, manifest, digests, require_evaluation))
    elif require_evaluation:
        raise VerificationFailed(
            "evaluation", "the release carries no signed evaluation, and --require-evaluation demands one"
        )
    else:
        record(Check("evaluation", "none in this release (--require-evaluation demands one)"))
    if provenance:
        record(Check("model signature", _model_signature_holds(verifier, dist, identity_policy, manifest, sha256_of)))
    return passed
