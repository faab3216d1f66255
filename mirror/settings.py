"""One settings object shared by the CLI and the library (as twine does).

``tasks.py`` builds an ``ExportSettings`` from Invoke's config (invoke.yaml,
environment, command-line options) and hands it to the pipeline; library
users build one directly.  Nothing below reads the environment itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from .contract import MANIFEST_NAME, ONNX_NAME

# The release's file names and roles live in contract.py; the upstream repository's URL is
# config (u2netp.pin.repo_url in defaults.yaml), with the rest of the audited pins.
# Where upstream's README tells users to put the U2NETP weights, relative to the checkout.
CHECKPOINT_IN_CHECKOUT = Path("saved_models/u2netp/u2netp.pth")
MODULE_IN_CHECKOUT = Path("model/u2net.py")


# (batch, height, width).  First the trace input's shape, the size upstream's preprocessing
# resizes to: the export's tracing pass already gives torch's output for it, so only
# onnxruntime runs, and every resize and pooling level is compared at full size.  Then two
# sizes the trace never saw, proving N, H and W dynamic: landscape with odd sides (45x77 pools
# to 23x39, 12x20, 6x10, 3x5, 2x3, so ceil-mode pooling and the size-driven resizes round) and
# portrait at batch 2.  Both keep every level >= 2x2 (U2NETP pools 5 times: sides >= 33),
# so no resize degenerates to copying one pixel; they are this small because the graph is the
# same at every size and torch costs ~5 us a pixel here.
DEFAULT_VALIDATION_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 320, 320),
    (1, 45, 77),
    (2, 64, 48),
)


# What an export is, recorded in the ONNX metadata and the manifest, and checked by verify:
# "audited": every pin holds (commit, module, licence and checkpoint, all set and all matched);
# "unpinned": some pin is missing or differs (the manifest names each); "demo": the embedded
# fixture, not U-2-Net at all.
BuildKind = Literal["audited", "unpinned", "demo"]
BUILD_KINDS: tuple[BuildKind, ...] = ("audited", "unpinned", "demo")
# The config key a maintainer sets once the checkpoint is audited (`invoke pin-checkpoint`).
CHECKPOINT_PIN_KEY = "u2netp.pin.checkpoint_sha256"


@dataclass(frozen=True)
class UpstreamPin:
    """The audited upstream: a checkout must match it unless pins are waived."""

    repo_url: str
    commit: str
    module_sha256: str
    license_sha256: str
    # None until a maintainer has audited u2netp.pth; until then no build is "audited".
    checkpoint_sha256: str | None = None
    # Where the pin came from, recorded in the manifest ("config" or "demo-fixture").
    source: str = "config"

    @classmethod
    def from_config(cls, pin: Mapping[str, Any], source: str = "config", where: str = "u2netp.pin") -> UpstreamPin:
        """The pins in ``pin``, each checked (``ConfigError`` naming the key if one is malformed or empty)."""
        from .config import check_pin

        check_pin(pin, where)
        return cls(
            repo_url=str(pin["repo_url"]),
            commit=str(pin["commit"]),
            module_sha256=str(pin["module_sha256"]),
            license_sha256=str(pin["license_sha256"]),
            checkpoint_sha256=str(pin["checkpoint_sha256"]) if "checkpoint_sha256" in pin else None,
            source=source,
        )


@dataclass(frozen=True)
class ExportSettings:
    """Everything ``export`` and ``manifest`` need; paths may be relative to the CWD."""

    upstream: Path
    checkpoint: Path
    dist: Path
    pin: UpstreamPin
    allow_unpinned: bool = False
    # The release workflow sets this: no release from a checkpoint nobody has audited.
    require_checkpoint_pin: bool = False
    # `invoke release` sets this: a build that is not "audited" stops at the audit, before any
    # work, unless allow_unpinned.
    require_audited: bool = False
    # Bounds on |onnxruntime - torch| over d0's [0, 1] range, per validation input: the largest
    # difference and the mean (defaults.yaml, the one place they are set, says why these numbers).
    tolerance: float = field(default_factory=lambda: default_number("export", "tolerance"))
    mean_tolerance: float = field(default_factory=lambda: default_number("export", "mean_tolerance"))
    seed: int = 0
    validation_shapes: tuple[tuple[int, int, int], ...] = DEFAULT_VALIDATION_SHAPES
    # How the run was invoked, for run_provenance (e.g. "invoke export").
    entrypoint: str = "u2netp-mirror"

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        upstream: str | Path | None = None,
        checkpoint: str | Path | None = None,
        dist: str | Path | None = None,
        tolerance: float | None = None,
        mean_tolerance: float | None = None,
        **overrides: Any,
    ) -> ExportSettings:
        """The settings from the ``u2netp`` config (defaults.yaml, invoke.yaml, environment), with
        the command line's ``overrides`` winning; the one place their defaults are applied."""
        from .config import check_config

        check_config(config)
        upstream_dir = Path(upstream or config["upstream"])
        export = config["export"]
        return cls(
            upstream=upstream_dir,
            checkpoint=Path(checkpoint or config["checkpoint"] or default_checkpoint(upstream_dir)),
            dist=Path(dist or config["dist"]),
            pin=UpstreamPin.from_config(config["pin"]),
            tolerance=float(tolerance if tolerance is not None else export["tolerance"]),
            mean_tolerance=float(mean_tolerance if mean_tolerance is not None else export["mean_tolerance"]),
            require_checkpoint_pin=is_on(export["require_checkpoint_pin"]),
            seed=int(export["seed"]),
            **overrides,
        )

    def check(self) -> None:
        """The checks that need no file contents and no torch: they fail at once, before any work."""
        from .errors import OutputError, UsageError

        for flag, value in (("--tolerance", self.tolerance), ("--mean-tolerance", self.mean_tolerance)):
            if not math.isfinite(value) or value <= 0:
                raise UsageError(f"{flag} {value!r}: must be a finite number > 0")
        if self.dist.exists() and not self.dist.is_dir():
            raise OutputError(f"{self.dist}: is a file, not a directory; pass --dist with a directory")

    @property
    def onnx_path(self) -> Path:
        return self.dist / ONNX_NAME

    @property
    def manifest_path(self) -> Path:
        return self.dist / MANIFEST_NAME


