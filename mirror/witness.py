"""Upstream's own answer key: do these weights reproduce the U2NETP maps upstream published?

Upstream's pinned commit holds ``test_data/test_images/`` and ``test_data/u2netp_results/``, the
maps its ``u2net_test.py`` saved with the real weights.  Run through upstream's exact test-time
processing (replicated here from ``u2net_test.py`` and ``data_loader.py`` at the pinned commit),
genuine weights reproduce every map to within one 8-bit level; wrong weights move every image by
three or more (``../shared/notes/upstream-witness.md`` on the project's machines has the
measurements).  The witness checks behaviour, not bytes: it complements the checkpoint's hash
pin and never replaces it.

What "exact" takes, each measured to matter:

* ``io.imread`` then ``transform.resize(image, (320, 320), mode='constant')`` as scikit-image
  0.14 did it: no anti-aliasing (today's default anti-aliases when shrinking);
* JPEGs decoded by IJG libjpeg (9d, from the ``jpeglib`` wheel): libjpeg-turbo, which Pillow and
  scikit-image ship, reconstructs 4:2:0 chroma differently (off by up to 27 levels);
* ``ToTensorLab(flag=0)``: divide by the image's maximum, ImageNet's mean and std, float64,
  then fp32 for the network; the first output (the fused map), ``normPRED`` (min-max);
* ``save_output``: ``Image.fromarray(map * 255).convert('RGB')`` (truncates), bilinear resize
  to the photo's size, compare channel 0 of the 8-bit PNGs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UpstreamError
from .metadata import IMAGENET_MEAN, IMAGENET_STD
from .reporting import SILENT, Reporter

IMAGES = Path("test_data/test_images")
MAPS = Path("test_data/u2netp_results")
# No pixel of any image may be off by more than this many 8-bit levels: genuine weights stay
# within 1 on every one of upstream's 18 images; wrong ones move every image by 3 or more.
THRESHOLD = 1
JPEG_SUFFIXES = (".jpg", ".jpeg")
IJG_VERSION = "9d"


@dataclass(frozen=True)
class ImageWitness:
    image: str
    max_diff: int  # 8-bit levels
    mean_diff: float
    over_1: float  # share of pixels off by more than 1 level
    over_2: float


@dataclass(frozen=True)
class WitnessReport:
    images: tuple[ImageWitness, ...]
    decoder: str

    @property
    def worst_max(self) -> int:
        return max(image.max_diff for image in self.images)

    @property
    def held(self) -> bool:
        return bool(self.images) and self.worst_max <= THRESHOLD

    def as_dict(self) -> dict[str, Any]:
        return {
            "images_compared": len(self.images),
            "worst_max_diff": self.worst_max,
            "worst_mean_diff": max(image.mean_diff for image in self.images),
            "threshold": THRESHOLD,
            "reason": "genuine U2NETP weights reproduce each of upstream's saved maps to within 1/255 on every "
            "pixel; wrong weights move every image by 3/255 or more",
            "decoder": self.decoder,
            "held": self.held,
            "per_image": [vars(image) for image in self.images],
        }


@contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_image(path: Path) -> Any:
    """``io.imread`` as upstream's stack decoded it: IJG libjpeg for JPEGs, scikit-image otherwise."""
    if path.suffix.lower() in JPEG_SUFFIXES:
        import jpeglib

        # libjpeg prints its warnings ("Corrupt JPEG data: 1 extraneous bytes…", which one of
        # upstream's photos gives) straight to file descriptor 2, in the middle of our output.
        # The export decodes in a second thread while torch traces: a line the main thread
        # wrote to stderr in these milliseconds would be lost.  Errors are never among them:
        # they are printed after the export, when this thread has finished.
        with _c_stderr_silenced(), jpeglib.version(IJG_VERSION):
            return jpeglib.read_spatial(str(path)).spatial
    from skimage import io

    return io.imread(str(path))


