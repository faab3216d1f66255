"""``invoke bench``: the toolkit measured against its floors, each pair side by side in one run.

Every row times our way and the floor (a bare script, the stock CLI, curl, sha256sum, plain
``import invoke``, the file consumers already use) alternately, several times, and reports
medians, spreads and the ratio against a target.  These are measurements for
docs/benchmarks.md, never assertions in tests.

The model-dependent rows run on the real U2NETP when given an upstream checkout and a
checkpoint (``--upstream``, ``--checkpoint``), on the embedded fixture otherwise; the report
says which model each row used.  Needs a checkout: the loopback servers are in loopback/.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mirror.reporting import Reporter

from .common import PYTHON, BenchModel, Row, Sample, alternate, invoke_args, random_file, run
from .evaluate import bench_evaluate
from .export import bench_export
from .inference import bench_consumer, bench_inference, bench_size, validation_margin
from .publishing import bench_transfer, bench_verify
from .quantized import bench_quantized
from .report import write_report


@dataclass(frozen=True)
class BenchOptions:
    output: Path
    quick: bool = False
    upstream: Path | None = None
    checkpoint: Path | None = None
    # The ONNX consumers use today (rembg's u2netp.onnx); default: a plain torch.onnx.export.
    baseline: Path | None = None

    def check(self) -> None:
        """Refuse a combination that would fail, or mislead, only minutes into the run."""
        from mirror.errors import InputError, UsageError

        if (self.upstream is None) != (self.checkpoint is None):
            raise UsageError("--upstream and --checkpoint go together: the real model needs both")
        if self.baseline is not None and self.upstream is None:
            raise UsageError(
                f"{self.baseline}: a baseline is compared with an export of the same network; "
                "also give --upstream and --checkpoint"
            )
        for path in (self.upstream, self.checkpoint, self.baseline):
            if path is not None and not path.exists():
                raise InputError(f"{path}: not found")


def bench_startup(repeat: int) -> Row:
    ours, floor = alternate(lambda: run(invoke_args("--list")), lambda: run([PYTHON, "-c", "import invoke"]), repeat)
    ratio = ours.median / floor.median
    return Row("start-up: `invoke --list` vs `python -c 'import invoke'`", ours, floor, "s", ratio, "≤ 2×", ratio <= 2)


def bench_hashing(scratch: Path, size: int, repeat: int) -> Row:
    data = random_file(scratch / "hash.bin", size)
    script = f"from mirror.hashing import sha256_file; sha256_file(__import__('pathlib').Path({str(data)!r}))"
    ours, floor = alternate(lambda: run([PYTHON, "-c", script]), lambda: run(["sha256sum", str(data)]), repeat)
    data.unlink()
    throughput = floor.median / ours.median  # ours relative to sha256sum, in throughput
    return Row(
        f"sha256 of {size >> 20} MiB: ours vs `sha256sum`",
        ours,
        floor,
        "s",
        throughput,
        "≥ 0.9× throughput",
        throughput >= 0.9,
        [f"{size / ours.median / 2**20:,.0f} MiB/s vs {size / floor.median / 2**20:,.0f} MiB/s"],
    )


def _model(options: BenchOptions, scratch: Path) -> tuple[BenchModel, str]:
    """The model the model-dependent rows use, and a sentence saying what it is."""
    from mirror.settings import UpstreamPin, shipped_defaults

    if options.upstream is not None and options.checkpoint is not None:
        from mirror.hashing import sha256_file
        from mirror.upstream import audit_checkout

        pins = UpstreamPin.from_config(shipped_defaults()["u2netp"]["pin"])
        audit = audit_checkout(options.upstream, pins)
        sha = sha256_file(options.checkpoint)
        sentence = (
            f"the real U2NETP: upstream's `model/u2net.py` from the audited checkout (commit {audit.commit[:12]}) "
            f"with the checkpoint `{options.checkpoint.name}` (sha256 {sha[:12]}…)"
        )
        return BenchModel("real U2NETP", options.upstream, options.checkpoint, pins, {}), sentence
    from mirror.fixture import SMALL_WIDTH, U2NETP_SIZED_WIDTH, build_fixture

    fixture = build_fixture(scratch / "U-2-Net", width=SMALL_WIDTH if options.quick else U2NETP_SIZED_WIDTH)
    # The checkpoint pin comes from a runtime config file: defaults.yaml has no such key until a
    # checkpoint is audited, and Invoke reads INVOKE_U2NETP_* variables only for keys it knows.
    runtime = scratch / "checkpoint-pin.json"
    runtime.write_text(json.dumps({"u2netp": {"pin": {"checkpoint_sha256": fixture.pin.checkpoint_sha256}}}))
    env = {
        "INVOKE_U2NETP_PIN_COMMIT": fixture.pin.commit,
        "INVOKE_U2NETP_PIN_MODULE_SHA256": fixture.pin.module_sha256,
        "INVOKE_U2NETP_PIN_LICENSE_SHA256": fixture.pin.license_sha256,
        "INVOKE_RUNTIME_CONFIG": str(runtime),
    }
    if options.quick:
        sentence = "the small demo fixture (11 k parameters, random weights; a smoke run, not representative)"
    else:
        sentence = (
            "the demo fixture at U2NETP's size: a stand-in network with 1.15 M parameters (U2NETP has 1.13 M), "
            "random weights; its full-resolution stages are wider than U2NETP's, so it computes more per pixel"
        )
    pins = replace(fixture.pin, source="config")
    return BenchModel("fixture stand-in", fixture.root, fixture.checkpoint, pins, env), sentence


def run_benchmarks(options: BenchOptions, reporter: Reporter) -> list[Row]:
    options.check()
    quick = options.quick
    repeat = 2 if quick else 5
    # Sub-second commands vary by tens of ms run to run on a shared 2-core machine, and 1 GiB
    # transfers by whole seconds when the host stalls a write: more samples for both.
    short = 2 if quick else 11
    transfers = 2 if quick else 11
    # An export round is ~10 s and the host's stalls move either side by a second or more.
    exports = 2 if quick else 9
    # An evaluate round runs each side over the photos twice (~2 min on the real model).
    evaluations = 1 if quick else 2
    latencies = 3 if quick else 15
    big = (16 if quick else 1024) << 20
    started = time.strftime("%Y-%m-%d")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="u2netp-bench-") as tmp:
        scratch = Path(tmp)
        model, model_sentence = _model(options, scratch)
        exported = scratch / "export-dist" / "u2netp_mirror_v1.onnx"
        baseline = options.baseline or scratch / "bare.onnx"  # the export row writes bare.onnx
        baseline_label = f"`{options.baseline.name}`" if options.baseline else "a plain `torch.onnx.export`"
        # Against another baseline, the plain trace still shows what the graph rewrite saves.
        plain_trace = scratch / "bare.onnx" if options.baseline else None
        sections: dict[str, list[str]] = {}

        def quantized() -> Row:
            row, sections["int8 frontier"] = bench_quantized(
                model.label, model.upstream, exported, baseline, baseline_label, scratch, latencies
            )
            return row

        steps: list[tuple[str, Callable[[], Row | list[Row]]]] = [
            ("start-up", lambda: bench_startup(short)),
            ("hashing", lambda: bench_hashing(scratch, big, repeat)),
            ("export", lambda: bench_export(model, scratch, exports)),
            ("inference", lambda: bench_inference(model, exported, repeat)),
            ("consumer", lambda: bench_consumer(exported, baseline, baseline_label, model.label, short, plain_trace)),
            ("size", lambda: bench_size(model, exported)),
            ("evaluate", lambda: bench_evaluate(model.label, model.upstream, exported, baseline, scratch, evaluations)),
            ("int8", quantized),
            ("verify", lambda: bench_verify(model, scratch, short)),
            ("transfer", lambda: bench_transfer(scratch, big, transfers)),
        ]
        for name, step in steps:
            start = time.perf_counter()
            result = step()
            new = result if isinstance(result, list) else [result]
            rows.extend(new)
            reporter.line(
                f"{name}: "
                + "; ".join(f"{r.ratio:.2f}× ({r.target}{'' if r.met else ', MISSED'})" for r in new)
                + f" ({time.perf_counter() - start:.1f} s)"
            )
        margin = validation_margin(model, exported)
        reporter.line("validation margin: measured")
        write_report(rows, options.output, quick, model_sentence, started, {**sections, "Validation margin": margin})
    return rows


__all__ = ["BenchOptions", "Row", "Sample", "run_benchmarks"]
