"""`invoke evaluate`'s throughput against a bare onnxruntime loop over the same files and models.

Both sides run as their own processes over the same image set at two sizes; images per second
is the difference in images over the difference in time, so what each pays once (imports,
sessions, evaluate's latency probe and picture) cancels and what is left is the cost per image,
the number that decides whether thousands of images take minutes or hours.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .common import PYTHON, ROOT, Row, Sample, paired_ratio

# Our side: the evaluation as `invoke evaluate` runs it, timed in its process (start-up is the
# start-up row's), with its peak RSS.
OURS = """
import json, sys, time
from pathlib import Path
from evaluation.run import EvaluationSettings, evaluate

masks = Path(sys.argv[4]) if sys.argv[4] != "-" else None
candidate, baseline, images, out = (Path(sys.argv[i]) for i in (1, 2, 3, 5))
# One pictured row: the image that differs most, the same file in both sets (more rows would show
# copies of one photo in the larger set, a different picture with a different memory peak).
settings = EvaluationSettings(
    candidate=candidate, baseline=baseline, images=images, masks=masks, out=out, grid_rows=1
)
start = time.perf_counter()
evaluate(settings)
elapsed = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "peak_kib": peak}))
"""

# The floor: what anyone would write to run both models over a folder, one image at a time,
# onnxruntime's default session options, upstream's preprocessing in plain numpy.
BARE = """
import json, sys, time
from pathlib import Path
import numpy as np
import onnxruntime
from PIL import Image

start = time.perf_counter()
sessions = [onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]) for path in sys.argv[1:3]]
mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
for path in sorted(Path(sys.argv[3]).iterdir()):
    pixels = np.asarray(Image.open(path).convert("RGB").resize((320, 320), Image.Resampling.BILINEAR), np.float32)
    tensor = ((pixels / max(float(pixels.max()), 1e-6) - mean) / std).transpose(2, 0, 1)[None].copy()
    for session in sessions:
        session.run(None, {session.get_inputs()[0].name: tensor})
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _image_set(model_root: Path, scratch: Path) -> tuple[list[Path], str]:
    """The photos: upstream's own test images on the real model, the fixture's labelled scenes otherwise."""
    from mirror.witness import test_photos

    if found := test_photos(model_root):
        return found, f"upstream's {len(found)} test photos"
    from mirror.fixture import write_labelled_set

    images, _ = write_labelled_set(scratch / "labelled", count=12)
    return sorted(images.iterdir()), "12 of the fixture's labelled scenes"


def _copies(photos: list[Path], directory: Path, times: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for copy in range(times):
        for photo in photos:
            shutil.copyfile(photo, directory / f"{copy:02d}-{photo.name}")
    return directory


def _run(script: str, *args: str) -> dict[str, float]:
    result = subprocess.run(
        [PYTHON, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600
    )
    if result.returncode != 0:
        raise RuntimeError(f"evaluate bench side failed: {result.stderr.strip()[-400:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_evaluate(
    model_label: str, model_root: Path, candidate: Path, baseline: Path, scratch: Path, rounds: int
) -> Row:
    photos, which = _image_set(model_root, scratch)
    small = _copies(photos, scratch / "evaluate-small", 1)
    large = _copies(photos, scratch / "evaluate-large", 3)
    extra = 2 * len(photos)
    out = scratch / "evaluate-out"

    def ours(images: Path) -> dict[str, float]:
        return _run(OURS, str(candidate), str(baseline), str(images), "-", str(out))

    def bare(images: Path) -> dict[str, float]:
        return _run(BARE, str(candidate), str(baseline), str(images))

    mine, floor, peaks = [], [], {"small": 0.0, "large": 0.0}
    for _ in range(rounds):
        runs = {}
        for name, side in (("ours", ours), ("bare", bare)):
            runs[name] = (side(small), side(large))
        for size, run in zip(("small", "large"), runs["ours"], strict=True):
            peaks[size] = max(peaks[size], run["peak_kib"] / 1024)
        mine.append((runs["ours"][1]["seconds"] - runs["ours"][0]["seconds"]) / extra)
        floor.append((runs["bare"][1]["seconds"] - runs["bare"][0]["seconds"]) / extra)
    ratio, low, high = paired_ratio(floor, mine)  # throughput: floor's seconds per image over ours
    growth = peaks["large"] - peaks["small"]
    shutil.rmtree(large)
    return Row(
        "evaluate throughput: `invoke evaluate` (candidate vs baseline) vs a bare onnxruntime loop, images per second",
        Sample(mine),
        Sample(floor),
        "s/image",
        ratio,
        "≥ 0.9× throughput, memory flat",
        ratio >= 0.9 and growth < 64,
        [
            f"images: {which}, as {len(photos)} and {3 * len(photos)} files; each side's seconds per image are "
            f"the difference in time over the {extra} more images, so start-up, sessions and evaluate's fixed "
            "work (latency probe, a one-row picture) cancel; ours with no masks (agreement only)",
            f"ratio: the median of {rounds} per-round throughput ratios, 95% interval {low:.3f}–{high:.3f}",
            f"models: our export as candidate against {baseline.name} as baseline, at 320×320; the bare loop runs "
            "both with onnxruntime's default session options, one image at a time",
            f"peak RSS of our process: {peaks['small']:,.0f} MiB for {len(photos)} images, {peaks['large']:,.0f} MiB "
            f"for {3 * len(photos)} ({growth:+,.0f} MiB)",
        ],
        model=model_label,
    )
