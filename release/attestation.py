"""The signed build provenance: an in-toto Statement (SLSA provenance v1) over the release files.

The Sigstore bundles of the ONNX and the manifest prove who signed those two files; this
statement says how they were made, in a form standard tools read (``cosign
verify-blob-attestation --type slsaprovenance1``, sigstore-python's DSSE verification): its
subjects are the release files with their sha256, its predicate the upstream commit, the
checkpoint, the export settings, the toolchain and the run that built them.  It is built from
the manifest (no second hashing pass), signed as a DSSE envelope by sigstore-python
(``dsse.StatementBuilder``, ``Signer.sign_dsse``), and checked by ``verify``.

Deterministic except for what GitHub Actions injects (the workflow identity and the run URL).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sigstore import dsse

from mirror import __version__
from mirror.contract import MANIFEST_NAME, ONNX_NAME
from mirror.jsonio import StrictJSONError, loads_strict

from .assets import described_files
from .redact import printable

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# Names this toolkit's build (docs/provenance.md says what its parameters mean).
BUILD_TYPE = "https://u2netp-mirror.invalid/build-types/export/v1"
# Where the statement was made when not in GitHub Actions.
LOCAL_BUILDER = "https://u2netp-mirror.invalid/builders/local"
TOOLCHAIN = ("torch", "onnx", "onnxruntime")


class StatementError(ValueError):
    """A provenance statement that does not say what it must."""


def subjects_of(manifest: Mapping[str, Any], manifest_sha256: str) -> dict[str, str]:
    """The files the statement is about, with their sha256: all taken from the manifest."""
    return {
        ONNX_NAME: manifest["outputs"]["onnx_sha256"],
        MANIFEST_NAME: manifest_sha256,
        **described_files(manifest),
    }


def _run_details(environ: Mapping[str, str]) -> dict[str, Any]:
    builder: dict[str, Any] = {"id": LOCAL_BUILDER, "version": {"u2netp-mirror": __version__}}
    details: dict[str, Any] = {"builder": builder}
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_WORKFLOW_REF"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        # The workflow identity: the same URI Fulcio puts in the signing certificate.
        builder["id"] = f"{server}/{environ['GITHUB_WORKFLOW_REF']}"
        run = f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ.get('GITHUB_RUN_ID', '')}"
        details["metadata"] = {"invocationId": f"{run}/attempts/{environ.get('GITHUB_RUN_ATTEMPT', '1')}"}
    return details


def predicate(manifest: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    upstream, export, toolchain = manifest["upstream"], manifest["export"], manifest["toolchain"]
    args = manifest["run_provenance"]["args"]
    repo = upstream["repo"].removesuffix(".git")
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "upstream": {"repo": repo, "commit": upstream["commit"]},
                "checkpoint_sha256": upstream["checkpoint_sha256"],
                "export": {
                    "opset": export["opset"],
                    "trace_size": [export["height"], export["width"]],
                    "validation_shapes": args["validation_shapes"],
                    "tolerance": manifest["validation"]["tolerance"],
                    "mean_tolerance": manifest["validation"]["mean_tolerance"],
                },
            },
            "internalParameters": {"build_kind": manifest["build_kind"], "model_id": manifest["model_id"]},
            "resolvedDependencies": [
                {"uri": f"git+{repo}@{upstream['commit']}", "digest": {"gitCommit": upstream["commit"]}},
                # The checkpoint is not in the repository: named by its file, identified by its digest.
                {"name": upstream["checkpoint_path"], "digest": {"sha256": upstream["checkpoint_sha256"]}},
                *({"uri": f"pkg:pypi/{name}@{quote(toolchain[name], safe='')}"} for name in TOOLCHAIN),
            ],
        },
        "runDetails": _run_details(environ),
    }


def build_statement(
    manifest: Mapping[str, Any], manifest_sha256: str, environ: Mapping[str, str] = os.environ
) -> dsse.Statement:
    subjects = [
        dsse.Subject(name=name, digest=dsse.DigestSet({"sha256": digest}))
        for name, digest in subjects_of(manifest, manifest_sha256).items()
    ]
    return (
        dsse.StatementBuilder()
        .subjects(subjects)
        .predicate_type(PREDICATE_TYPE)
        .predicate(predicate(manifest, environ))
        .build()
    )


def read_in_toto(payload_type: str, payload: bytes, predicate_type: str, called: str) -> dict[str, Any]:
    """The in-toto Statement v1 a verified DSSE envelope carries, with ``predicate_type`` (named
    ``called`` in the message); ``StatementError`` if it is anything else.  Every statement the
    release signs (provenance, evaluation, model signature) is read through here."""
    if payload_type != PAYLOAD_TYPE:
        raise StatementError(f"the envelope carries {printable(payload_type, 60)!r}, not an in-toto statement")
    try:
        statement = loads_strict(payload)
    except StrictJSONError as exc:
        raise StatementError(f"the statement is not valid JSON ({exc})") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise StatementError(f"not an in-toto Statement v1 (_type must be {STATEMENT_TYPE})")
    if statement.get("predicateType") != predicate_type:
        raise StatementError(f"predicateType is {printable(statement.get('predicateType'), 80)!r}, not {called}")
    return statement


def read_statement(payload_type: str, payload: bytes) -> dict[str, Any]:
    """The provenance statement a verified DSSE envelope carries; ``StatementError`` if wrong."""
    return read_in_toto(payload_type, payload, PREDICATE_TYPE, "SLSA v1")


def statement_subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    """name -> sha256 of every subject; ``StatementError`` for a malformed or repeated one."""
    found: dict[str, str] = {}
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise StatementError("the statement has no subjects")
    for subject in subjects:
        name = subject.get("name") if isinstance(subject, dict) else None
        digest = subject.get("digest", {}).get("sha256") if isinstance(subject, dict) else None
        if not isinstance(name, str) or not isinstance(digest, str) or name in found:
            raise StatementError(f"a malformed or repeated subject {printable(name, 80)!r}")
        found[name] = digest
    return found


def disagreements(statement: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    """Where the statement's build description differs from the signed manifest."""
    expected = predicate(manifest, {})["buildDefinition"]
    try:
        found = statement["predicate"]["buildDefinition"]
        parameters = found["externalParameters"]
        pairs = (
            ("buildType", found["buildType"], expected["buildType"]),
            ("upstream commit", parameters["upstream"]["commit"], manifest["upstream"]["commit"]),
            ("upstream repo", parameters["upstream"]["repo"], expected["externalParameters"]["upstream"]["repo"]),
            ("checkpoint sha256", parameters["checkpoint_sha256"], manifest["upstream"]["checkpoint_sha256"]),
            ("export settings", parameters["export"], expected["externalParameters"]["export"]),
            ("resolved dependencies", found["resolvedDependencies"], expected["resolvedDependencies"]),
        )
    except (KeyError, TypeError):
        return ["the statement's predicate lacks buildDefinition's buildType or externalParameters"]
    return [
        f"the statement says {what} {printable(said, 80)!r}, the manifest {printable(wanted, 80)!r}"
        for what, said, wanted in pairs
        if said != wanted
    ]
