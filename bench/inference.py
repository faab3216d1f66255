"""Rows about the model itself: onnxruntime against torch, ours against the file consumers use, size,
and how close onnxruntime stays to torch under every setting a consumer might pick."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from .common import BenchModel, Row, Sample, paired_ratio, paired_summary, settled

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_ALL")


def session(
    model: Path | bytes, level: str = "ORT_ENABLE_ALL", threads: int = 0, fixed: dict[str, int] | None = None
) -> Any:
    """An onnxruntime CPU session; ``fixed`` pins named dynamic dimensions (free-dimension overrides)."""
    import onnxruntime

    from evaluation.models import session_options

    options = session_options(threads, fixed)
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, level)
    source = str(model) if isinstance(model, Path) else model
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def head_of(model: BenchModel) -> Any:
    from mirror.model import SaliencyHead, build_u2netp, load_checkpoint

    net = build_u2netp(model.upstream)
    load_checkpoint(net, model.checkpoint)
    return SaliencyHead(net).eval()


def bench_inference(model: BenchModel, onnx_path: Path, repeat: int) -> list[Row]:
    """onnxruntime (the best of three optimisation levels) against torch eager, same threads."""
    import numpy as np
    import torch

    head = head_of(model)
    threads = torch.get_num_threads()
    sessions = {level.split("_")[-1].lower(): session(onnx_path, level, threads) for level in LEVELS[1:]}
    rows = []
    for height, width in ((320, 320), (768, 1024)):
        image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1))
        feed = {"input": image.numpy()}
        with torch.no_grad():
            reference = head(image).numpy()
        diffs = {name: float(np.abs(s.run(None, feed)[0] - reference).max()) for name, s in sessions.items()}
        timings: dict[str, list[float]] = {name: [] for name in [*sessions, "torch"]}
        for _ in range(2 * repeat):  # interleaved: slow drift of the machine hits every side alike
            for name, s in sessions.items():
                timings[name].append(settled(lambda s=s, f=feed: s.run(None, f)))
            with torch.no_grad():
                timings["torch"].append(settled(lambda image=image: head(image)))
        best = min(sessions, key=lambda name: Sample(timings[name]).median)
        ours, floor = Sample(timings[best]), Sample(timings["torch"])
        ratio = ours.median / floor.median
        notes = [f"threads: {threads} (torch) = {threads} (onnxruntime intra-op)"]
        notes += [
            f"ORT {name}: {Sample(timings[name]).median * 1000:,.2f} ms, max |ort - torch| {diffs[name]:.1e}"
            for name in sessions
        ]
        rows.append(
            Row(
                f"inference {height}×{width}: onnxruntime ({best}) vs torch eager d0",
                ours,
                floor,
                "s",
                ratio,
                "≤ 0.6×",
                ratio <= 0.6,
                notes,
                model=model.label,
            )
        )
    return rows


def _in_turn(first: Path, second: Path, turn: int) -> tuple[Path, Path]:
    # Who goes first alternates (ABBA): a cost of going first or second falls on both sides.
    return (first, second) if turn % 2 == 0 else (second, first)


# A consumer that always runs at one size can say so; the names are our ONNX's dynamic axes
# (rembg's file has fixed dimensions, which these leave as they are).
FIXED_320 = {"batch": 1, "height": 320, "width": 320}


def turn_latencies(
    paths: tuple[Path, Path], image: Any, rounds: int, fixed: dict[str, int] | None = None
) -> tuple[dict[Path, list[float]], dict[Path, Any]]:
    """Seconds per run of each model on ``image``, after two warm-up runs each, the two taking
    turns for ``rounds`` rounds; and each model's output."""
    sessions = {path: session(path, fixed=fixed) for path in paths}
    feeds = {path: {s.get_inputs()[0].name: image} for path, s in sessions.items()}
    outputs = {}
    for path, s in sessions.items():
        for _ in range(2):
            outputs[path] = s.run(None, feeds[path])[0]
    times: dict[Path, list[float]] = {path: [] for path in paths}
    for turn in range(rounds):
        for path in _in_turn(*paths, turn):
            s, feed = sessions[path], feeds[path]
            times[path].append(settled(lambda s=s, feed=feed: s.run(None, feed)))
    return times, outputs


def _session_starts(first: Path, second: Path, rounds: int) -> dict[Path, list[float]]:
    created: dict[Path, list[float]] = {first: [], second: []}
    for turn in range(rounds):
        for path in _in_turn(first, second, turn):
            start = time.perf_counter()
            session(path)
            created[path].append(time.perf_counter() - start)
    return created


def rewrite_effect(ours_path: Path, plain_trace: Path, repeat: int) -> str:
    """What the resize-size rewrite (mirror/resize_sizes.py) saves at session start: our ONNX
    against the same network as the tracer wrote it (the export row's bare script)."""
    import onnx

    created = _session_starts(ours_path, plain_trace, 3 * repeat)
    ratio, low, high = paired_ratio(created[ours_path], created[plain_trace])
    nodes = [len(onnx.load(path, load_external_data=False).graph.node) for path in (ours_path, plain_trace)]
    return (
        f"against the plain trace (the export row's bare script, {nodes[1]:,} nodes; ours {nodes[0]:,}, the "
        f"resize sizes rewritten): {ratio:.2f}× its session creation, 95% interval {low:.2f}–{high:.2f}"
    )