def is_on(value: object) -> bool:
    """A switch from the config.  Invoke casts an INVOKE_* override to the type of the configured
    default, and for a bool anything but "0" and "" is true ("false" too).  So switches default to
    text (defaults.yaml) and are read from it here: true/1/yes/on, anything else is off."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def default_checkpoint(upstream: Path) -> Path:
    """The checkpoint location upstream documents, inside ``upstream``."""
    return upstream / CHECKPOINT_IN_CHECKOUT


def load_yaml(text: str) -> Any:
    """Parse YAML safely (no tags that build objects); ``ValueError`` if it is not YAML."""
    from invoke.util import yaml  # Invoke vendors PyYAML, and Invoke is a base dependency anyway

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else "not YAML") from None


@cache
def shipped_defaults() -> dict[str, Any]:
    """``mirror/defaults.yaml``: the defaults every entry point starts from (pins, signer, GitHub).

    Package data, so the operator's console script has the audited pins without a checkout.
    """
    text = resources.files("mirror").joinpath("defaults.yaml").read_text(encoding="utf-8")
    return dict(load_yaml(text))


def default_number(section: str, key: str) -> float:
    """A number from the shipped defaults.yaml (``u2netp.<section>.<key>``): defaults live only there."""
    return float(shipped_defaults()["u2netp"][section][key])


def printable_path(path: Path) -> str:
    """``path`` for a message: bytes that are not UTF-8 shown escaped, never an encoding error."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")
