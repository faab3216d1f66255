"""JSON in and out: one canonical byte form for what we write, a strict reader for what we read.

Torch-free.  The strict reader is for documents that cross a trust boundary (a manifest from a
release, an answer from GitHub): Python's ``json`` module silently keeps the last of two
duplicate keys and accepts ``NaN`` and ``Infinity``, so two readers of the same bytes could
disagree about what they say.
"""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """The text is not plain, unambiguous JSON."""


def canonical_json(document: Any) -> bytes:
    """Sorted keys, 2-space indent, UTF-8, trailing newline: one byte sequence per document."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise StrictJSONError(f"duplicate key {key[:60]!r}")
        document[key] = value
    return document


def _no_constants(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number")


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate keys and NaN/Infinity; raise ``StrictJSONError`` (a ValueError)."""
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except StrictJSONError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StrictJSONError(str(exc)) from None
