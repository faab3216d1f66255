"""What an evaluation writes: evaluation.json (schema u2netp-mirror-evaluation-v1), .md and .png.

The JSON holds no absolute path (models, image and mask directories are named by their last
component) and is the same on every run of the same inputs apart from the latency figures;
floats are rounded to six significant digits so that the last bits of a thread-dependent sum
do not change it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import py_sod_metrics

from .metrics import AGREEMENT_THRESHOLD, BETA_SQUARED, LOWER_IS_BETTER, METRICS, resize_map

if TYPE_CHECKING:
    from .dataset import Sample
    from .models import SaliencyModel
    from .run import EvaluationSettings, Outcome

SCHEMA_ID = "u2netp-mirror-evaluation-v1"
METRIC_NAMES = {
    "mae": "MAE",
    "s_measure": "S-measure",
    "max_f": "max F-measure (β² = 0.3)",
    "mean_e": "mean E-measure",
    "weighted_f": "weighted F-measure",
}


def schema_problems(result: dict[str, Any]) -> list[str]:
    """Every way ``result`` breaks evaluation.schema.json (empty if it is valid)."""
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("evaluation.schema").joinpath("evaluation.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(result)]


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {key: _round(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_round(item) for item in value]
    return value


def document(settings: EvaluationSettings, models: dict[str, SaliencyModel], outcome: Outcome) -> dict[str, Any]:
    with_masks = sum(1 for row in outcome.rows if row.metrics["candidate"] is not None)
    metrics = {role: totals.results() for role, totals in outcome.totals.items()} if with_masks else None
    return _round(
        {
            "schema": SCHEMA_ID,
            "inputs": {
                "candidate": models["candidate"].describe(),
                "baseline": models["baseline"].describe() if "baseline" in models else None,
                "images": {
                    "directory": settings.images.name,
                    "found": outcome.found,
                    "evaluated": len(outcome.rows),
                    "with_masks": with_masks,
                },
                "masks": {"directory": settings.masks.name} if settings.masks is not None else None,
            },
            "protocol": {
                "metrics": f"pysodmetrics {py_sod_metrics.__version__}"
                if hasattr(py_sod_metrics, "__version__")
                else "pysodmetrics",
                "map": "min-max normalised, resized bilinearly to the mask's size, 8-bit; mask thresholded at 128",
                "beta_squared": BETA_SQUARED,
                "max_f": "maximum over the 256 thresholds of the F-measure curve averaged over the images",
                "mean_e": "mean over the 256 thresholds of the E-measure curve averaged over the images",
                "agreement": f"raw maps at the candidate's size; masks at {AGREEMENT_THRESHOLD}",
            },
            "skipped": [{"file": problem.file, "reason": problem.reason} for problem in outcome.skipped],
            "metrics": metrics,
            "latency_ms": outcome.latency,
            "agreement": outcome.agreement.results(),
            "per_image": [
                {
                    "image": row.image,
                    "mask": row.mask,
                    "metrics": row.metrics,
                    "agreement": row.agreement,
                }
                for row in outcome.rows
            ],
        }
    )


def _better(metric: str, candidate: float, baseline: float) -> str:
    if candidate == baseline:
        return "equal"
    lower = metric in LOWER_IS_BETTER
    return "candidate" if (candidate < baseline) == lower else "baseline"


def _verdict_lines(verdict: dict[str, Any]) -> list[str]:
    """The promotion gate's decision, first: what the report is for."""
    lines = [f"**Verdict: {verdict['summary']}.**", ""]
    if verdict["rules"]:
        lines += ["| rule | candidate | baseline | limit | holds |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| {rule['rule']} | {rule['candidate']:.4g} | {rule['reference']:.4g} | {rule['limit']:g} | "
            f"{'yes' if rule['passed'] else '**no**'} |"
            for rule in verdict["rules"]
        ]
        lines.append("")
    return lines


