"""``invoke demo``: the whole export + manifest pipeline on the embedded fixture."""

from __future__ import annotations

from pathlib import Path

from .fixture import build_fixture
from .pipeline import Report, run_export, run_manifest
from .settings import ExportSettings


def run_demo(scratch: Path, dist: Path, report: Report) -> list[str]:
    """Build the fixture under ``scratch``, export into ``dist``; return summary lines."""
    report("build fixture: upstream-shaped git checkout + random checkpoint (not the real weights)")
    fixture = build_fixture(scratch / "U-2-Net")
    settings = ExportSettings(
        upstream=fixture.root,
        checkpoint=fixture.checkpoint,
        dist=dist,
        pin=fixture.pin,
        entrypoint="invoke demo",
    )
    exported = run_export(settings, report=report)
    written = run_manifest(settings, report=report, export=exported)
    validation = exported.validation
    lines = ["", "summary (demo fixture, not the real U2NETP):"]
    for path, sha256 in ((exported.onnx_path, exported.onnx_sha256), (written.path, written.sha256)):
        lines.append(f"  {path}  {path.stat().st_size:>9,} bytes  sha256 {sha256}")
    lines.append(f"  upstream commit {fixture.pin.commit} (pin source: {fixture.pin.source})")
    for check in validation.checks:
        lines.append(
            f"  parity {check.batch}x3x{check.height}x{check.width}: "
            f"max |ort - torch| = {check.max_abs_diff:.2e} (tolerance {validation.tolerance:g})"
        )
    return lines
