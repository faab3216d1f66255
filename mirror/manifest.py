"""The manifest sidecar: canonical JSON, its JSON Schema, and reading it back.

Torch-free: the verifier reads manifests with this module alone.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .contract import MAX_DOCUMENT_BYTES
from .errors import ManifestError
from .jsonio import StrictJSONError, canonical_json, loads_strict

SCHEMA_ID = "u2netp-mirror-export-manifest-v1"
SCHEMA_RESOURCE = "manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The manifest's JSON Schema, shipped as package data (docs/ holds an identical copy)."""
    text = resources.files("mirror.schema").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)


def schema_problems(document: Any) -> list[str]:
    """Every way ``document`` breaks the schema, as 'path: message' lines (empty if valid)."""
    import jsonschema  # imported here: only validation needs it

    validator = jsonschema.Draft202012Validator(manifest_schema())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        problems.append(f"{where}: {error.message}")
    return problems


def manifest_bytes(path: Path, document: dict[str, Any]) -> bytes:
    """``document`` as the bytes to write to ``path``, after checking it against the schema."""
    problems = schema_problems(document)
    if problems:
        # Our own bug if it happens, but never publish a manifest readers would reject.
        raise ManifestError(f"{path}: manifest does not match its schema ({problems[0]})")
    return canonical_json(document)


# A manifest is about 10 KiB; one far larger is not ours, and is never read whole.
MAX_MANIFEST_BYTES = MAX_DOCUMENT_BYTES


def load_manifest(path: Path) -> dict[str, Any]:
    """Read and schema-check a manifest; raise ``ManifestError`` naming the file if it is bad."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: over {MAX_MANIFEST_BYTES >> 10} KiB; not a manifest (they are about 10 KiB)")
        document = loads_strict(data)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest here") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    except StrictJSONError as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from None
    problems = schema_problems(document)
    if problems:
        raise ManifestError(f"{path}: does not match {SCHEMA_ID} ({problems[0]})")
    return document
