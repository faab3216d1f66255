"""The manifest step: cross-check the ONNX in dist against its inputs, then write the manifest.

The manifest is the signed statement of where the ONNX came from: every input and output with
its sha256, the export settings and the validation it passed, in canonical JSON with no
absolute path and no time (unless SOURCE_DATE_EPOCH sets one).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import write_files_atomic
from .contract import CROSS_CHECKED, MODEL_CARD_NAME, licence_copy_name
from .errors import CheckpointError, ManifestError
from .hashing import sha256_bytes
from .manifest import manifest_bytes
from .manifest_document import UpstreamFacts, manifest_document
from .metadata import (
    compare,
    read_metadata,
)
from .model_card import card_source, release_card
from .pipeline import (
    ExportResult,
    Inputs,
    audit_inputs,
    expected_metadata,
    load_head,
    timed_step,
    validate_model,
    witnessed,
)
from .provenance import FileRecord, run_provenance
from .reporting import SILENT, Reporter
from .settings import ExportSettings, printable_path
from .upstream import UpstreamAudit


@dataclass(frozen=True)
class ManifestResult:
    path: Path
    sha256: str
    document: dict[str, Any]
    inputs: Inputs


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


def _argv(settings: ExportSettings, checkpoint: FileRecord) -> list[str]:
    # The `invoke manifest` command line that reproduces this step, whoever ran it (the
    # entrypoint says who), with the machine-specific roots named, not spelled out.
    argv = [
        "invoke",
        "manifest",
        "--upstream",
        "<upstream>",
        "--checkpoint",
        f"<{checkpoint.root}>/{checkpoint.path}",
        "--dist",
        "<dist>",
        "--tolerance",
        repr(settings.tolerance),
        "--mean-tolerance",
        repr(settings.mean_tolerance),
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
        # The bytes the audit read and hashed (read once), never the path again.
        data = audit.license_bytes if kind == "LICENSE" else audit.notice_bytes
        if data is None or sha256_bytes(data) != sha256:
            raise ManifestError(f"{audit.root / relative}: not the bytes the audit hashed; run again")
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


def _read_onnx(settings: ExportSettings, export: ExportResult | None) -> bytes:
    onnx_path = settings.onnx_path
    if not onnx_path.is_file():
        raise ManifestError(f"{onnx_path}: no ONNX here; run `invoke export` first")
    # Read and hash once: these bytes are what is checked, validated and recorded.
    model_bytes = onnx_path.read_bytes()
    if export is not None and export.onnx_sha256 != sha256_bytes(model_bytes):
        raise ManifestError(f"{onnx_path}: changed since it was exported; run `invoke export` again")
    return model_bytes


def _cross_check(settings: ExportSettings, inputs: Inputs, model_bytes: bytes, reporter: Reporter) -> dict[str, str]:
    """The ONNX's embedded metadata, once it agrees with these inputs."""
    with timed_step(reporter, "cross-check ONNX metadata") as detail:
        try:
            found = read_metadata(model_bytes)
        except ValueError as exc:
            raise ManifestError(
                f"{settings.onnx_path}: not a readable ONNX model ({exc}); run `invoke export` again"
            ) from None
        expected = {key: value for key, value in expected_metadata(settings, inputs).items() if key in CROSS_CHECKED}
        differences = compare(found, expected)
        if differences:
            raise ManifestError(
                f"{settings.onnx_path}: was exported from other inputs ({'; '.join(differences)}); "
                "run `invoke export` with these inputs first"
            )
        detail.append(f"{len(expected)} fields agree")
    return found


def _input_records(settings: ExportSettings, inputs: Inputs) -> list[FileRecord]:
    """run_provenance's inputs: the upstream files, then the checkpoint."""
    audit = inputs.audit
    checkpoint_root, _, checkpoint_path = _checkpoint_location(settings)
    # Sizes and hashes of the bytes that were read once, not of whatever the paths hold now.
    records = [
        FileRecord("upstream_module", "upstream", audit.module_path, audit.module_sha256, len(audit.module_source)),
        FileRecord("license", "upstream", audit.license_path, audit.license_sha256, len(audit.license_bytes)),
    ]
    if audit.notice_path and audit.notice_sha256 and audit.notice_bytes is not None:
        records.append(
            FileRecord("notice", "upstream", audit.notice_path, audit.notice_sha256, len(audit.notice_bytes))
        )
    records.append(
        FileRecord(
            "checkpoint", checkpoint_root, checkpoint_path, inputs.checkpoint_sha256, len(inputs.checkpoint_bytes)
        )
    )
    return records


