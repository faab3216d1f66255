"""An int8 variant of our export, only if a measurement promotes it: each onnxruntime.quantization
recipe is timed against the file consumers use and judged by the evaluation's promotion gate
against our fp32 export on labelled images the calibration never saw.

The bench measures and the gate decides; nothing here publishes.  A recipe that reaches the
latency target but fails the gate is reported on the frontier, never shipped.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import Row, Sample, paired_ratio
from .inference import turn_latencies

LATENCY_TARGET = 0.6  # of the file consumers use, at 320x320, batch 1
RECIPES = (
    ("dynamic, QUInt8 weights", {"dynamic": True}),
    ("static QDQ, per-tensor, MinMax", {"per_channel": False, "method": "MinMax"}),
    ("static QDQ, per-channel, MinMax", {"per_channel": True, "method": "MinMax"}),
    ("static QDQ, per-channel, Entropy", {"per_channel": True, "method": "Entropy"}),
    ("static QDQ, per-channel, Percentile", {"per_channel": True, "method": "Percentile"}),
)


@dataclasses.dataclass
class Labelled:
    calibration: list[Path]
    images: Path  # held out: never seen by the calibration
    masks: Path
    sentence: str


def _labelled(model_root: Path, scratch: Path) -> Labelled:
    """Calibration photos and a held-out labelled set.

    On the real model: upstream's test photos, alternately calibration and held out; the labels
    are upstream's own saved U2NETP maps thresholded at 128 (no human-labelled set such as
    DUTS-TE is on the bench machine).  On the fixture: its labelled scenes.
    """
    import numpy as np
    from PIL import Image

    from mirror.witness import MAPS, test_photos

    maps_dir = model_root / MAPS
    held, masks = scratch / "quant-held" / "Image", scratch / "quant-held" / "Mask"
    held.mkdir(parents=True)
    masks.mkdir(parents=True)
    if (photos := test_photos(model_root)) and maps_dir.is_dir():
        calibration, kept = photos[0::2], photos[1::2]
        for photo in kept:
            shutil.copyfile(photo, held / photo.name)
            saved = np.asarray(Image.open(maps_dir / f"{photo.stem}.png").convert("L"))
            Image.fromarray(((saved >= 128) * 255).astype(np.uint8)).save(masks / f"{photo.stem}.png")
        sentence = (
            f"calibrated on {len(calibration)} of upstream's test photos, judged on the other {len(kept)}, labelled "
            "with upstream's own saved U2NETP maps thresholded at 128 (no human-labelled set is on this machine)"
        )
        return Labelled(calibration, held, masks, sentence)
    from mirror.fixture import write_labelled_set

    images, labels = write_labelled_set(scratch / "quant-scenes", count=12)
    scenes = sorted(images.iterdir())
    for scene in scenes[1::2]:
        shutil.copyfile(scene, held / scene.name)
        shutil.copyfile(labels / scene.name, masks / scene.name)
    return Labelled(scenes[0::2], held, masks, "calibrated on 6 of the fixture's labelled scenes, judged on 6 others")


class _Calibration:
    """onnxruntime's CalibrationDataReader over photos, with the evaluation's preprocessing."""

    def __init__(self, photos: list[Path], input_name: str) -> None:
        from PIL import Image

        from evaluation.models import UPSTREAM_SIZE, Preprocessing

        prep = Preprocessing(UPSTREAM_SIZE)
        self._batches: Iterator[dict[str, Any]] = iter(
            {input_name: prep.tensor(Image.open(p).convert("RGB"))[None]} for p in photos
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)


def _quantize(fp32: Path, out: Path, recipe: dict[str, Any], calibration: list[Path]) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mirror.metadata import INPUT_NAME

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(prepared))
    if recipe.get("dynamic"):
        quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QUInt8)
    else:
        quantize_static(
            str(prepared),
            str(out),
            _Calibration(calibration, INPUT_NAME),
            quant_format=QuantFormat.QDQ,
            per_channel=recipe["per_channel"],
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, recipe["method"]),
        )
    prepared.unlink()


def _judge(variant: Path, fp32: Path, labelled: Labelled, out: Path) -> dict[str, Any]:
    from evaluation.gate import Gate
    from evaluation.run import EvaluationSettings, evaluate

    # The shipped gate with one rule lifted: a quantized model cannot be within one 8-bit step of
    # fp32 on every pixel, so max |diff| is not asked; the metric margins and the share of pixels
    # whose masks differ are, as shipped.
    gate = dataclasses.replace(Gate.shipped(), max_abs_diff=1.0)
    settings = EvaluationSettings(
        candidate=variant, baseline=fp32, images=labelled.images, masks=labelled.masks, out=out, gate=gate
    )
    return evaluate(settings)


def bench_quantized(
    model_label: str, model_root: Path, fp32: Path, reference: Path, reference_label: str, scratch: Path, rounds: int
) -> tuple[Row, list[str]]:
    """The row (the best recipe the gate promotes, or none) and the frontier, one line per recipe."""
    import numpy as np
    import onnxruntime

    labelled = _labelled(model_root, scratch)
    frontier = [
        f"onnxruntime.quantization {onnxruntime.__version__}; {labelled.sentence}. Latency: 320×320, batch 1, "
        f"against {reference_label}, both ORT_ENABLE_ALL on every core, alternating, {rounds} rounds; the gate: "
        "`invoke evaluate`'s, as shipped, against our fp32 export, with max |diff| lifted (see bench/quantized.py)",
        "",
        "| recipe | latency ratio (95% interval) | MAE | S-measure | max F | mask disagreement | gate |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    # (ratio, recipe, promoted, our times, their times) of each recipe tried.
    tried: list[tuple[float, str, bool, list[float], list[float]]] = []
    fp32_metrics: dict[str, float] | None = None
    image = np.random.default_rng(0).standard_normal((1, 3, 320, 320), dtype=np.float32)
    for name, recipe in RECIPES:
        variant = scratch / f"int8-{len(tried)}.onnx"
        _quantize(fp32, variant, recipe, labelled.calibration)
        times, _ = turn_latencies((variant, reference), image, rounds)
        ours, theirs = times[variant], times[reference]
        ratio, low, high = paired_ratio(ours, theirs)
        result = _judge(variant, fp32, labelled, scratch / "quant-eval")
        metrics, agreement = result["metrics"], result["agreement"]
        fp32_metrics = metrics["baseline"]
        candidate = metrics["candidate"]
        promoted = bool(result["verdict"]["promoted"])
        frontier.append(
            f"| {name} | {ratio:.2f}× ({low:.2f}–{high:.2f}) | {candidate['mae']:.4f} | {candidate['s_measure']:.4f} "
            f"| {candidate['max_f']:.4f} | {agreement['mask_disagreement']:.2%} | "
            f"{'promoted' if promoted else 'not promoted'} |"
        )
        tried.append((ratio, name, promoted, ours, theirs))
        variant.unlink()
    assert fp32_metrics is not None
    frontier.append(
        f"| fp32 (our export, the gate's baseline) | – | {fp32_metrics['mae']:.4f} | {fp32_metrics['s_measure']:.4f} "
        f"| {fp32_metrics['max_f']:.4f} | 0 | – |"
    )
    winners = [t for t in tried if t[2] and t[0] <= LATENCY_TARGET]
    ratio, name, promoted, ours, theirs = min(winners or tried)
    if winners:
        note = "the fastest recipe the gate promotes (frontier below)"
    else:
        note = (
            f"the fastest recipe tried, {'promoted' if promoted else 'not promoted by the gate'}; no recipe is both "
            f"≤ {LATENCY_TARGET}× and promoted, so no int8 variant is published (frontier below)"
        )
    row = Row(
        f"int8 variant ({name}): latency 320×320, batch 1, vs {reference_label}",
        Sample(ours),
        Sample(theirs),
        "s",
        ratio,
        f"≤ {LATENCY_TARGET}× and promoted by the gate",
        bool(winners),
        [note],
        model=model_label,
    )
    return row, frontier
