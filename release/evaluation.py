"""The promotion gate's evidence: evaluate's report and a signed in-toto test-result statement.

``invoke evaluate`` decides whether the candidate ONNX may replace the model in use; this module
makes that decision release evidence.  The statement (predicate
``https://in-toto.io/attestation/test-result/v0.1``) has the ONNX as its one subject, so stock
``python -m sigstore verify identity --bundle … ONNX`` accepts it; its ``configuration`` names
the report, the baseline and the manifest (which records the upstream witness) by sha256; its
tests are the gate's rules and the witness, each passed or failed.  ``verify`` checks the
signature, the subject, the report's digest and that the report says what the statement says.

Torch- and numpy-free: the report is read as JSON and held to the few fields used here; the
evaluation package's own schema is the writer's business.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigstore import dsse

from mirror.contract import EVALUATION_NAME, MANIFEST_NAME, MAX_EVALUATION_BYTES, ONNX_NAME
from mirror.errors import InputError
from mirror.hashing import is_sha256_hex, sha256_bytes
from mirror.jsonio import StrictJSONError, loads_strict

from .attestation import StatementError, read_in_toto, statement_subjects
from .redact import printable

PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
REPORT_SCHEMA = "u2netp-mirror-evaluation-v1"
PASS, FAIL = "pass", "fail"


@dataclass(frozen=True)
class EvaluationReport:
    """evaluate's evaluation.json, read once: its bytes, their sha256 and the parsed document."""

    data: bytes
    sha256: str
    document: dict[str, Any]

    @property
    def promoted(self) -> bool:
        return self.document["verdict"]["promoted"] is True

    @property
    def summary(self) -> str:
        return str(self.document["verdict"]["summary"])

    @property
    def candidate_sha256(self) -> str:
        return str(self.document["inputs"]["candidate"]["sha256"])

    @property
    def baseline(self) -> dict[str, Any] | None:
        return self.document["inputs"]["baseline"]


def parse_report(data: bytes, where: str) -> EvaluationReport:
    """The report in ``data``; ``InputError`` naming ``where`` if it is not one evaluate wrote."""
    if len(data) > MAX_EVALUATION_BYTES:
        raise InputError(f"{where}: {len(data):,} bytes, over the {MAX_EVALUATION_BYTES >> 20} MiB a report can be")
    try:
        document = loads_strict(data)
    except StrictJSONError as exc:
        raise InputError(f"{where}: not an evaluation report ({exc})") from None
    try:
        if document["schema"] != REPORT_SCHEMA:
            raise InputError(f"{where}: schema is {printable(document['schema'], 60)!r}, not {REPORT_SCHEMA}")
        verdict, candidate = document["verdict"], document["inputs"]["candidate"]
        fine = (
            isinstance(verdict["promoted"], bool)
            and isinstance(verdict["summary"], str)
            and isinstance(verdict["rules"], list)
            and all(
                isinstance(r, dict) and isinstance(r["rule"], str) and isinstance(r["passed"], bool)
                for r in verdict["rules"]
            )
            and _describes_a_model(candidate, optional=False)
            and _describes_a_model(document["inputs"]["baseline"], optional=True)
        )
    except (KeyError, TypeError):
        fine = False
    if not fine:
        raise InputError(f"{where}: not an evaluation report (no verdict, rules or candidate sha256)")
    return EvaluationReport(data, sha256_bytes(data), document)


def _describes_a_model(model: object, *, optional: bool) -> bool:
    """A report's model record: its file name and sha256 are what the statement repeats."""
    if model is None:
        return optional
    if not isinstance(model, dict):
        return False
    name = model.get("file")
    return is_sha256_hex(model.get("sha256")) and isinstance(name, str) and 0 < len(name) <= 255


