"""Streaming sha256: large files are hashed in chunks, never read whole."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
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


def is_sha256_hex(value: object) -> bool:
    """Whether ``value`` is a sha256 as this project writes one: 64 lower-case hex digits (for
    digests read from a document or a server, before they are used)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None