def _run(settings: ExportSettings, inputs: list[FileRecord], outputs: list[FileRecord]) -> dict[str, Any]:
    """run_provenance: the command that reproduces this step, its settings, inputs and outputs."""
    return run_provenance(
        entrypoint=settings.entrypoint,
        argv=_argv(settings, inputs[-1]),  # the checkpoint is the last input
        args={
            "allow_unpinned": settings.allow_unpinned,
            "tolerance": settings.tolerance,
            "mean_tolerance": settings.mean_tolerance,
            "seed": settings.seed,
            "validation_shapes": [list(shape) for shape in settings.validation_shapes],
        },
        inputs=inputs,
        outputs=outputs,
    )


def run_manifest(
    settings: ExportSettings, reporter: Reporter = SILENT, export: ExportResult | None = None
) -> ManifestResult:
    """Re-hash the inputs, cross-check the ONNX in dist against them, write the manifest.

    ``export`` (the result of ``run_export`` in the same process) saves re-auditing and
    re-validating; without it the ONNX in dist is validated against torch again.  The manifest
    and the licence copies it records are written together: all of them, or none.
    """
    settings.check()
    model_bytes = _read_onnx(settings, export)
    if export is not None:
        inputs = export.inputs
    else:
        # The witness decides the build's kind, as it did at export: run it on the bytes in dist.
        inputs = witnessed(settings, audit_inputs(settings, reporter), model_bytes, reporter)
    found = _cross_check(settings, inputs, model_bytes, reporter)
    if export is not None:
        validation = export.validation
    else:
        head = load_head(settings, inputs, reporter)
        validation = validate_model(settings, model_bytes, head, str(settings.onnx_path), reporter)
    input_records = _input_records(settings, inputs)
    checkpoint = input_records[-1]
    onnx_sha256 = sha256_bytes(model_bytes)
    onnx_record = FileRecord("onnx", "dist", settings.onnx_path.name, onnx_sha256, len(model_bytes))
    licence_copies = _licence_copies(settings, inputs.audit)
    audit = inputs.audit
    card = release_card(
        card_source(),
        onnx_sha256=onnx_sha256,
        onnx_size=len(model_bytes),
        build_kind=inputs.build_kind,
        upstream_commit=audit.commit,
    )
    card_record = FileRecord("model_card", "dist", MODEL_CARD_NAME, sha256_bytes(card), len(card))
    document = manifest_document(
        build_kind=inputs.build_kind,
        upstream=UpstreamFacts(
            pin=settings.pin,
            commit=audit.commit,
            module_path=audit.module_path,
            module_sha256=audit.module_sha256,
            checkpoint_path=checkpoint.path,
            checkpoint_sha256=inputs.checkpoint_sha256,
            license_path=audit.license_path,
            license_sha256=audit.license_sha256,
            notice_sha256=audit.notice_sha256,
            pin_problems=inputs.pin_problems,
            allow_unpinned=settings.allow_unpinned,
        ),
        metadata=found,
        onnx=onnx_record,
        witness=inputs.witness.as_dict() if inputs.witness is not None and inputs.witness.images else None,
        model_card_sha256=card_record.sha256,
        validation=validation.as_dict(),
        toolchain=_toolchain(),
        run_provenance=_run(
            settings, input_records, [onnx_record, *(record for record, _ in licence_copies.values()), card_record]
        ),
    )
    with timed_step(reporter, "write") as detail:
        data = manifest_bytes(settings.manifest_path, document)
        copies = {path: copy for path, (_, copy) in licence_copies.items()}
        write_files_atomic({settings.manifest_path: data, **copies, settings.dist / MODEL_CARD_NAME: card})
        names = ", ".join([*(path.name for path in licence_copies), MODEL_CARD_NAME])
        detail.append(f"{settings.manifest_path} ({len(data):,} bytes) and {names}")
    return ManifestResult(settings.manifest_path, sha256_bytes(data), document, inputs)
