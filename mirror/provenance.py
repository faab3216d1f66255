"""The ``run_provenance`` block shared with the project's other tools (ai-run-provenance-v1).

It says what ran, with which arguments, on which inputs, producing which outputs.
Everything in it is machine-independent: paths are relative to a named root
("upstream" or "dist"), the command line names those roots instead of spelling
them out, and a time appears only when SOURCE_DATE_EPOCH sets one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ManifestError
from .hashing import sha256_file

SCHEMA = "ai-run-provenance-v1"


@dataclass(frozen=True)
class FileRecord:
    """One input or output file: the root it lives under, its path there, hash and size."""

    role: str
    root: str
    path: str
    sha256: str
    size: int

    @classmethod
    def of(cls, role: str, root: str, directory: Path, path: str, sha256: str | None = None) -> FileRecord:
        """Describe ``directory / path``; pass ``sha256`` when it is already known."""
        full = directory / path
        return cls(role, root, path, sha256 or sha256_file(full), full.stat().st_size)

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "root": self.root,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
        }


def source_date() -> str | None:
    """SOURCE_DATE_EPOCH as an ISO 8601 UTC time, or None when it is not set."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    try:
        stamp = datetime.fromtimestamp(int(raw), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ManifestError(
            f"SOURCE_DATE_EPOCH={raw!r}: not a whole number of seconds since 1970; unset or fix it"
        ) from None
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_provenance(
    *,
    entrypoint: str,
    argv: Sequence[str],
    args: Mapping[str, Any],
    inputs: Sequence[FileRecord],
    outputs: Sequence[FileRecord],
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "schema": SCHEMA,
        "entrypoint": entrypoint,
        "argv": list(argv),
        "args": dict(args),
        "inputs": [record.as_dict() for record in inputs],
        "outputs": [record.as_dict() for record in outputs],
    }
    created = source_date()
    if created is not None:
        block["source_date"] = created
    return block