def network_input(image: Any) -> Any:
    """RescaleT(320) and ToTensorLab(flag=0), as upstream's data loader does them: [1, 3, 320, 320] fp32."""
    import numpy as np
    from skimage import transform

    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    resized = transform.resize(image, (320, 320), mode="constant", anti_aliasing=False)
    resized = resized / np.max(resized)
    tensor = np.zeros((320, 320, 3))
    if resized.shape[2] == 1:  # grey: the one channel, normalised as red, three times
        for out in range(3):
            tensor[:, :, out] = (resized[:, :, 0] - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    else:  # an alpha channel counts in the maximum above, as upstream's does, and is then dropped
        for out in range(3):
            tensor[:, :, out] = (resized[:, :, out] - IMAGENET_MEAN[out]) / IMAGENET_STD[out]
    return tensor.transpose((2, 0, 1))[np.newaxis].astype(np.float32)


def saved_map(saliency: Any, height: int, width: int) -> Any:
    """normPRED, then save_output's 8-bit conversion and bilinear resize: channel 0, uint8."""
    import numpy as np
    from PIL import Image

    normalised = (saliency - saliency.min()) / (saliency.max() - saliency.min())
    image = Image.fromarray(normalised.squeeze() * 255).convert("RGB")
    return np.array(image.resize((width, height), resample=Image.Resampling.BILINEAR))[:, :, 0]


@dataclass(frozen=True)
class _Case:
    image: str
    network_input: Any  # [1, 3, 320, 320] fp32, upstream's processing
    shape: tuple[int, int]  # the photo's height and width, which the saved map has
    expected: Any  # channel 0 of upstream's saved map, int16


@dataclass(frozen=True)
class TestSet:
    """Upstream's photos made ready for the network, with the maps upstream saved for them.

    Nothing here needs the model, so the export prepares it while torch traces (``prepare``)
    and only the onnxruntime runs wait for the ONNX.
    """

    cases: tuple[_Case, ...]
    decoder: str


def test_photos(checkout: Path) -> list[Path]:
    """Upstream's test photos in ``checkout``, in name order; none if it has no such folder."""
    folder = checkout / IMAGES
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def prepare(checkout: Path) -> TestSet | None:
    """Decode and process the checkout's test photos and read their saved maps; None without a test set."""
    images, maps = checkout / IMAGES, checkout / MAPS
    if not images.is_dir() or not maps.is_dir():
        return None  # before the imports: a checkout without a test set costs nothing
    import jpeglib
    import numpy as np
    from PIL import Image

    cases = []
    for path in test_photos(checkout):
        expected_path = maps / f"{path.stem}.png"
        if not expected_path.is_file():
            continue
        try:
            image = read_image(path)
        except (OSError, ValueError, SyntaxError) as exc:  # jpeglib, scikit-image and Pillow each their own
            raise UpstreamError(
                f"{path}: not a readable test photo ({exc}); the checkout's test set is damaged"
            ) from None
        try:
            with Image.open(expected_path) as opened:
                expected = np.array(opened.convert("RGB"))[:, :, 0].astype(np.int16)
        except (OSError, ValueError, SyntaxError) as exc:
            raise UpstreamError(
                f"{expected_path}: not a readable saved map ({exc}); the checkout's test set is damaged"
            ) from None
        cases.append(_Case(path.name, network_input(image), (image.shape[0], image.shape[1]), expected))
    return TestSet(tuple(cases), f"IJG libjpeg {IJG_VERSION} (jpeglib {jpeglib.__version__}) for JPEGs")


def witness_session(model_bytes: bytes) -> Any:
    """The onnxruntime session the witness runs the model in (the bench times its runs in it too)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Sizes stay free: fixing them (onnxruntime's blocked layout) moved one pixel of one saved
    # map by an 8-bit level on the real model, and the witness's margin is one level.
    return onnxruntime.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def witness(
    model_bytes: bytes, checkout: Path, reporter: Reporter = SILENT, prepared: TestSet | None = None
) -> WitnessReport | None:
    """Compare the ONNX's maps with upstream's saved ones; None if the checkout holds no test set.

    ``prepared`` is ``prepare(checkout)`` made earlier (the export overlaps it with tracing).
    """
    test_set = prepared if prepared is not None else prepare(checkout)
    if test_set is None:
        return None
    import numpy as np

    session = witness_session(model_bytes)
    input_name = session.get_inputs()[0].name
    found = []
    for case in test_set.cases:
        (output, *_) = session.run(None, {input_name: case.network_input})
        ours = saved_map(output[:, 0], *case.shape).astype(np.int16)
        if case.expected.shape != ours.shape:
            found.append(ImageWitness(case.image, 255, 255.0, 1.0, 1.0))
            continue
        diff = np.abs(ours - case.expected)
        found.append(
            ImageWitness(
                case.image, int(diff.max()), float(diff.mean()), float((diff > 1).mean()), float((diff > 2).mean())
            )
        )
        reporter.line(f"witness {case.image}: max {int(diff.max())}/255, mean {float(diff.mean()):.4f}")
    return WitnessReport(tuple(found), test_set.decoder)
