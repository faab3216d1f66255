"""The statements verify reads are held to their shape before anything in them is used: a
model-signing statement whose subject is not the digest of its resources, or that repeats or
misnames a resource, and an evaluation report that is not one, are refused in one line."""

from __future__ import annotations

import json

import pytest

from mirror.errors import InputError
from release.attestation import PAYLOAD_TYPE, StatementError
from release.evaluation import parse_report
from release.oms import build_statement, read_statement, root_digest

FILES = {"b.onnx": "1" * 64, "a.json": "2" * 64}


def _payload(statement) -> bytes:
    return json.dumps(statement).encode()


def _ours() -> dict:
    return json.loads(build_statement(FILES)._contents)  # sigstore-python keeps the statement JSON private


def test_our_model_signature_reads_back_as_the_files_it_signs():
    statement = _ours()
    assert [resource["name"] for resource in statement["predicate"]["resources"]] == ["a.json", "b.onnx"]
    assert statement["subject"][0]["digest"]["sha256"] == root_digest(FILES)
    assert read_statement(PAYLOAD_TYPE, _payload(statement)) == FILES


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"), "not https://model_signing"),
        (lambda s: s["subject"][0]["digest"].update(sha256="0" * 64), "not the digest of its resources"),
        (lambda s: s["predicate"]["resources"].append(dict(s["predicate"]["resources"][0])), "repeated resource"),
        (lambda s: s["predicate"]["resources"][0].update(digest="XYZ"), "malformed"),
        (lambda s: s["predicate"]["serialization"].update(method="shards"), "not files hashed with sha256"),
        (lambda s: s.pop("subject"), "lacks one subject"),
    ],
)
def test_a_malformed_model_signature_is_refused(spoil, message):
    statement = _ours()
    spoil(statement)
    with pytest.raises(StatementError, match=message):
        read_statement(PAYLOAD_TYPE, _payload(statement))


def test_an_envelope_of_another_payload_type_is_refused():
    with pytest.raises(StatementError, match="not an in-toto statement"):
        read_statement("application/json", _payload(_ours()))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"schema": "u2netp-mirror-evaluation-v1"}',
        b'{"schema": "something-else", "verdict": {}}',
        b'{"schema": "u2netp-mirror-evaluation-v1", "verdict": {"promoted": "yes", "summary": "", "rules": []},'
        b' "inputs": {"candidate": {"sha256": "ab"}, "baseline": null}}',
        b'{"a": NaN}',
        # A baseline without its file name, and a candidate digest that is not hex.
        b'{"schema": "u2netp-mirror-evaluation-v1", "verdict": {"promoted": true, "summary": "", "rules": []},'
        b' "inputs": {"candidate": {"sha256": "'
        + b"a" * 64
        + b'", "file": "c.onnx"}, "baseline": {"sha256": "'
        + b"b" * 64
        + b'"}}}',
        b'{"schema": "u2netp-mirror-evaluation-v1", "verdict": {"promoted": true, "summary": "", "rules": []},'
        b' "inputs": {"candidate": {"sha256": "' + b"Z" * 64 + b'", "file": "c.onnx"}, "baseline": null}}',
    ],
)
def test_what_is_not_an_evaluation_report_is_refused(data):
    with pytest.raises(InputError, match=r"report\.json"):
        parse_report(data, "report.json")
