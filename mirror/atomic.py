"""Atomic file writes: readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileExistsError | NotADirectoryError):
        reason = f"{exc.filename or path.parent} is a file, not a directory"
    return OutputError(f"{path}: cannot write it ({reason})")


@contextmanager
def atomic_writer(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``path`` when the ``with`` block ends normally.

    It is a temporary file in the same directory, renamed over ``path`` with ``os.replace``.
    If the block raises, the temporary file is removed and ``path`` is left as it was.
    ``durable`` flushes the data to disk before the rename, so that a crash cannot leave an
    empty or torn file under ``path``; callers that check the file's hash before any use can
    skip that flush.  A directory or file that cannot be written is an ``OutputError``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise _cannot_write(path, exc) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_chunks_atomic(path: Path, chunks: Iterable[bytes], *, durable: bool = True) -> None:
    """Write ``chunks`` to ``path`` atomically (see ``atomic_writer``), streamed."""
    with atomic_writer(path, durable=durable) as stream:
        for chunk in chunks:
            stream.write(chunk)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``write_chunks_atomic`` for data already in memory."""
    write_chunks_atomic(path, (data,))


def write_files_atomic(files: dict[Path, bytes]) -> None:
    """Write several files so that either all of them change or none does.

    Every new file is written to a temporary file first; only then are they renamed into
    place.  If a rename fails, the files already replaced are put back as they were (their old
    content is kept in memory: this is for small files such as a manifest and its licences).
    """
    before: dict[Path, bytes | None] = {}
    for path in files:
        try:
            before[path] = path.read_bytes() if path.is_file() else None
        except OSError as exc:
            raise _cannot_write(path, exc) from None
    done: list[Path] = []
    try:
        for path, data in files.items():
            write_bytes_atomic(path, data)
            done.append(path)
    except BaseException:
        for path in done:
            old = before[path]
            if old is None:
                path.unlink(missing_ok=True)
            else:
                write_bytes_atomic(path, old)
        raise
