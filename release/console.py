"""The command lines' reporter: plain lines, and progress as rich bars on a terminal or a few
plain lines in a log (CI).  The one ``Reporter`` both entry points (``tasks.py`` and the
operator's ``u2netp-mirror``) print through."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


class ConsoleReporter:
    """Lines to stdout (indented by ``prefix``); progress drawn as bars, or logged when done.

    Made by ``console()``, which also takes the bars down at the end.
    """

    def __init__(self, prefix: str = "", bars: Any = None) -> None:
        self._prefix = prefix
        self._bars = bars  # rich.progress.Progress on a terminal, None in a log
        self._tasks: dict[str, Any] = {}
        self._logged: dict[str, int] = {}

    def line(self, text: str) -> None:
        line = self._prefix + text
        if self._bars is not None:
            self._bars.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, flush=True)

    def progress(self, what: str, done: int, total: int, unit: str = "bytes") -> None:
        if self._bars is not None:
            from rich.filesize import decimal

            # Bytes as sizes, anything else (images) as a count: one column serves both.
            shown = f"{decimal(done)}/{decimal(total)}" if unit == "bytes" else f"{done:,}/{total:,} {unit}"
            if what not in self._tasks:
                self._tasks[what] = self._bars.add_task(what, total=total, shown=shown)
            self._bars.update(self._tasks[what], completed=done, total=total, shown=shown)
            return
        # A log gets one line per file once it is complete, and a line per tenth of an image set.
        if unit == "bytes":
            if done >= total and what not in self._logged:
                self._logged[what] = total
                print(f"{self._prefix}{what}: {total:,} bytes", flush=True)
            return
        tenth = done * 10 // max(total, 1)
        if tenth > self._logged.get(what, -1):
            self._logged[what] = tenth
            print(f"{self._prefix}{done:,} of {total:,} {unit}", flush=True)

    def nested(self) -> ConsoleReporter:
        """The same console, one level of indentation deeper."""
        child = ConsoleReporter(self._prefix + "  ", self._bars)
        child._tasks, child._logged = self._tasks, self._logged
        return child


@contextmanager
def console() -> Iterator[ConsoleReporter]:
    """A ``ConsoleReporter`` for this run; on a terminal its bars are live until the block ends."""
    if not interactive():
        yield ConsoleReporter()
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[shown]}"))
    with Progress(*columns, TimeRemainingColumn()) as bars:
        yield ConsoleReporter(bars=bars)
