"""The export step, end to end, and what the manifest step shares with it.

``tasks.py`` calls ``run_export`` (here) and ``run_manifest`` (``manifest_step.py``); so can any
Python caller.  Progress goes to an optional ``Reporter`` (``mirror/reporting.py``), one line per sub-step.  torch
and onnx are imported only once the inputs have passed the checks that need neither.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .contract import OUTPUTS_OF_AN_EXPORT
from .errors import CheckpointError, UpstreamError
from .hashing import sha256_bytes
from .license import SPDX_ID
from .metadata import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    TRACE_HEIGHT,
    TRACE_WIDTH,
    build_metadata,
)
from .reporting import SILENT, Reporter
from .settings import CHECKPOINT_PIN_KEY, BuildKind, ExportSettings, UpstreamPin
from .upstream import UpstreamAudit, audit_checkout, read_checkpoint_bytes


@contextmanager
def timed_step(reporter: Reporter, what: str) -> Iterator[list[str]]:
    """Time a sub-step and report 'what: detail (0.12 s)' when it succeeds."""
    detail: list[str] = []
    start = time.perf_counter()
    yield detail
    suffix = f": {' '.join(detail)}" if detail else ""
    reporter.line(f"{what}{suffix} ({time.perf_counter() - start:.2f} s)")


@dataclass(frozen=True)
class Inputs:
    """The audited upstream and the checkpoint, each read and hashed once per run."""

    audit: UpstreamAudit
    checkpoint: Path
    checkpoint_sha256: str
    build_kind: BuildKind
    # Each pin that is missing or does not hold; empty exactly when the build is "audited".
    pin_problems: tuple[str, ...] = ()
    # The bytes that were hashed: the checkpoint is loaded from these, never from its path again.
    checkpoint_bytes: bytes = field(default=b"", repr=False)
    # The upstream witness's verdict on the exported ONNX (mirror.witness.WitnessReport), None
    # before the export or where the checkout holds no test set; and why it keeps the build
    # from being "audited", if it does.
    witness: Any = None
    witness_problem: str | None = None


@dataclass(frozen=True)
class ExportResult:
    inputs: Inputs
    onnx_path: Path
    onnx_sha256: str
    onnx_size: int
    metadata: dict[str, str]
    validation: Any  # mirror.validate.ValidationReport (kept untyped: that module imports torch)


def pin_problems(audit: UpstreamAudit, checkpoint_sha256: str, pin: UpstreamPin) -> tuple[str, ...]:
    """Every pin that does not hold: the checkout's (commit, module, licence), then the checkpoint's."""
    problems = list(audit.mismatches)
    if pin.checkpoint_sha256 is None:
        problems.append(
            f"checkpoint: no pin ({CHECKPOINT_PIN_KEY} is not set: nobody has audited a u2netp.pth; "
            "`invoke pin-checkpoint` sets it)"
        )
    elif checkpoint_sha256 != pin.checkpoint_sha256:
        problems.append(f"checkpoint sha256 {checkpoint_sha256[:12]} != pinned {pin.checkpoint_sha256[:12]}")
    return tuple(problems)


def build_kind_of(pin: UpstreamPin, problems: tuple[str, ...], allow_unpinned: bool) -> BuildKind:
    """The build's kind: "audited" only when every pin holds and none was waived.

    "demo" for the embedded fixture.  --allow-unpinned marks a build "unpinned" even where
    everything matched: it could have hidden a mismatch.
    """
    if pin.source != "config":
        return "demo"
    return "unpinned" if problems or allow_unpinned else "audited"


def describe_build(kind: str, problems: tuple[str, ...] | list[str]) -> str:
    """One line for the console: the kind, and each pin (or the witness) that does not hold."""
    if kind == "audited":
        return "audited (commit, module, licence and checkpoint match their pins; the upstream witness held)"
    if kind == "demo":
        return "demo (the embedded fixture, not U-2-Net: never the audited model)"
    return f"UNPINNED, not the audited model: {'; '.join(problems) or '--allow-unpinned waived the pins'}"


def audit_inputs(settings: ExportSettings, reporter: Reporter) -> Inputs:
    with timed_step(reporter, "audit upstream") as detail:
        audit = audit_checkout(settings.upstream, settings.pin, settings.allow_unpinned)
        state = "commit, module and licence pinned" if audit.pinned else "UNPINNED (--allow-unpinned)"
        detail.append(f"{audit.commit[:12]} {state},")
        detail.append(f"licence {SPDX_ID}{', NOTICE' if audit.notice_path else ''}")
    with timed_step(reporter, "hash checkpoint") as detail:
        # Read once: these bytes are hashed here and loaded from memory later.
        checkpoint_bytes = read_checkpoint_bytes(settings.checkpoint)
        checkpoint_sha256 = sha256_bytes(checkpoint_bytes)
        wanted = settings.pin.checkpoint_sha256
        if settings.require_checkpoint_pin and wanted is None:
            raise CheckpointError(
                f"{settings.checkpoint}: no audited sha256 is pinned for u2netp.pth ({CHECKPOINT_PIN_KEY}); "
                "a maintainer must audit the file and pin it before a release (docs/maintainer-guide.md)"
            )
        if wanted is not None and checkpoint_sha256 != wanted and not settings.allow_unpinned:
            raise CheckpointError(
                f"{settings.checkpoint}: sha256 {checkpoint_sha256[:12]} != pinned {wanted[:12]}; "
                "use the audited u2netp.pth, or pass --allow-unpinned"
            )
        detail.append(checkpoint_sha256[:12])
        detail.append("pinned" if wanted == checkpoint_sha256 else "NOT PINNED")
    problems = pin_problems(audit, checkpoint_sha256, settings.pin)
    kind = build_kind_of(settings.pin, problems, settings.allow_unpinned)
    if kind == "audited":  # so far: the witness, run on the export, has the last word
        reporter.line("pins: commit, module, licence and checkpoint all match")
    else:
        reporter.line(f"build: {describe_build(kind, problems)}")
    if kind == "unpinned" and settings.require_audited and not settings.allow_unpinned:
        raise UpstreamError(
            f"{settings.upstream}: not the audited model ({'; '.join(problems)}); refusing to release it "
            "(--allow-unpinned releases it anyway, marked 'unpinned')"
        )
    return Inputs(audit, settings.checkpoint, checkpoint_sha256, kind, problems, checkpoint_bytes)


def witness_problem(report: Any) -> str | None:
    """Why the witness keeps a build from being "audited", or None when it held."""
    from .witness import THRESHOLD

    if report is None or not report.images:
        return (
            "witness: the checkout holds no test set with upstream's saved maps, "
            "so nothing shows these weights are upstream's"
        )
    if not report.held:
        return (
            f"witness: did not hold (worst {report.worst_max}/255 over {len(report.images)} of upstream's saved maps, "
            f"at most {THRESHOLD}/255): these weights do not reproduce upstream's maps"
        )
    return None


def witnessed(
    settings: ExportSettings, inputs: Inputs, model_bytes: bytes, reporter: Reporter, prepared: Any = None
) -> Inputs:
    """Run the upstream witness on the ONNX; a build is "audited" only if every pin holds and so does the witness.

    The witness checks behaviour, not bytes: it never makes a build audited whose pins do not hold.
    ``prepared``: the checkout's test set as ``witness.prepare`` made it, if it was made earlier.
    """
    from .witness import THRESHOLD, witness

    with timed_step(reporter, "upstream witness") as detail:
        report = witness(model_bytes, settings.upstream, prepared=prepared)
        if report is None or not report.images:
            detail.append("no test set with saved maps in the checkout: not measured")
        else:
            state = "held" if report.held else "DID NOT HOLD"
            detail.append(f"{state}: {len(report.images)} images, worst {report.worst_max}/255 (at most {THRESHOLD})")
    problem = witness_problem(report)
    kind = inputs.build_kind
    if kind == "audited" and problem is not None:
        kind = "unpinned"
        reporter.line(f"build: {describe_build(kind, (problem,))}")
        if settings.require_audited and not settings.allow_unpinned:
            raise UpstreamError(
                f"{settings.upstream}: not the audited model ({problem}); refusing to release it "
                "(--allow-unpinned releases it anyway, marked 'unpinned')"
            )
    elif kind == "audited":
        reporter.line(f"build: {describe_build(kind, ())}")
    return replace(inputs, build_kind=kind, witness=report, witness_problem=problem)


def load_head(settings: ExportSettings, inputs: Inputs, reporter: Reporter) -> Any:
    from .model import SaliencyHead, build_u2netp, load_checkpoint

    with timed_step(reporter, "load U2NETP") as detail:
        # The module and the checkpoint from the bytes the audit hashed, not from their paths.
        net = build_u2netp(settings.upstream, inputs.audit.module_source)
        load_checkpoint(net, inputs.checkpoint, inputs.checkpoint_bytes)
        detail.append(f"{sum(p.numel() for p in net.parameters()):,} parameters")
    return SaliencyHead(net).eval()


def validate_model(
    settings: ExportSettings, model_bytes: bytes, head: Any, label: str, reporter: Reporter, known: Any = None
) -> Any:
    from .validate import validate

    with timed_step(reporter, "validate") as detail:
        result = validate(
            model_bytes,
            head,
            shapes=settings.validation_shapes,
            tolerance=settings.tolerance,
            mean_tolerance=settings.mean_tolerance,
            seed=settings.seed,
            label=label,
            known=known,
        )
        detail.append(
            f"onnx.checker ok, |ort - torch| max {result.max_abs_diff:.2g}, mean {result.mean_abs_diff:.2g} "
            f"over {len(result.checks)} shapes"
        )
    return result


def expected_metadata(settings: ExportSettings, inputs: Inputs) -> dict[str, str]:
    import onnx
    import torch

    from .model import SELECTED_OUTPUT

    return build_metadata(
        upstream_repo=settings.pin.repo_url,
        upstream_commit=inputs.audit.commit,
        upstream_module_sha256=inputs.audit.module_sha256,
        upstream_pinned=not inputs.pin_problems,
        checkpoint_sha256=inputs.checkpoint_sha256,
        license_spdx=SPDX_ID,
        torch_version=torch.__version__,
        onnx_version=onnx.__version__,
        selected_output=SELECTED_OUTPUT,
        build_kind=inputs.build_kind,
    )


def run_export(settings: ExportSettings, reporter: Reporter = SILENT) -> ExportResult:
    """Audit, load, export, validate, then write ``settings.onnx_path`` atomically.

    On any error nothing new is left in dist; an earlier ONNX there stays as it was.
    """
    settings.check()
    inputs = audit_inputs(settings, reporter)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="witness") as pool:
        # The witness's photos are decoded and processed while torch loads and traces: they do
        # not need the model, and took 2-3 s of the witness's 8.6 s on the real model.
        from .witness import prepare

        return _export(settings, inputs, pool.submit(prepare, settings.upstream), reporter)


def _export(settings: ExportSettings, inputs: Inputs, preparing: Future[Any], reporter: Reporter) -> ExportResult:
    # torch and onnx load only now: a wrong path or option has failed in well under a second.
    from .atomic import write_bytes_atomic
    from .export import export_model
    from .validate import seeded_images

    head = load_head(settings, inputs, reporter)
    metadata = expected_metadata(settings, inputs)
    with timed_step(reporter, "export ONNX") as detail:
        # Traced at the first validation input (the graph depends only on its shape), so the
        # trace's own forward pass is torch's reference for that input.
        (example,) = seeded_images(settings.seed, [(1, TRACE_HEIGHT, TRACE_WIDTH)])
        exported = export_model(head, metadata, example)
        model_bytes = exported.model_bytes
        detail.append(f"opset {OPSET}, {INPUT_NAME} -> {OUTPUT_NAME}, dynamic N/H/W")
    known = None if exported.example_output is None else (exported.example, exported.example_output)
    validation = validate_model(settings, model_bytes, head, str(settings.onnx_path), reporter, known)
    inputs = witnessed(settings, inputs, model_bytes, reporter, preparing.result())
    if inputs.build_kind != metadata["build_kind"]:
        # The witness runs on the exported bytes; only the kind it decided is written again.
        from .export import with_metadata

        metadata = expected_metadata(settings, inputs)
        model_bytes = with_metadata(model_bytes, metadata)
    with timed_step(reporter, "write") as detail:
        write_bytes_atomic(settings.onnx_path, model_bytes)
        detail.append(f"{settings.onnx_path} ({len(model_bytes):,} bytes)")
    _remove_stale_outputs(settings, sha256_bytes(model_bytes), reporter)
    return ExportResult(
        inputs=inputs,
        onnx_path=settings.onnx_path,
        onnx_sha256=sha256_bytes(model_bytes),
        onnx_size=len(model_bytes),
        metadata=metadata,
        validation=validation,
    )


def _remove_stale_outputs(settings: ExportSettings, onnx_sha256: str, reporter: Reporter) -> None:
    """A new ONNX makes the old manifest and signatures wrong: remove them and say what to run.

    Left in place, ``sign`` would later fail on a hash mismatch that nobody explained.  A
    deterministic re-export of the same inputs gives the same bytes and removes nothing.
    """
    from .jsonio import StrictJSONError, loads_strict

    try:
        described = loads_strict(settings.manifest_path.read_bytes())["outputs"]["onnx_sha256"]
    except FileNotFoundError:
        described = None
    except (OSError, StrictJSONError, KeyError, TypeError):
        described = "unreadable"
    stale = [settings.dist / name for name in OUTPUTS_OF_AN_EXPORT if (settings.dist / name).exists()]
    if described == onnx_sha256 or not stale:
        return
    for path in stale:
        path.unlink()
    reporter.line(
        f"removed what described the previous ONNX: {', '.join(path.name for path in stale)}; "
        "run `invoke manifest`, then `invoke sign`"
    )
