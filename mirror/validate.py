"""Check an exported ONNX: the ONNX checker, then onnxruntime against torch's d0.

Imports torch: import this module only where torch is needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn

from .errors import ValidationError
from .metadata import INPUT_NAME, OUTPUT_NAME


@dataclass(frozen=True)
class ShapeCheck:
    batch: int
    height: int
    width: int
    max_abs_diff: float
    mean_abs_diff: float

    def as_dict(self) -> dict[str, object]:
        return {
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            # Three significant digits: the last bits of a float difference depend on
            # thread scheduling, and the manifest must be byte-identical on re-runs.
            "max_abs_diff": _three_digits(self.max_abs_diff),
            "mean_abs_diff": _three_digits(self.mean_abs_diff),
        }


def _three_digits(value: float) -> float:
    return float(f"{value:.3g}")


@dataclass(frozen=True)
class ValidationReport:
    tolerance: float
    mean_tolerance: float
    seed: int
    checks: tuple[ShapeCheck, ...]
    onnxruntime_version: str

    @property
    def max_abs_diff(self) -> float:
        return max(check.max_abs_diff for check in self.checks)

    @property
    def mean_abs_diff(self) -> float:
        return max(check.mean_abs_diff for check in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {
            "onnx_checker": "onnx.checker.check_model(full_check=True)",
            "runtime": f"onnxruntime {self.onnxruntime_version} CPUExecutionProvider",
            "reference": "torch eager d0 (for the trace input: the tracing forward pass's own output)",
            "seed": self.seed,
            "tolerance": self.tolerance,
            "mean_tolerance": self.mean_tolerance,
            "shapes": [check.as_dict() for check in self.checks],
            "max_abs_diff": _three_digits(self.max_abs_diff),
            "mean_abs_diff": _three_digits(self.mean_abs_diff),
            "passed": True,
        }


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def seeded_images(seed: int, shapes: Sequence[tuple[int, int, int]]) -> list[torch.Tensor]:
    """One input per (batch, height, width), drawn in order from a generator seeded with ``seed``.

    Standard normal: the range of ImageNet-normalised pixels, negatives included.
    """
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, height, width, generator=generator) for batch, height, width in shapes]


def torch_reference(
    head: nn.Module, image: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None
) -> np.ndarray:
    """torch's d0 for ``image``: the known output if it is that input, else an eager pass."""
    if known is not None and torch.equal(image, known[0]):
        return known[1].numpy()
    # One thread: at these small sizes U2NETP is about a hundred tiny layers, and thread
    # synchronisation dominates; on the real model one thread took 0.25 s for both small
    # passes against 0.67 s with two, and the outputs agree to 2e-8.
    with torch.no_grad(), _torch_threads(1):
        return head(image).numpy()


def validate(
    model_bytes: bytes,
    head: nn.Module,
    *,
    shapes: Sequence[tuple[int, int, int]],
    tolerance: float,
    mean_tolerance: float,
    seed: int,
    label: str,
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> ValidationReport:
    """Raise ``ValidationError`` (naming ``label``) unless the model passes every check.

    The inputs are ``seeded_images(seed, shapes)``; at each, max |onnxruntime - torch| must be at
    most ``tolerance`` and the mean at most ``mean_tolerance``.  ``known`` is an (input,
    head(input)) pair already computed, e.g. by the export's trace: torch's pass is skipped for
    an input equal to it, which saves the costliest forward pass when the first shape is the
    trace's.
    """
    try:
        onnx.checker.check_model(onnx.load_model_from_string(model_bytes), full_check=True)
    except onnx.checker.ValidationError as exc:
        first = (str(exc).strip().splitlines() or ["invalid model"])[0]
        raise ValidationError(f"{label}: rejected by onnx.checker ({first})") from None

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Torch and onnxruntime take turns here. onnxruntime's idle workers spin by default, taking
    # the cores torch's next pass needs: the small passes ran 2-3x slower (0.065 s vs 0.02 s).
    # Spinning only trades CPU for latency; the outputs are the same.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    checks = []
    for image in seeded_images(seed, shapes):
        batch, _, height, width = image.shape
        where = f"at input {batch}x3x{height}x{width}"
        expected = torch_reference(head, image, known)
        (found,) = session.run([OUTPUT_NAME], {INPUT_NAME: image.numpy()})
        if found.shape != expected.shape:
            raise ValidationError(f"{label}: output shape {found.shape} != torch's {expected.shape} {where}")
        difference = np.abs(found - expected)
        largest, mean = float(difference.max()), float(difference.mean())
        if not largest <= tolerance:  # also catches NaN
            raise ValidationError(
                f"{label}: onnxruntime differs from torch by {largest:.3g} > tolerance {tolerance:g} {where}"
            )
        if not mean <= mean_tolerance:
            raise ValidationError(
                f"{label}: onnxruntime differs from torch by {mean:.3g} on average > mean tolerance "
                f"{mean_tolerance:g} {where}"
            )
        checks.append(ShapeCheck(batch, height, width, largest, mean))
    return ValidationReport(
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
        seed=seed,
        checks=tuple(checks),
        onnxruntime_version=onnxruntime.__version__,
    )
