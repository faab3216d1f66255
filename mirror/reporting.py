"""How a run tells its progress: one protocol for every step of the toolkit.

Every long-running call (export, manifest, sign, attach, download, verify, evaluate) takes a
``Reporter``: ``line`` for one line of what happened, ``progress`` for how far a transfer or an
image set has got.  The command lines pass a console reporter (``release/console.py``: plain
lines, and rich bars on a terminal); library callers and tests pass ``Lines`` or ``SILENT``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Reporter(Protocol):
    def line(self, text: str) -> None:
        """One line of progress, e.g. "validate: onnx.checker ok (0.4 s)"."""

    def progress(self, what: str, done: int, total: int, unit: str = "bytes") -> None:
        """``done`` of ``total`` ``unit`` of ``what`` (a file being transferred, a set of images)."""


class Silent:
    """Reports nothing."""

    def line(self, text: str) -> None:
        pass

    def progress(self, what: str, done: int, total: int, unit: str = "bytes") -> None:
        pass


SILENT: Reporter = Silent()


class Lines:
    """Keeps every line (``lines``), and hands each to ``write`` too if one is given."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self._write = write

    def line(self, text: str) -> None:
        self.lines.append(text)
        if self._write is not None:
            self._write(text)

    def progress(self, what: str, done: int, total: int, unit: str = "bytes") -> None:
        pass


class Indented:
    """``reporter``'s lines, indented one level (a sub-step's details); progress passes through."""

    def __init__(self, reporter: Reporter, prefix: str = "  ") -> None:
        self._reporter = reporter
        self._prefix = prefix

    def line(self, text: str) -> None:
        self._reporter.line(self._prefix + text)

    def progress(self, what: str, done: int, total: int, unit: str = "bytes") -> None:
        self._reporter.progress(what, done, total, unit)
