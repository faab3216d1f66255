import json

import jsonschema
import pytest

from mirror.errors import ManifestError
from mirror.manifest import canonical_json, load_manifest, manifest_schema, schema_problems
from tests.helpers import ONNX


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(manifest_schema())


def test_schema_rejects_absolute_paths_and_unknown_keys():
    document = {"schema": "u2netp-mirror-export-manifest-v1", "surprise": 1}
    problems = " ".join(schema_problems(document))
    assert "surprise" in problems and "'upstream' is a required property" in problems
    record = manifest_schema()["properties"]["run_provenance"]["properties"]["inputs"]["items"]
    validator = jsonschema.Draft202012Validator(record)
    good = {"role": "license", "root": "upstream", "path": "LICENSE", "sha256": "0" * 64, "size": 1}
    assert validator.is_valid(good)
    for path in ("/etc/passwd", "../LICENSE", "C:\\x", "a/../../b"):
        assert not validator.is_valid({**good, "path": path}), path


def test_load_manifest_errors_name_the_file(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match=r"m.json: not a readable JSON manifest"):
        load_manifest(path)
    path.write_bytes(canonical_json({"schema": "other"}))
    with pytest.raises(ManifestError, match="does not match u2netp-mirror-export-manifest-v1"):
        load_manifest(path)


def test_canonical_json_is_sorted_indented_and_terminated():
    assert canonical_json({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'.encode()
    assert json.loads(canonical_json({"x": [1]})) == {"x": [1]}


def test_hashes_with_a_trailing_newline_are_refused():
    # Python's re.search lets "$" match before a final newline; lengths pin it down.
    record = manifest_schema()["properties"]["outputs"]
    validator = jsonschema.Draft202012Validator(record)
    good = {"onnx_path": ONNX, "onnx_sha256": "a" * 64, "onnx_size": 1}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "onnx_sha256": "a" * 64 + "\n"})
    commit = jsonschema.Draft202012Validator(manifest_schema()["properties"]["upstream"]["properties"]["commit"])
    assert commit.is_valid("a" * 40) and commit.is_valid("a" * 64)
    assert not commit.is_valid("a" * 40 + "\n") and not commit.is_valid("a" * 64 + "\n")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"schema": "a", "schema": "b"}', "duplicate key 'schema'"),
        ('{"x": NaN}', "NaN is not a JSON number"),
        ('{"x": -Infinity}', "-Infinity is not a JSON number"),
    ],
)
def test_ambiguous_json_is_refused(tmp_path, text, problem):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=problem):
        load_manifest(path)