def markdown(result: dict[str, Any]) -> str:
    inputs = result["inputs"]
    candidate, baseline = inputs["candidate"], inputs["baseline"]
    images = inputs["images"]
    lines = [
        "# Evaluation",
        "",
        f"Candidate `{candidate['file']}` (sha256 `{candidate['sha256'][:16]}…`)"
        + (f" against baseline `{baseline['file']}` (sha256 `{baseline['sha256'][:16]}…`)" if baseline else "")
        + f" on {images['evaluated']} images of `{images['directory']}/`, {images['with_masks']} with masks.",
        "",
        *_verdict_lines(result["verdict"]),
    ]
    if result["metrics"]:
        scored = result["metrics"]
        lines += ["| metric | candidate | baseline | better |", "| --- | --- | --- | --- |"]
        for metric in METRICS:
            ours = scored["candidate"][metric]
            theirs = scored["baseline"][metric] if baseline else None
            verdict = _better(metric, ours, theirs) if theirs is not None else ""
            arrow = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
            mark_ours = " **✓**" if verdict == "candidate" else ""
            mark_theirs = " **✓**" if verdict == "baseline" else ""
            shown_theirs = f"{theirs:.4f}{mark_theirs}" if theirs is not None else "–"
            lines.append(f"| {METRIC_NAMES[metric]} ({arrow}) | {ours:.4f}{mark_ours} | {shown_theirs} | {verdict} |")
        lines.append("")
    else:
        lines += ["No masks: agreement only.", ""]
    if result["agreement"]:
        agreement = result["agreement"]
        lines += [
            f"Agreement: max |Δ| {agreement['max_abs_diff']:.3g}, mean |Δ| {agreement['mean_abs_diff']:.3g}, "
            f"{agreement['mask_disagreement'] * 100:.3g}% of pixels on opposite sides of 0.5.",
            "",
        ]
        differ = sorted(result["per_image"], key=lambda row: -row["agreement"]["mean_abs_diff"])[:5]
        lines += ["Where the models differ most (mean |Δ|):", ""]
        lines += [f"- `{row['image']}`: {row['agreement']['mean_abs_diff']:.3g}" for row in differ]
        lines.append("")
    latency = result["latency_ms"]
    timed = ", ".join(f"{role} {latency[role]:.1f} ms" for role in ("candidate", "baseline") if role in latency)
    lines += [
        f"Latency per image (median of {latency['samples']}, batch 1, {latency['threads']} threads, "
        f"after {latency['warmup_runs']} warm-up runs): {timed}.",
        "",
    ]
    if result["skipped"]:
        lines += ["Skipped or partly skipped:", ""]
        lines += [f"- `{problem['file']}`: {problem['reason']}" for problem in result["skipped"]]
        lines.append("")
    lines += ["![image, mask, candidate, baseline](evaluation.png)", ""]
    return "\n".join(lines)


def _cells(sample: Sample, maps: dict[str, np.ndarray], with_baseline: bool) -> tuple[list[Any], float]:
    """A row's pictures, the maps resized to the photo's shape for display; and the largest |Δ|."""
    shape = (sample.image.height, sample.image.width)
    candidate = resize_map(maps["candidate"][0], shape)
    cells: list[Any] = [np.asarray(sample.image), sample.mask, candidate]
    largest = 0.0
    if with_baseline:
        baseline = resize_map(maps["baseline"][0], shape)
        difference = np.abs(candidate - baseline)
        largest = float(difference.max())
        # Scaled to the row's own largest difference, or the tiny ones of an equivalent model vanish.
        cells += [baseline, difference / largest if largest > 0 else difference]
    return cells, largest


def picture(shown: list[tuple[Sample, str, dict[str, np.ndarray]]], with_baseline: bool) -> bytes:
    """A grid, one row per image: image, mask, candidate map, baseline map, |difference| (scaled per row)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    columns = ["image", "mask", "candidate", *(["baseline", "|Δ|, scaled to the row's max"] if with_baseline else [])]
    rows = max(len(shown), 1)
    figure, axes = pyplot.subplots(rows, len(columns), figsize=(2.4 * len(columns), 2.0 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for index, (sample, why, maps) in enumerate(shown):
        cells, largest = _cells(sample, maps, with_baseline)
        for column, cell in enumerate(cells):
            axis = axes[index][column]
            if cell is None:
                axis.text(0.5, 0.5, "no mask", ha="center", va="center")
            else:
                grey = cell.ndim == 2
                top = (255 if cell.dtype == np.uint8 else 1) if grey else None  # masks are 8-bit, maps in [0, 1]
                axis.imshow(cell, cmap="gray" if grey else None, vmin=0, vmax=top)
            if index == 0:
                axis.set_title(columns[column], fontsize=8)
        label = f"{sample.name} ({why}" + (f"; max |Δ| {largest:.2g})" if with_baseline else ")")
        first = axes[index][0]
        first.text(0, -0.06, label, transform=first.transAxes, fontsize=7, va="top")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    pyplot.close(figure)
    return buffer.getvalue()