def read_report(path: Path) -> EvaluationReport:
    """Read ``path`` once (capped) and parse it."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_EVALUATION_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the evaluation report ({exc.strerror})") from None
    return parse_report(data, str(path))


def tests_of(report: EvaluationReport, manifest: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(passed, failed): every rule of the gate with its numbers, then the upstream witness."""
    passed: list[str] = []
    failed: list[str] = []
    for rule in report.document["verdict"]["rules"]:
        numbers = (
            f"candidate {rule.get('candidate')!r}, baseline {rule.get('reference')!r}, limit {rule.get('limit')!r}"
        )
        (passed if rule["passed"] else failed).append(f"{rule['rule']} ({numbers})")
    witnessed = manifest.get("witness")
    if isinstance(witnessed, dict):
        test = (
            f"upstream witness: {witnessed['images_compared']} of upstream's saved maps within "
            f"{witnessed['threshold']}/255 (worst {witnessed['worst_max_diff']}/255)"
        )
        (passed if witnessed["held"] else failed).append(test)
    return passed, failed


def _run_url(environ: Mapping[str, str]) -> str | None:
    if environ.get("GITHUB_ACTIONS") != "true" or not environ.get("GITHUB_RUN_ID"):
        return None
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ['GITHUB_RUN_ID']}"


def predicate(
    report: EvaluationReport,
    manifest: Mapping[str, Any],
    manifest_sha256: str,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    passed, failed = tests_of(report, manifest)
    configuration: list[dict[str, Any]] = [
        {"name": EVALUATION_NAME, "digest": {"sha256": report.sha256}, "mediaType": "application/json"},
        {"name": MANIFEST_NAME, "digest": {"sha256": manifest_sha256}, "mediaType": "application/json"},
    ]
    if (baseline := report.baseline) is not None:
        configuration.append({"name": f"baseline: {baseline['file']}", "digest": {"sha256": baseline["sha256"]}})
    body: dict[str, Any] = {
        "result": PASS if report.promoted and not failed else FAIL,
        "configuration": configuration,
        "passedTests": passed,
        "warnedTests": [],
        "failedTests": failed,
    }
    if url := _run_url(environ):
        body["url"] = url
    return body


def build_statement(
    report: EvaluationReport,
    onnx_sha256: str,
    manifest: Mapping[str, Any],
    manifest_sha256: str,
    environ: Mapping[str, str] = os.environ,
) -> dsse.Statement:
    """The statement that the evaluation in ``report`` tested the ONNX: it must be about this ONNX."""
    if report.candidate_sha256 != onnx_sha256:
        raise InputError(
            f"{EVALUATION_NAME}: evaluated an ONNX with sha256 {report.candidate_sha256[:16]}…, not this release's "
            f"{onnx_sha256[:16]}…; run `invoke evaluate` on the ONNX in dist"
        )
    return (
        dsse.StatementBuilder()
        .subjects([dsse.Subject(name=ONNX_NAME, digest=dsse.DigestSet({"sha256": onnx_sha256}))])
        .predicate_type(PREDICATE_TYPE)
        .predicate(predicate(report, manifest, manifest_sha256, environ))
        .build()
    )


def read_statement(payload_type: str, payload: bytes) -> dict[str, Any]:
    """The test-result statement a verified envelope carries; ``StatementError`` if it is not one."""
    return read_in_toto(payload_type, payload, PREDICATE_TYPE, PREDICATE_TYPE)


def disagreements(
    statement: Mapping[str, Any],
    report: EvaluationReport,
    onnx_sha256: str,
    manifest: Mapping[str, Any],
    manifest_sha256: str,
) -> list[str]:
    """Where the signed statement and the files beside it do not say the same thing."""
    problems = []
    try:
        subjects = statement_subjects(statement)
    except StatementError as exc:
        return [str(exc)]
    if subjects != {ONNX_NAME: onnx_sha256}:
        problems.append(f"its subjects are {printable(sorted(subjects), 120)}, not exactly {ONNX_NAME} with its sha256")
    expected = predicate(report, manifest, manifest_sha256, {})
    found = statement.get("predicate")
    if not isinstance(found, dict):
        return [*problems, "it has no predicate"]
    for key in ("result", "configuration", "passedTests", "warnedTests", "failedTests"):
        if found.get(key) != expected[key]:
            problems.append(
                f"its {key} is {printable(found.get(key), 120)!r}; the report and manifest beside it give "
                f"{printable(expected[key], 120)!r}"
            )
    return problems
