"""Streaming sha256: large files are hashed in chunks, never read whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

# 1 MiB: large enough that per-call overhead vanishes, small enough to stay in cache.
CHUNK_SIZE = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
