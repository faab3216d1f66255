"""A saliency model as the evaluation sees it: one image input, a map as its first output.

Ours (``input`` -> ``saliency_map``, dynamic batch, height and width, with its preprocessing
in the ONNX metadata), rembg's ``u2netp.onnx`` (``input.1``, fixed 1x3x320x320, seven outputs of
which the first is d0, no metadata), or any other such model.  The preprocessing is the
model's own where its metadata says it, otherwise upstream U-2-Net's.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from PIL import Image

from mirror.hashing import sha256_file
from mirror.metadata import IMAGENET_MEAN, IMAGENET_STD, TRACE_HEIGHT, TRACE_WIDTH, read_metadata

from .errors import EvaluationError

# Upstream's data loader, as the export records it in every ONNX (mirror.metadata.PREPROCESSING):
# RescaleT(320) and ToTensorLab(flag=0) (divide by the image's maximum, then ImageNet's mean and
# std), RGB, NCHW.
UPSTREAM_SIZE = (TRACE_HEIGHT, TRACE_WIDTH)
# The largest side a model may ask its inputs resized to (its fixed input, its preprocessing
# metadata, --size): a declared 60000x60000 would allocate tens of GiB per image.
MAX_INPUT_SIDE = 4096


@dataclass(frozen=True)
class Preprocessing:
    size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    source: str = "upstream U-2-Net (RescaleT 320, ToTensorLab)"

    def tensor(self, image: Image.Image) -> np.ndarray:
        """[3, H, W] float32: resized (bilinear), divided by its maximum, normalised per channel."""
        height, width = self.size
        pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
        scaled = pixels / np.float32(max(float(pixels.max()), 1e-6))
        normalised = (scaled - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)

    def as_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std), "source": self.source}

    def same_input(self, other: Preprocessing) -> bool:
        return (self.size, self.mean, self.std) == (other.size, other.mean, other.std)


def _from_metadata(metadata: dict[str, str], label: str) -> Preprocessing | None:
    raw = metadata.get("preprocessing")
    if raw is None:
        return None
    try:
        recipe = json.loads(raw)
        height, width = (int(v) for v in recipe["resize"])
        mean = tuple(float(v) for v in recipe["mean"])
        std = tuple(float(v) for v in recipe["std"])
        if len(mean) != 3 or len(std) != 3 or recipe.get("color_order", "RGB") != "RGB" or height < 1 or width < 1:
            raise ValueError("not an RGB recipe with 3 means and stds")
        if not all(math.isfinite(v) for v in (*mean, *std)) or min(std) <= 0:
            raise ValueError("its mean and std must be finite numbers, std > 0")
    except (ValueError, KeyError, TypeError) as exc:
        raise EvaluationError(f"{label}: its 'preprocessing' metadata cannot be used ({exc})") from None
    return Preprocessing((height, width), (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), "the model's metadata")


def session_options(threads: int, fixed: dict[str, int] | None = None) -> onnxruntime.SessionOptions:
    """Options for one session; ``fixed`` pins the input's named free dimensions to sizes.

    With every size known, onnxruntime keeps the whole network in its blocked (NCHWc) layout,
    which it cannot while sizes may change: 0.95x the latency of the same file with free sizes
    on the bench machine (docs/benchmarks.md, "sizes fixed").
    """
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    for name, value in (fixed or {}).items():
        options.add_free_dimension_override_by_name(name, value)
    return options


def default_threads() -> int:
    return os.cpu_count() or 1


class SaliencyModel:
    """An onnxruntime session over a saliency ONNX, with its preprocessing and shape limits."""

    def __init__(
        self, path: Path, *, threads: int, size: tuple[int, int] | None = None, flag: str = "--candidate"
    ) -> None:
        if not path.is_file():
            raise EvaluationError(
                f"{path}: no ONNX model here; pass {flag} (the default candidate is made by `invoke export`)"
            )
        self.path = path
        self.sha256 = sha256_file(path)
        self.threads = threads
        try:
            self.metadata = read_metadata(path)
        except (ValueError, OSError) as exc:
            raise EvaluationError(f"{path}: not a readable ONNX model ({exc})") from None
        self.session = self._session(threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise EvaluationError(f"{path}: expected one NCHW image input, found {[i.shape for i in inputs]}")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        batch, channels, height, width = inputs[0].shape
        if channels not in (3, "3") and isinstance(channels, int):
            raise EvaluationError(f"{path}: its input has {channels} channels, not 3")
        self.fixed_batch = batch if isinstance(batch, int) else None
        static = (height, width) if isinstance(height, int) and isinstance(width, int) else None
        chosen = _from_metadata(self.metadata, str(path)) or Preprocessing(static or UPSTREAM_SIZE)
        if size is not None:
            chosen = Preprocessing(size, chosen.mean, chosen.std, source=f"{chosen.source}, size from --size")
        if static is not None and chosen.size != static:
            raise EvaluationError(
                f"{path}: takes {static[0]}x{static[1]} inputs only, not {chosen.size[0]}x{chosen.size[1]}"
            )
        if max(chosen.size) > MAX_INPUT_SIDE:
            raise EvaluationError(
                f"{path}: its inputs would be {chosen.size[0]}x{chosen.size[1]} ({chosen.source}); over the "
                f"{MAX_INPUT_SIDE}-pixel side this evaluation allows, refusing it"
            )
        self.preprocessing = chosen
        # The input's free dimensions by name ("batch", "height", "width" in ours), for sessions
        # made for one input shape (``fixed_for``).
        self._free = {
            position: name for position, name in enumerate((batch, height, width)) if isinstance(name, str) and name
        }

    def _session(self, threads: int, fixed: dict[str, int] | None = None) -> onnxruntime.InferenceSession:
        try:
            return onnxruntime.InferenceSession(
                str(self.path), sess_options=session_options(threads, fixed), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped failures for a broken model
            raise EvaluationError(
                f"{self.path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:160]})"
            ) from None

    def fixed_for(self, batch: int, threads: int) -> SaliencyModel:
        """This model with a session made for batches of ``batch`` at its preprocessing size, on
        ``threads`` threads (the last, short batch is padded); itself if nothing would change."""
        if not self._free and threads == self.threads:
            return self
        sizes = (batch, *self.preprocessing.size)
        fixed = {name: sizes[position] for position, name in self._free.items()}
        # One name for two dimensions of different sizes (height and width called "side", fed
        # 320x480) cannot be pinned: that name stays free.
        fixed = {
            name: size
            for name, size in fixed.items()
            if all(sizes[p] == size for p, other in self._free.items() if other == name)
        }
        twin = copy.copy(self)
        twin.session, twin.threads = self._session(threads, fixed), threads
        if 0 in self._free:
            twin.fixed_batch = batch
        return twin

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """[N, H, W] maps for an [N, 3, H, W] batch (run in the model's own batch size if it is fixed)."""
        step = self.fixed_batch or len(batch)
        maps = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            if len(chunk) < step:  # a fixed batch: pad the last chunk, drop the padding's output
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), axis=0)])
            (output,) = self.session.run([self.output_name], {self.input_name: chunk})
            output = np.asarray(output, dtype=np.float32)
            if output.ndim == 4:
                output = output[:, 0]
            if output.ndim != 3:
                raise EvaluationError(f"{self.path}: its first output has shape {output.shape}, not a map per image")
            if not np.isfinite(output).all():
                # Scored as if normal, NaN maps once gave an all-NaN candidate an MAE of 0.4988.
                raise EvaluationError(f"{self.path}: its output holds NaN or infinite values; it cannot be scored")
            maps.append(output[: len(batch[start : start + step])])
        return np.concatenate(maps)

    def describe(self) -> dict[str, Any]:
        """What the report records of the model: no path but its name, its digest, its provenance."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "size": self.path.stat().st_size,
            "model_id": self.metadata.get("model_id"),
            "upstream_commit": self.metadata.get("upstream_commit"),
            "build_kind": self.metadata.get("build_kind"),
            "input": self.input_name,
            "output": self.output_name,
            "batch": self.fixed_batch if self.fixed_batch is not None else "dynamic",
            "preprocessing": self.preprocessing.as_dict(),
        }
