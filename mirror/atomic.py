"""Atomic file writes: readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_chunks_atomic(path: Path, chunks: Iterable[bytes], *, durable: bool = True) -> None:
    """Write ``chunks`` to ``path`` through a temp file in the same directory and ``os.replace``.

    On any error (the chunks' source failing included) the temp file is removed and ``path``
    is left as it was.  Chunks are streamed: memory use does not grow with the file.
    ``durable`` flushes the data to disk before the rename, so that a crash cannot leave an
    empty or torn file under ``path``; callers that check the file's hash before any use can
    skip that flush.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``write_chunks_atomic`` for data already in memory."""
    write_chunks_atomic(path, (data,))