def bench_consumer(
    ours_path: Path, baseline: Path, baseline_label: str, label: str, repeat: int, plain_trace: Path | None = None
) -> list[Row]:
    """What a consumer of the file pays: latency at 320x320 batch 1 (with the sizes left dynamic, and
    pinned for the session), and creating a session (a cold start); with ``plain_trace``, also
    what the graph rewrite saves at session start."""
    # One measurement session, kept whole so every timing shares the same warm-up and order.
    import os

    import numpy as np

    paths = (ours_path, baseline)
    image = np.random.default_rng(1).standard_normal((1, 3, 320, 320)).astype(np.float32)
    created = _session_starts(ours_path, baseline, 3 * repeat)
    # Two runs of one network: only many rounds tell them apart from noise.
    dynamic, outputs = turn_latencies(paths, image, 5 * repeat)
    fixed, _ = turn_latencies(paths, image, 5 * repeat, FIXED_320)
    same = f"outputs at this input differ by at most {float(np.abs(outputs[ours_path] - outputs[baseline]).max()):.2g}"
    common = f"ORT_ENABLE_ALL, intra-op threads onnxruntime's default ({os.cpu_count()} cores), inter-op 1, CPU"
    turns = "the two take turns, first and second alternately"
    # (what, times, target, judged by the interval, notes).  The same network twice: the true
    # latency ratio is 1 give or take a few node launches, finer than this machine's noise,
    # so for that row "not shown slower" is what the data can establish.
    measured = (
        (
            "latency 320×320, batch 1",
            dynamic,
            "≤ 1.0× (within its 95% interval)",
            True,
            [f"both sessions: {common}; {turns}, after two warm-up runs each", same],
        ),
        (
            "latency 320×320, batch 1, sizes fixed",
            fixed,
            "≤ 1.0×",
            False,
            [
                "both sessions as above, plus free-dimension overrides batch=1, height=320, width=320 (a no-op for "
                "a file whose sizes are fixed already): with every shape known, onnxruntime keeps the whole network "
                "in its blocked (NCHWc) layout and upsamples there, which it cannot do while sizes may change"
            ],
        ),
        (
            "session creation (cold start)",
            created,
            "≤ 1.0×",
            False,
            [f"each a new session as above; {turns}"]
            + ([rewrite_effect(ours_path, plain_trace, repeat)] if plain_trace else []),
        ),
    )
    rows = []
    for what, times, target, by_interval, notes in measured:
        ours, floor = Sample(times[ours_path]), Sample(times[baseline])
        ratio, low, summary = paired_summary(ours, floor)
        met = low <= 1.0 if by_interval else ratio <= 1.0
        rows.append(
            Row(f"{what}: our ONNX vs {baseline_label}", ours, floor, "s", ratio, target, met, [summary, *notes], label)
        )
    return rows


def bench_size(model: BenchModel, onnx_path: Path) -> Row:
    import torch

    state = torch.load(model.checkpoint, weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    size = onnx_path.stat().st_size
    ratio = size / (4 * parameters)
    return Row(
        "size: ONNX bytes vs 4 × parameters",
        Sample([size]),
        Sample([4 * parameters]),
        "B",
        ratio,
        "≤ 1.05×",
        ratio <= 1.05,
        [f"{parameters:,} float32 parameters (batch-norm statistics included)"],
        model=model.label,
    )


def validation_margin(model: BenchModel, onnx_path: Path) -> list[str]:
    """|onnxruntime - torch| at each validation input under every setting a consumer might choose."""
    import numpy as np
    import torch

    from mirror.settings import DEFAULT_VALIDATION_SHAPES, default_number

    tolerance, mean_tolerance = default_number("export", "tolerance"), default_number("export", "mean_tolerance")
    from mirror.validate import seeded_images

    head = head_of(model)
    images = seeded_images(0, DEFAULT_VALIDATION_SHAPES)
    all_cores = torch.get_num_threads()
    references = {}
    for threads in sorted({1, all_cores}):
        torch.set_num_threads(threads)
        with torch.no_grad():
            references[threads] = [head(image).numpy() for image in images]
    torch.set_num_threads(all_cores)
    header = "| onnxruntime | torch | " + " | ".join(f"{b}×{h}×{w} max, mean" for b, h, w in DEFAULT_VALIDATION_SHAPES)
    lines = [header + " |", "| --- | --- |" + " --- |" * len(images)]
    worst_max = worst_mean = 0.0
    for level, ort_threads in itertools.product(LEVELS, sorted({1, all_cores})):
        outputs = [session(onnx_path, level, ort_threads).run(None, {"input": x.numpy()})[0] for x in images]
        for torch_threads, reference in references.items():
            cells = []
            for found, expected in zip(outputs, reference, strict=True):
                difference = np.abs(found - expected)
                worst_max, worst_mean = max(worst_max, difference.max()), max(worst_mean, difference.mean())
                cells.append(f"{difference.max():.2e}, {difference.mean():.1e}")
            short = level.removeprefix("ORT_").lower()
            lines.append(
                f"| {short}, {ort_threads} thread(s) | {torch_threads} thread(s) | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        f"Worst: {worst_max:.2e} largest, {worst_mean:.2e} mean. The default tolerances (export.tolerance "
        f"{tolerance:g}, export.mean_tolerance {mean_tolerance:g}) leave "
        f"{tolerance / worst_max:.0f}× and {mean_tolerance / worst_mean:.0f}× for other CPUs' "
        "kernels; see the model card.",
    ]
    return lines
