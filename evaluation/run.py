"""The evaluation, end to end: stream the images through both models, score, time, report.

Images are read, preprocessed and scored one batch at a time, and only numbers are kept per
image, so thousands of images take flat memory.  Both models get the same preprocessed input
when their preprocessing is the same (ours and upstream's are).  The few images the picture
shows are run again at the end rather than kept.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from mirror.atomic import write_files_atomic
from mirror.reporting import SILENT, Reporter
from mirror.settings import default_number

from .dataset import Entry, Sample, Skipped, discover, load, samples
from .errors import EvaluationError, EvaluationUsageError
from .gate import Gate, judge
from .metrics import AgreementTotals, MetricTotals, agreement, image_metrics, protocol_map
from .models import MAX_INPUT_SIDE, SaliencyModel, default_threads

WARMUP_RUNS = 2


@dataclass(frozen=True)
class EvaluationSettings:
    candidate: Path
    images: Path
    out: Path
    baseline: Path | None = None
    masks: Path | None = None
    # Defaults: u2netp.evaluate in defaults.yaml, the one place they are set (threads 0: all cores).
    batch_size: int = field(default_factory=lambda: int(default_number("evaluate", "batch_size")))
    threads: int = field(default_factory=lambda: int(default_number("evaluate", "threads")) or default_threads())
    size: tuple[int, int] | None = None  # overrides the models' preprocessing size
    latency_samples: int = field(default_factory=lambda: int(default_number("evaluate", "latency_samples")))
    grid_rows: int = field(default_factory=lambda: int(default_number("evaluate", "grid_rows")))
    # The promotion gate's thresholds (u2netp.evaluate.gate).
    gate: Gate = field(default_factory=Gate.shipped)

    def check(self) -> None:
        if self.batch_size < 1 or self.threads < 1 or self.latency_samples < 1 or self.grid_rows < 1:
            raise EvaluationUsageError("--batch-size, --threads, --latency-samples and --grid-rows must be at least 1")
        if self.out.exists() and not self.out.is_dir():
            raise EvaluationError(f"{self.out}: is a file, not a directory; pass --out with a directory")
        if self.size is not None and max(self.size) > MAX_INPUT_SIDE:
            raise EvaluationUsageError(f"--size {self.size[0]}x{self.size[1]}: sides up to {MAX_INPUT_SIDE} only")


@dataclass
class Row:
    """What the run keeps of one image: numbers only."""

    image: str
    mask: str | None
    metrics: dict[str, dict[str, float] | None]  # model role -> its five metrics (None without a mask)
    agreement: dict[str, float] | None


@dataclass
class Outcome:
    rows: list[Row]
    skipped: list[Skipped]
    totals: dict[str, MetricTotals]
    agreement: AgreementTotals
    latency: dict[str, Any]
    found: int


def _batches(stream: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    while batch := list(islice(stream, size)):
        yield batch


def _maps(
    models: dict[str, SaliencyModel], batch: list[Sample], pool: ThreadPoolExecutor | None = None
) -> dict[str, np.ndarray]:
    """Each model's maps for the batch; one preprocessed tensor serves every model with the same
    recipe.  With a ``pool``, the models run side by side (onnxruntime releases the GIL)."""
    made: list[tuple[Any, np.ndarray]] = []
    running: dict[str, Future[np.ndarray] | np.ndarray] = {}
    for role, model in models.items():
        tensor = next((t for prep, t in made if prep.same_input(model.preprocessing)), None)
        if tensor is None:
            tensor = np.stack([model.preprocessing.tensor(sample.image) for sample in batch])
            made.append((model.preprocessing, tensor))
        running[role] = pool.submit(model.predict, tensor) if pool is not None else model.predict(tensor)
    return {role: maps.result() if isinstance(maps, Future) else maps for role, maps in running.items()}


def _throughput_models(models: dict[str, SaliencyModel], batch_size: int, threads: int) -> dict[str, SaliencyModel]:
    """The models as the scoring pass runs them: side by side, the threads split between them,
    each session made for one input shape.

    Measured on the bench machine (2 cores, U2NETP at 320x320): the two models run side by side
    on one thread each took 0.65-0.68 s per image, one after the other on two threads each
    0.72-0.85 s; fixed sizes take off another ~5%.  The latency figures still come from the
    models as consumers load them, on every thread, one at a time (``_latency``).
    """
    share = max(1, threads // len(models))
    return {role: model.fixed_for(batch_size, share) for role, model in models.items()}


def _score(sample: Sample, maps: dict[str, np.ndarray], outcome: Outcome) -> Row:
    scores: dict[str, dict[str, float] | None] = {}
    for role, saliency in maps.items():
        if sample.mask is None:
            scores[role] = None
            continue
        values, f_curve, e_curve = image_metrics(protocol_map(saliency, sample.mask.shape), sample.mask)
        outcome.totals[role].add(values, f_curve, e_curve)
        scores[role] = values
    agreed = agreement(maps["candidate"], maps["baseline"]) if "baseline" in maps else None
    if agreed is not None:
        outcome.agreement.add(agreed)
    return Row(sample.name, sample.mask_name, scores, agreed)


def _latency(models: dict[str, SaliencyModel], kept: list[Sample], threads: int) -> dict[str, Any]:
    """Median milliseconds per image, batch 1, after warm-up, the models taking turns on each image."""
    timings: dict[str, list[float]] = {role: [] for role in models}
    inputs = {role: [model.preprocessing.tensor(s.image)[None] for s in kept] for role, model in models.items()}
    for role, model in models.items():
        for _ in range(WARMUP_RUNS):
            model.predict(inputs[role][0])
    for index in range(len(kept)):
        for role, model in models.items():
            start = time.perf_counter()
            model.predict(inputs[role][index])
            timings[role].append((time.perf_counter() - start) * 1000)
    return {
        **{role: statistics.median(values) for role, values in timings.items()},
        "samples": len(kept),
        "threads": threads,
        "batch": 1,
        "warmup_runs": WARMUP_RUNS,
    }


def _stream(
    settings: EvaluationSettings,
    models: dict[str, SaliencyModel],
    entries: list[Entry],
    skipped: list[Skipped],
    reporter: Reporter,
) -> Outcome:
    roles = list(models)
    outcome = Outcome([], skipped, {role: MetricTotals() for role in roles}, AgreementTotals(), {}, len(entries))
    fixed = [m.fixed_batch for m in models.values() if m.fixed_batch]
    batch_size = max(1, min([settings.batch_size, len(entries), *fixed]))
    runners = _throughput_models(models, batch_size, settings.threads)
    kept: list[Sample] = []  # the first few images, for the latency runs
    done = 0
    with ThreadPoolExecutor(max_workers=len(runners), thread_name_prefix="evaluate") as pool:
        for batch in _batches(samples(entries, skipped), batch_size):
            maps = _maps(runners, batch, pool)
            for index, sample in enumerate(batch):
                outcome.rows.append(_score(sample, {role: maps[role][index] for role in roles}, outcome))
                if len(kept) < settings.latency_samples:
                    kept.append(sample)
            done += len(batch)
            unreadable = sum(1 for s in skipped if s.image_lost)
            reporter.progress("images", done + unreadable, len(entries), unit="images")
    # Each session's arena holds its activations (~450 MiB for U2NETP at 320x320): the scoring
    # pass's go before the latency runs fill the consumers' sessions (peak RSS 1.1 GiB, not 2).
    del runners
    if not outcome.rows:
        raise EvaluationError(f"{settings.images}: none of its {len(entries)} images could be read")
    outcome.latency = _latency(models, kept, settings.threads)
    return outcome


def _difference(row: Row) -> float:
    return row.agreement["mean_abs_diff"] if row.agreement else 0.0


def _candidate_mae(row: Row) -> float:
    scores = row.metrics.get("candidate")
    return scores["mae"] if scores else 0.0


def grid_picks(rows: list[Row], count: int) -> list[tuple[Row, str]]:
    """The rows the picture shows: where the models differ most (or the candidate errs most), then
    typical ones, nearest the median."""
    if rows[0].agreement is not None:
        key, label = _difference, "differs most"
    elif rows[0].metrics.get("candidate") is not None:
        key, label = _candidate_mae, "worst MAE"
    else:
        return [(row, "first") for row in rows[:count]]
    ordered = sorted(rows, key=lambda row: (-key(row), row.image))
    most = ordered[: (count + 1) // 2]
    median = statistics.median(key(row) for row in rows)
    rest = sorted((row for row in rows if row not in most), key=lambda row: (abs(key(row) - median), row.image))
    return [(row, label) for row in most] + [(row, "typical") for row in rest[: count - len(most)]]


def evaluate(settings: EvaluationSettings, reporter: Reporter = SILENT) -> dict[str, Any]:
    """Run the evaluation and write evaluation.json, .md and .png into ``settings.out``; return the document."""
    from .report import document, markdown, picture, schema_problems

    settings.check()
    entries, skipped = discover(settings.images, settings.masks), list[Skipped]()
    models = {"candidate": SaliencyModel(settings.candidate, threads=settings.threads, size=settings.size)}
    if settings.baseline is not None:
        models["baseline"] = SaliencyModel(
            settings.baseline, threads=settings.threads, size=settings.size, flag="--baseline"
        )
    for role, model in models.items():
        prep = model.preprocessing
        reporter.line(
            f"{role}: {model.path.name} ({model.input_name} -> {model.output_name}, batch {model.describe()['batch']}, "
            f"{prep.size[0]}x{prep.size[1]} from {prep.source})"
        )
    reporter.line(
        f"images: {len(entries)} in {settings.images}" + (f", masks from {settings.masks}" if settings.masks else "")
    )
    outcome = _stream(settings, models, entries, skipped, reporter)
    for problem in outcome.skipped:
        reporter.line(f"warning: {problem.file}: {problem.reason}")
    picks = grid_picks(outcome.rows, settings.grid_rows)
    by_name = {entry.image.name: entry for entry in entries}
    shown = []
    for row, why in picks:
        sample, _ = load(by_name[row.image])
        if sample is not None:
            shown.append((sample, why, _maps(models, [sample])))
    result = document(settings, models, outcome)
    result["verdict"] = judge(result, settings.gate)
    if problems := schema_problems(result):  # our bug if it happens; never write a report readers reject
        raise EvaluationError(f"evaluation.json would not match its schema ({problems[0]})")
    files = {
        settings.out / "evaluation.json": _json_bytes(result),
        settings.out / "evaluation.md": markdown(result).encode("utf-8"),
        settings.out / "evaluation.png": picture(shown, "baseline" in models),
    }
    write_files_atomic(files)
    return result


def _json_bytes(result: dict[str, Any]) -> bytes:
    from mirror.jsonio import canonical_json

    return canonical_json(result)
