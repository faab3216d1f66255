"""The export and manifest steps, end to end.  Imports torch (lazily, per step).

``tasks.py`` calls ``run_export`` and ``run_manifest``; so can any Python caller.
Progress goes to an optional ``report`` callback, one line per sub-step.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import write_files_atomic
from .errors import CheckpointError, ManifestError
from .hashing import sha256_bytes, sha256_file
from .license import SPDX_ID
from .manifest import SCHEMA_ID, manifest_bytes
from .metadata import (
    CROSS_CHECKED,
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    TRACE_HEIGHT,
    TRACE_WIDTH,
    build_metadata,
    compare,
    read_metadata,
)
from .provenance import FileRecord, run_provenance
from .settings import MODEL_ID, UPSTREAM_REPO, ExportSettings, licence_copy_name, printable_path
from .upstream import UpstreamAudit, audit_checkout

Report = Callable[[str], None]


def _silent(_: str) -> None:
    pass


@contextmanager
def _step(report: Report, what: str) -> Iterator[list[str]]:
    """Time a sub-step and report 'what: detail (0.12 s)' when it succeeds."""
    detail: list[str] = []
    start = time.perf_counter()
    yield detail
    suffix = f": {' '.join(detail)}" if detail else ""
    report(f"{what}{suffix} ({time.perf_counter() - start:.2f} s)")


@dataclass(frozen=True)
class Inputs:
    """The audited upstream and the checkpoint, hashed once per run."""

    audit: UpstreamAudit
    checkpoint: Path
    checkpoint_sha256: str


@dataclass(frozen=True)
class ExportResult:
    inputs: Inputs
    onnx_path: Path
    onnx_sha256: str
    onnx_size: int
    metadata: dict[str, str]
    validation: Any  # mirror.validate.ValidationReport (kept untyped: that module imports torch)


@dataclass(frozen=True)
class ManifestResult:
    path: Path
    sha256: str
    document: dict[str, Any]


def _audit_inputs(settings: ExportSettings, report: Report) -> Inputs:
    with _step(report, "audit upstream") as detail:
        audit = audit_checkout(settings.upstream, settings.pin, settings.allow_unpinned)
        detail.append(f"{audit.commit[:12]} {'pinned' if audit.pinned else 'UNPINNED (--allow-unpinned)'},")
        detail.append(f"licence {SPDX_ID}{', NOTICE' if audit.notice_path else ''}")
    with _step(report, "hash checkpoint") as detail:
        if not settings.checkpoint.is_file():
            raise CheckpointError(
                f"{settings.checkpoint}: no checkpoint here; download u2netp.pth from upstream's "
                "README links and put it there (or pass --checkpoint FILE)"
            )
        checkpoint_sha256 = sha256_file(settings.checkpoint)
        wanted = settings.pin.checkpoint_sha256
        if settings.require_checkpoint_pin and not wanted:
            raise CheckpointError(
                f"{settings.checkpoint}: no audited sha256 is pinned for u2netp.pth (u2netp.pin.checkpoint_sha256); "
                "a maintainer must audit the file and pin it before a release (docs/maintainer-guide.md)"
            )
        if wanted and checkpoint_sha256 != wanted and not settings.allow_unpinned:
            raise CheckpointError(
                f"{settings.checkpoint}: sha256 {checkpoint_sha256[:12]} != pinned {wanted[:12]}; "
                "use the audited u2netp.pth, or pass --allow-unpinned"
            )
        detail.append(checkpoint_sha256[:12])
    return Inputs(audit, settings.checkpoint, checkpoint_sha256)


def _load_head(settings: ExportSettings, inputs: Inputs, report: Report) -> Any:
    from .model import SaliencyHead, build_u2netp, load_checkpoint

    with _step(report, "load U2NETP") as detail:
        net = build_u2netp(settings.upstream)
        load_checkpoint(net, inputs.checkpoint)
        detail.append(f"{sum(p.numel() for p in net.parameters()):,} parameters")
    return SaliencyHead(net).eval()


def _validate(
    settings: ExportSettings, model_bytes: bytes, head: Any, label: str, report: Report, known: Any = None
) -> Any:
    from .validate import validate

    with _step(report, "validate") as detail:
        result = validate(
            model_bytes,
            head,
            shapes=settings.validation_shapes,
            tolerance=settings.tolerance,
            seed=settings.seed,
            label=label,
            known=known,
        )
        detail.append(f"onnx.checker ok, max |ort - torch| {result.max_abs_diff:.2g} over {len(result.checks)} shapes")
    return result


def _expected_metadata(settings: ExportSettings, inputs: Inputs) -> dict[str, str]:
    import onnx
    import torch

    from .model import SELECTED_OUTPUT

    return build_metadata(
        upstream_commit=inputs.audit.commit,
        upstream_module_sha256=inputs.audit.module_sha256,
        upstream_pinned=inputs.audit.pinned,
        checkpoint_sha256=inputs.checkpoint_sha256,
        license_spdx=SPDX_ID,
        torch_version=torch.__version__,
        onnx_version=onnx.__version__,
        selected_output=SELECTED_OUTPUT,
        build_kind=settings.build_kind,
    )


def run_export(settings: ExportSettings, report: Report = _silent) -> ExportResult:
    """Audit, load, export, validate, then write ``settings.onnx_path`` atomically.

    On any error nothing new is left in dist; an earlier ONNX there stays as it was.
    """
    settings.check()
    inputs = _audit_inputs(settings, report)
    # torch and onnx load only now: a wrong path or option has failed in well under a second.
    from .atomic import write_bytes_atomic
    from .export import export_model
    from .validate import seeded_images

    head = _load_head(settings, inputs, report)
    metadata = _expected_metadata(settings, inputs)
    with _step(report, "export ONNX") as detail:
        # Traced at the first validation input (the graph depends only on its shape), so the
        # trace's own forward pass is torch's reference for that input.
        (example,) = seeded_images(settings.seed, [(1, TRACE_HEIGHT, TRACE_WIDTH)])
        exported = export_model(head, metadata, example)
        model_bytes = exported.model_bytes
        detail.append(f"opset {OPSET}, {INPUT_NAME} -> {OUTPUT_NAME}, dynamic N/H/W")
    known = None if exported.example_output is None else (exported.example, exported.example_output)
    validation = _validate(settings, model_bytes, head, str(settings.onnx_path), report, known)
    with _step(report, "write") as detail:
        write_bytes_atomic(settings.onnx_path, model_bytes)
        detail.append(f"{settings.onnx_path} ({len(model_bytes):,} bytes)")
    return ExportResult(
        inputs=inputs,
        onnx_path=settings.onnx_path,
        onnx_sha256=sha256_bytes(model_bytes),
        onnx_size=len(model_bytes),
        metadata=metadata,
        validation=validation,
    )


def _checkpoint_location(settings: ExportSettings) -> tuple[str, Path, str]:
    """(root name, root, relative path) of the checkpoint: inside the checkout if it is there."""
    checkpoint = settings.checkpoint.resolve()
    try:
        location = "upstream", settings.upstream, checkpoint.relative_to(settings.upstream.resolve()).as_posix()
    except ValueError:
        # Outside the checkout only the file name is recorded: its directory is machine-specific.
        location = "checkpoint_dir", settings.checkpoint.parent, settings.checkpoint.name
    try:
        location[2].encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError(
            f"{printable_path(settings.checkpoint)}: its name is not valid UTF-8, and the manifest records it; "
            "rename the file"
        ) from None
    return location


def _argv(settings: ExportSettings, checkpoint_root: str, checkpoint_path: str) -> list[str]:
    # The `invoke manifest` command line that reproduces this step, whoever ran it (the
    # entrypoint says who), with the machine-specific roots named, not spelled out.
    argv = [
        "invoke",
        "manifest",
        "--upstream",
        "<upstream>",
        "--checkpoint",
        f"<{checkpoint_root}>/{checkpoint_path}",
        "--dist",
        "<dist>",
        "--tolerance",
        repr(settings.tolerance),
    ]
    if settings.allow_unpinned:
        argv.append("--allow-unpinned")
    return argv


def _licence_copies(settings: ExportSettings, audit: UpstreamAudit) -> dict[Path, tuple[FileRecord, bytes]]:
    """The upstream licence (and NOTICE) as dist files: Apache-2.0 redistribution needs them beside the model."""
    copies = {}
    for kind, relative, sha256 in (
        ("LICENSE", audit.license_path, audit.license_sha256),
        ("NOTICE", audit.notice_path, audit.notice_sha256),
    ):
        if relative is None or sha256 is None:
            continue
        data = (audit.root / relative).read_bytes()
        if sha256_bytes(data) != sha256:
            raise ManifestError(f"{audit.root / relative}: changed during the run; run again")
        target = settings.dist / licence_copy_name(kind)
        copies[target] = (FileRecord(kind.lower(), "dist", target.name, sha256, len(data)), data)
    return copies


def _toolchain() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "u2netp_mirror": __version__,
    }


def run_manifest(
    settings: ExportSettings, report: Report = _silent, export: ExportResult | None = None
) -> ManifestResult:
    """Re-hash the inputs, cross-check the ONNX in dist against them, write the manifest.

    ``export`` (the result of ``run_export`` in the same process) saves re-auditing and
    re-validating; without it the ONNX in dist is validated against torch again.
    """
    settings.check()
    onnx_path = settings.onnx_path
    if not onnx_path.is_file():
        raise ManifestError(f"{onnx_path}: no ONNX here; run `invoke export` first")
    # Read and hash once: these bytes are what is checked, validated and recorded.
    model_bytes = onnx_path.read_bytes()
    onnx_sha256 = sha256_bytes(model_bytes)
    if export is not None and export.onnx_sha256 != onnx_sha256:
        raise ManifestError(f"{onnx_path}: changed since it was exported; run `invoke export` again")
    inputs = export.inputs if export is not None else _audit_inputs(settings, report)
    with _step(report, "cross-check ONNX metadata") as detail:
        try:
            found = read_metadata(model_bytes)
        except ValueError as exc:
            raise ManifestError(f"{onnx_path}: not a readable ONNX model ({exc}); run `invoke export` again") from None
        expected = {key: value for key, value in _expected_metadata(settings, inputs).items() if key in CROSS_CHECKED}
        differences = compare(found, expected)
        if differences:
            raise ManifestError(
                f"{onnx_path}: was exported from other inputs ({'; '.join(differences)}); "
                "run `invoke export` with these inputs first"
            )
        detail.append(f"{len(expected)} fields agree")
    if export is not None:
        validation = export.validation
    else:
        validation = _validate(settings, model_bytes, _load_head(settings, inputs, report), str(onnx_path), report)

    audit = inputs.audit
    checkpoint_root, checkpoint_dir, checkpoint_path = _checkpoint_location(settings)
    upstream_files = [
        FileRecord.of("upstream_module", "upstream", audit.root, audit.module_path, audit.module_sha256),
        FileRecord.of("license", "upstream", audit.root, audit.license_path, audit.license_sha256),
    ]
    if audit.notice_path and audit.notice_sha256:
        upstream_files.append(FileRecord.of("notice", "upstream", audit.root, audit.notice_path, audit.notice_sha256))
    upstream_files.append(
        FileRecord.of("checkpoint", checkpoint_root, checkpoint_dir, checkpoint_path, inputs.checkpoint_sha256)
    )
    onnx_record = FileRecord("onnx", "dist", onnx_path.name, onnx_sha256, len(model_bytes))
    licence_copies = _licence_copies(settings, audit)
    document = {
        "schema": SCHEMA_ID,
        "model_id": MODEL_ID,
        "build_kind": settings.build_kind,
        "upstream": {
            "repo": UPSTREAM_REPO,
            "commit": audit.commit,
            "module_path": audit.module_path,
            "module_sha256": audit.module_sha256,
            "checkpoint_path": checkpoint_path,
            "checkpoint_sha256": inputs.checkpoint_sha256,
            "license_path": audit.license_path,
            "license_sha256": audit.license_sha256,
            "license_spdx": SPDX_ID,
            "notice_present": audit.notice_path is not None,
            "notice_sha256": audit.notice_sha256,
            "pinned": audit.pinned,
            "allow_unpinned": settings.allow_unpinned,
            "pin": {
                "source": settings.pin.source,
                "commit": settings.pin.commit,
                "module_sha256": settings.pin.module_sha256,
                "license_sha256": settings.pin.license_sha256,
                "checkpoint_sha256": settings.pin.checkpoint_sha256 or None,
            },
        },
        "export": {
            "opset": OPSET,
            "height": TRACE_HEIGHT,
            "width": TRACE_WIDTH,
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "dynamic_axes": ["batch", "height", "width"],
            "selected_upstream_output": found.get("selected_output", ""),
            "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
            "metadata_written": found,
        },
        "outputs": {"onnx_path": onnx_path.name, "onnx_sha256": onnx_sha256, "onnx_size": len(model_bytes)},
        "validation": validation.as_dict(),
        "toolchain": _toolchain(),
        "run_provenance": run_provenance(
            entrypoint=settings.entrypoint,
            argv=_argv(settings, checkpoint_root, checkpoint_path),
            args={
                "allow_unpinned": settings.allow_unpinned,
                "tolerance": settings.tolerance,
                "seed": settings.seed,
                "validation_shapes": [list(shape) for shape in settings.validation_shapes],
            },
            inputs=upstream_files,
            outputs=[onnx_record, *(record for record, _ in licence_copies.values())],
        ),
    }
    with _step(report, "write") as detail:
        # The manifest and the licence copies it records change together or not at all.
        data = manifest_bytes(settings.manifest_path, document)
        write_files_atomic({settings.manifest_path: data, **{p: copy for p, (_, copy) in licence_copies.items()}})
        names = ", ".join(path.name for path in licence_copies)
        detail.append(f"{settings.manifest_path} ({len(data):,} bytes) and {names}")
    return ManifestResult(settings.manifest_path, sha256_bytes(data), document)
