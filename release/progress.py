"""Transfer progress: a bar per file on a terminal, one plain line per file otherwise (CI logs)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .github import Progress


def interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


@contextmanager
def transfer_progress(verb: str) -> Iterator[Progress]:
    """Yield a ``Progress`` callback (name, done, total) that draws or logs ``verb`` transfers."""
    if interactive():
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TaskID,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bars

        columns = (TextColumn(f"{verb} {{task.description}}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Bars(*columns, TimeRemainingColumn(), transient=False) as bars:
            tasks: dict[str, TaskID] = {}

            def draw(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bars.add_task(name, total=total)
                bars.update(tasks[name], completed=done, total=total)

            yield draw
        return

    logged: set[str] = set()

    def log(name: str, done: int, total: int) -> None:
        if done >= total and name not in logged:
            logged.add(name)
            print(f"  {verb} {name}: {total:,} bytes", flush=True)

    yield log
