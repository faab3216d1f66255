"""The labelled image set: images matched to masks by file stem, read one at a time.

The layout of DUTS, ECSSD and their kin: ``Image/x.jpg`` and ``Mask/x.png``.  An image that
cannot be read, or has no mask, is reported (``Skipped``) and the run goes on; only an image
set with nothing readable is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import EvaluationError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# An image or mask over this many pixels is skipped before it is decoded (a decompression bomb
# declares 30000x30000 in a few bytes): 64 MP is a 8000x8000 photo, and about 192 MiB as RGB.
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Entry:
    """One image and, when there is one, its mask (file names relative to their directories)."""

    image: Path
    mask: Path | None
    masks_given: bool = False  # a mask directory was given, so a missing mask is worth a warning


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str
    # The image itself is left out (not only its mask).
    image_lost: bool = False


@dataclass(frozen=True)
class Sample:
    """A readable image (RGB) and its mask (8-bit grey) if it has a readable one."""

    name: str
    image: Image.Image
    mask: np.ndarray | None
    mask_name: str | None


def _images_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def discover(images: Path, masks: Path | None) -> list[Entry]:
    """Every image under ``images``, with its mask from ``masks`` matched by stem (if there is one)."""
    for directory in (images, masks):
        if directory is not None and not directory.is_dir():
            raise EvaluationError(f"{directory}: not a directory of images")
    found = _images_in(images)
    if not found:
        raise EvaluationError(f"{images}: no images here ({', '.join(IMAGE_SUFFIXES)})")
    by_stem: dict[str, Path] = {}
    for candidate in _images_in(masks) if masks is not None else []:
        by_stem.setdefault(candidate.stem, candidate)
    return [Entry(image, by_stem.get(image.stem), masks is not None) for image in found]


class _TooLarge(Exception):
    """An image whose header declares more pixels than MAX_PIXELS."""


def _read(path: Path, mode: str) -> Image.Image:
    """``path`` decoded and converted to ``mode``, once its header's size is within MAX_PIXELS."""
    # Pillow's own limit warns, and past twice itself raises before the size can be read; ours
    # is stricter and judged from the header, so Pillow's is lifted while the header is read.
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with warnings.catch_warnings(), Image.open(path) as opened:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise _TooLarge(f"{width}x{height}")
            return opened.convert(mode)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _unreadable(what: str, exc: Exception) -> str:
    if isinstance(exc, _TooLarge):
        return f"{what} over the {MAX_PIXELS // 1_000_000} MP cap ({exc}; a decompression bomb?)"
    return f"not a readable {what} ({type(exc).__name__})"


def load(entry: Entry) -> tuple[Sample | None, Skipped | None]:
    """The image (any mode made RGB) and its mask (made 8-bit grey); or why it was skipped."""
    try:
        image = _read(entry.image, "RGB")
    except (OSError, UnidentifiedImageError, ValueError, _TooLarge) as exc:
        return None, Skipped(entry.image.name, _unreadable("image", exc), image_lost=True)
    mask = None
    if entry.mask is None and entry.masks_given:
        return Sample(entry.image.name, image, None, None), Skipped(
            entry.image.name, f"no mask named {entry.image.stem}.* beside it in the masks: agreement only"
        )
    if entry.mask is not None:
        try:
            mask = np.asarray(_read(entry.mask, "L"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError, _TooLarge) as exc:
            skipped = Skipped(entry.mask.name, f"{_unreadable('mask', exc)}: agreement only")
            return Sample(entry.image.name, image, None, None), skipped
        if mask.shape != (image.height, image.width):
            size = f"{mask.shape[1]}x{mask.shape[0]}, the image {image.width}x{image.height}"
            return Sample(entry.image.name, image, None, None), Skipped(
                entry.mask.name, f"the mask is {size}: a mask of another image? agreement only"
            )
    return Sample(entry.image.name, image, mask, entry.mask.name if entry.mask else None), None


def samples(entries: list[Entry], skipped: list[Skipped]) -> Iterator[Sample]:
    """Read the entries one by one, adding to ``skipped`` as it goes (memory stays flat)."""
    for entry in entries:
        sample, problem = load(entry)
        if problem is not None:
            skipped.append(problem)
        if sample is not None:
            yield sample
