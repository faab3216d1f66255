"""Invoke's entry point for this checkout: the tasks live in ``mirror.cli``.

They live in the package so that the ``u2netp-mirror`` console script, which operators
get from ``pip install u2netp-mirror`` without a checkout, runs the very same tasks.
Only ``bench`` is added here: it needs the checkout's tests/ (loopback servers).
"""

import time
from pathlib import Path

from invoke import task

from mirror.cli import namespace


@task(
    help={
        "quick": "a fast smoke version (small files, 2 repetitions) for the tests",
        "output": "where to write benchmarks.md and benchmarks.png (default: docs/)",
    }
)
def bench(c, quick=False, output=None):
    """Measure the toolkit against its floors; write docs/benchmarks.md and a chart."""
    from bench.runner import run_benchmarks

    start = time.perf_counter()
    target = Path(output) if output else Path(__file__).resolve().parent / "docs"
    rows = run_benchmarks(target, quick, report=lambda line: print(f"  {line}", flush=True))
    missed = sum(not row.met for row in rows)
    print(
        f"bench: {target / 'benchmarks.md'}, {len(rows)} rows, {missed} targets missed "
        f"({time.perf_counter() - start:.0f} s)"
    )


namespace.add_task(bench)

__all__ = ["namespace"]
