"""What every benchmark row shares: timing our way against its floor, interleaved, and the row itself."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mirror.settings import shipped_defaults

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IDENTITY = "https://github.com/example/u2netp-mirror/.github/workflows/release.yml@refs/tags/u2netp-mirror-v0.0.0"
ISSUER = str(shipped_defaults()["u2netp"]["sigstore"]["cert_oidc_issuer"])


@dataclass
class Sample:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        return max(self.values) - min(self.values)

    def show(self, unit: str) -> str:
        if len(self.values) == 1:
            return f"{self.median:,.3g} {unit}"
        return f"{self.median:,.3g} {unit} (±{self.spread / 2:,.2g}, n={len(self.values)})"


@dataclass
class Row:
    name: str
    ours: Sample
    floor: Sample
    unit: str
    ratio: float
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)
    model: str = ""  # which model the row measured, when it depends on one


@dataclass(frozen=True)
class BenchModel:
    """The model the model-dependent rows run on: the fixture, or a real upstream checkout."""

    label: str
    upstream: Path
    checkpoint: Path
    pin: object  # mirror.settings.UpstreamPin, as configured pins (source "config")
    env: dict[str, str]  # what makes `invoke export` accept this checkout's pins


def paired_ratio(ours: list[float], floor: list[float]) -> tuple[float, float, float]:
    """The median of per-round ratios ours/floor, with a 95% bootstrap interval for it.

    Each round times both sides back to back, so a per-round ratio cancels the machine's slow
    drift; the interval says how far this many rounds can be trusted on a noisy machine.
    """
    import numpy as np

    ratios = np.asarray(ours) / np.asarray(floor)
    resampled = np.random.default_rng(0).choice(ratios, size=(2000, ratios.size), replace=True)
    low, high = np.percentile(np.median(resampled, axis=1), [2.5, 97.5])
    return float(np.median(ratios)), float(low), float(high)


def paired_summary(ours: Sample, floor: Sample) -> tuple[float, float, str]:
    """``paired_ratio`` over two samples taken in rounds: the ratio, its interval's low end, and
    the note that reports both beside the ratio of the medians."""
    ratio, low, high = paired_ratio(ours.values, floor.values)
    note = (
        f"ratio: the median of {len(ours.values)} per-round ratios, 95% interval {low:.3f}–{high:.3f}; "
        f"the ratio of the medians is {ours.median / floor.median:.3f}"
    )
    return ratio, low, note


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Seconds one command takes; it must succeed."""
    start = time.perf_counter()
    result = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False, timeout=1800
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}… failed: {result.stderr.strip()[-400:]}")
    return elapsed


def alternate(ours: Callable[[], float], floor: Callable[[], float], repeat: int) -> tuple[Sample, Sample]:
    """Time both ``repeat`` times, interleaved, after one warm-up each (file cache, imports)."""
    ours(), floor()
    mine, base = [], []
    for _ in range(repeat):
        mine.append(ours())
        base.append(floor())
    return Sample(mine), Sample(base)


def settled(call: Callable[[], object]) -> float:
    """Seconds ``call`` takes, after letting the last engine's idle threads stop spinning
    (onnxruntime's spin by default), so one side's leftovers never slow the other's run."""
    time.sleep(0.02)
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def invoke_args(*task: str) -> list[str]:
    return [PYTHON, "-m", "invoke", "--search-root", str(ROOT), *task]


def random_file(path: Path, size: int) -> Path:
    block = os.urandom(1 << 20)
    with path.open("wb") as stream:
        for _ in range(size >> 20):
            stream.write(block)
    return path


def filesystem(path: Path) -> str:
    """'tmpfs' or 'disk (ext4)' for the file system holding ``path``, read from /proc/mounts."""
    best, kind = "", "disk"
    for line in Path("/proc/mounts").read_text().splitlines() if Path("/proc/mounts").exists() else []:
        _, mount, fstype, *_ = line.split()
        if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
            best, kind = mount, fstype
    return "tmpfs" if kind == "tmpfs" else f"disk ({kind})"


def landing_dir(scratch: Path, size: int) -> Path:
    """Where downloads land: tmpfs if it has room, else scratch.

    On this kind of VM the same 1 GiB write to disk took 0.2-2.8 s depending on the host's
    writeback, which decided the ratio more than either client did; tmpfs takes the disk
    out, and both clients write there.
    """
    shm = Path("/dev/shm")  # noqa: S108 -- only used through mkdtemp, a private new directory
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 3 * size:
        return Path(tempfile.mkdtemp(prefix="u2netp-bench-", dir=shm))
    return scratch


def machine() -> list[str]:
    cpu = "unknown CPU"
    info = Path("/proc/cpuinfo")
    if info.exists():
        cpu = next(
            (line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if line.startswith("model name")),
            cpu,
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import onnxruntime
    import torch

    return [
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, "
        f"{memory:,.0f} GiB",
        f"Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}",
    ]
