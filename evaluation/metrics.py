"""The field's metrics, computed by pysodmetrics (never by hand), and the models' agreement.

The salient-object-detection protocol: each map is min-max normalised, resized bilinearly to
the mask's size and made 8-bit, then compared with the mask (pysodmetrics thresholds it at
128).  MAE, S-measure, max F-measure (beta^2 = 0.3, the maximum over thresholds of the F curve
averaged over the images), mean E-measure (the mean over thresholds of the averaged E curve)
and weighted F-measure.  Each image is measured on its own; the totals keep running sums, so
memory does not grow with the number of images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import py_sod_metrics
from PIL import Image

METRICS = ("mae", "s_measure", "max_f", "mean_e", "weighted_f")
LOWER_IS_BETTER = frozenset({"mae"})
BETA_SQUARED = 0.3  # pysodmetrics' Fmeasure default, the field's convention
AGREEMENT_THRESHOLD = 0.5


def resize_map(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float map resized bilinearly to ``shape`` (height, width)."""
    if saliency.shape == shape:
        return saliency.astype(np.float32, copy=False)
    image = Image.fromarray(saliency.astype(np.float32), mode="F")
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def protocol_map(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The map as the protocol scores it: min-max normalised, resized to the mask's size, uint8."""
    low, high = float(saliency.min()), float(saliency.max())
    normalised = (saliency - low) / (high - low) if high > low else np.zeros_like(saliency)
    resized = resize_map(normalised, shape)
    return np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8)


def f_measure() -> py_sod_metrics.FmeasureV2:
    """pysodmetrics' F-measure (its current API; ``Fmeasure`` is deprecated): the curve over thresholds."""
    handler = py_sod_metrics.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=BETA_SQUARED)
    return py_sod_metrics.FmeasureV2(metric_handlers={"fm": handler})


def image_metrics(prediction: np.ndarray, mask: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One image's five metrics, and its F and E curves over the 256 thresholds."""
    mae, smeasure = py_sod_metrics.MAE(), py_sod_metrics.Smeasure()
    fmeasure, emeasure = f_measure(), py_sod_metrics.Emeasure()
    weighted = py_sod_metrics.WeightedFmeasure()
    for metric in (mae, smeasure, fmeasure, emeasure, weighted):
        metric.step(pred=prediction, gt=mask)
    f_curve = np.asarray(fmeasure.get_results()["fm"]["dynamic"], dtype=np.float64)
    e_curve = np.asarray(emeasure.get_results()["em"]["curve"], dtype=np.float64)
    values = {
        "mae": float(mae.get_results()["mae"]),
        "s_measure": float(smeasure.get_results()["sm"]),
        "max_f": float(f_curve.max()),
        "mean_e": float(e_curve.mean()),
        "weighted_f": float(weighted.get_results()["wfm"]),
    }
    return values, f_curve, e_curve


@dataclass
class MetricTotals:
    """Running totals over the images: the same numbers pysodmetrics' accumulators give."""

    count: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("mae", "s_measure", "weighted_f"), 0.0))
    f_curve: np.ndarray = field(default_factory=lambda: np.zeros(256))
    e_curve: np.ndarray = field(default_factory=lambda: np.zeros(256))

    def add(self, values: dict[str, float], f_curve: np.ndarray, e_curve: np.ndarray) -> None:
        self.count += 1
        for name in self.sums:
            self.sums[name] += values[name]
        self.f_curve += f_curve
        self.e_curve += e_curve

    def results(self) -> dict[str, float] | None:
        if not self.count:
            return None
        return {
            "mae": self.sums["mae"] / self.count,
            "s_measure": self.sums["s_measure"] / self.count,
            "max_f": float((self.f_curve / self.count).max()),
            "mean_e": float((self.e_curve / self.count).mean()),
            "weighted_f": self.sums["weighted_f"] / self.count,
        }


def agreement(candidate: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """How far two raw maps (the models' own outputs, baseline resized to the candidate's size) differ."""
    other = resize_map(baseline, candidate.shape)
    difference = np.abs(candidate.astype(np.float32) - other)
    masks_differ = (candidate > AGREEMENT_THRESHOLD) != (other > AGREEMENT_THRESHOLD)
    return {
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
        "mask_disagreement": float(masks_differ.mean()),
    }


@dataclass
class AgreementTotals:
    count: int = 0
    max_abs_diff: float = 0.0
    mean_abs_sum: float = 0.0
    disagreement_sum: float = 0.0

    def add(self, values: dict[str, float]) -> None:
        self.count += 1
        self.max_abs_diff = max(self.max_abs_diff, values["max_abs_diff"])
        self.mean_abs_sum += values["mean_abs_diff"]
        self.disagreement_sum += values["mask_disagreement"]

    def results(self) -> dict[str, float] | None:
        if not self.count:
            return None
        return {
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_sum / self.count,
            "mask_disagreement": self.disagreement_sum / self.count,
        }
