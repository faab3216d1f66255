"""Invoke tasks for u2netp-mirror: options, config and printing only.

The work happens in the ``mirror`` and ``release`` packages.  Nothing here imports
torch at module level, so ``invoke --list`` stays fast and torch-free.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Collection, Exit, task

from mirror.errors import MirrorError
from mirror.settings import ExportSettings, UpstreamPin, default_checkpoint

EXPORT_HELP = {
    "upstream": "U-2-Net checkout (default: u2netp.upstream in invoke.yaml, ../U-2-Net)",
    "checkpoint": "u2netp.pth (default: <upstream>/saved_models/u2netp/u2netp.pth)",
    "dist": "output directory (default: dist)",
    "allow_unpinned": "export a checkout that is not the audited commit/module (recorded in the manifest)",
    "tolerance": "max |onnxruntime - torch| on the validation inputs (default: 1e-5)",
}


def _say(message: str) -> None:
    print(message, flush=True)


def _debugging() -> bool:
    # `invoke --debug` (or INVOKE_DEBUG=1) turns on invoke's debug logging; show tracebacks then.
    return logging.getLogger("invoke").isEnabledFor(logging.DEBUG)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Expected failures print one line and exit 1; --debug keeps the traceback."""
    try:
        yield
    except MirrorError as exc:
        if _debugging():
            raise
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise Exit(code=1) from None


def _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, entrypoint) -> ExportSettings:
    config = c.config.u2netp
    upstream_dir = Path(upstream or config.upstream)
    return ExportSettings(
        upstream=upstream_dir,
        checkpoint=Path(checkpoint or config.checkpoint or default_checkpoint(upstream_dir)),
        dist=Path(dist or config.dist),
        pin=UpstreamPin.from_config(config.pin),
        allow_unpinned=bool(allow_unpinned),
        tolerance=float(tolerance if tolerance is not None else config.export.tolerance),
        seed=int(config.export.seed),
        entrypoint=entrypoint,
    )


def _indent(line: str) -> None:
    _say(f"  {line}")


@task(help=EXPORT_HELP)
def export(c, upstream=None, checkpoint=None, dist=None, allow_unpinned=False, tolerance=None):
    """Export U2NETP's d0 to a validated, deterministic ONNX in dist/."""
    from mirror.pipeline import run_export

    settings = _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, "invoke export")
    start = time.perf_counter()
    with _one_line_errors():
        result = run_export(settings, report=_indent)
    _say(f"export: {result.onnx_path} sha256 {result.onnx_sha256} ({time.perf_counter() - start:.1f} s)")


@task(help=EXPORT_HELP)
def manifest(c, upstream=None, checkpoint=None, dist=None, allow_unpinned=False, tolerance=None):
    """Write dist/u2netp_mirror_v1.manifest.json after cross-checking the ONNX against its inputs."""
    from mirror.pipeline import run_manifest

    settings = _export_settings(c, upstream, checkpoint, dist, allow_unpinned, tolerance, "invoke manifest")
    start = time.perf_counter()
    with _one_line_errors():
        result = run_manifest(settings, report=_indent)
    _say(f"manifest: {result.path} sha256 {result.sha256} ({time.perf_counter() - start:.1f} s)")


@task(help={"dist": "output directory (default: u2netp.demo.dist in invoke.yaml, dist/demo)"})
def demo(c, dist=None):
    """Export and write the manifest for an embedded upstream-shaped fixture (offline, no weights)."""
    import tempfile

    from mirror.demo import run_demo

    start = time.perf_counter()
    with _one_line_errors(), tempfile.TemporaryDirectory(prefix="u2netp-mirror-demo-") as scratch:
        summary = run_demo(Path(scratch), Path(dist or c.config.u2netp.demo.dist), report=_indent)
    for line in summary:
        _say(line)
    _say(f"demo: done ({time.perf_counter() - start:.1f} s)")


@task(help={"dest": "where to clone (default: u2netp.upstream in invoke.yaml)", "url": "repository URL"})
def fetch_upstream(c, dest=None, url=None):
    """Clone U-2-Net at the audited commit and say where to put u2netp.pth."""
    from mirror.fetch import checkpoint_hint
    from mirror.fetch import fetch_upstream as fetch

    config = c.config.u2netp
    destination = Path(dest or config.upstream)
    with _one_line_errors():
        audit = fetch(url or config.pin.repo_url, destination, UpstreamPin.from_config(config.pin))
    _say(f"fetch-upstream: {destination} at {audit.commit}, licence Apache-2.0 checked")
    _say(f"next: {checkpoint_hint(destination)}")


@task(help={"pytest_args": "extra arguments for pytest, e.g. '-k manifest -x'"})
def test(c, pytest_args=""):
    """Lint with ruff, then run the test suite (the README's test command)."""
    c.run(f"{sys.executable} -m ruff check .", pty=False)
    c.run(f"{sys.executable} -m ruff format --check .", pty=False)
    c.run(f"{sys.executable} -m pytest {pytest_args}", pty=False)


namespace = Collection(export, manifest, demo, fetch_upstream, test)
