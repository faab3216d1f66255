"""Set the checkpoint pin honestly: a downloaded u2netp.pth, held to independent witnesses first.

Upstream distributes ``u2netp.pth`` unsigned, from links in its README.  Pinning the first file
a maintainer happens to download is trust on first use; a witness makes it less blind: an
independent, public record of the same file's digest, made by someone else before us (the
backgroundremover project pins it by md5).  The witnesses the project ships are in
``defaults.yaml`` (``u2netp.checkpoint_witnesses``).  A file every witness agrees with gets its
sha256 pinned; a file any witness disputes is refused, unless the maintainer says, loudly, to
pin it on their word alone.

The change is shown as a diff of ``defaults.yaml`` (comments kept), and written only on request.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_bytes_atomic
from .config import check_pin
from .errors import CheckpointError, ConfigError
from .hashing import CHUNK_SIZE
from .settings import load_yaml

WITNESS_ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_PIN_LINE = re.compile(r"^(?P<indent>\s*)#?\s*checkpoint_sha256\s*:.*$")


@dataclass(frozen=True)
class Witness:
    algorithm: str
    digest: str
    source: str


@dataclass(frozen=True)
class WitnessVerdict:
    witness: Witness
    found: str

    @property
    def agrees(self) -> bool:
        return self.found == self.witness.digest


@dataclass(frozen=True)
class PinChange:
    sha256: str
    verdicts: tuple[WitnessVerdict, ...]
    previous: str | None
    diff: str  # unified diff of defaults.yaml; empty when the pin is already this file's
    new_text: str


def witnesses_from_config(items: object) -> tuple[Witness, ...]:
    """``u2netp.checkpoint_witnesses``, checked: algorithm, hex digest of its length, a source."""
    where = "u2netp.checkpoint_witnesses"
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise ConfigError(f"{where}: expected a list of {{algorithm, digest, source}}")
    witnesses = []
    for number, item in enumerate(items):
        if not (isinstance(item, Mapping) or hasattr(item, "keys")):
            raise ConfigError(f"{where}[{number}]: expected a mapping with algorithm, digest and source")
        algorithm, digest, source = item.get("algorithm"), item.get("digest"), item.get("source")
        if algorithm not in WITNESS_ALGORITHMS:
            raise ConfigError(
                f"{where}[{number}].algorithm={algorithm!r}: expected one of {sorted(WITNESS_ALGORITHMS)}"
            )
        length = WITNESS_ALGORITHMS[str(algorithm)]
        if not isinstance(digest, str) or not re.fullmatch(f"[0-9a-f]{{{length}}}", digest):
            raise ConfigError(f"{where}[{number}].digest: expected {length} lower-case hex digits for {algorithm}")
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{where}[{number}].source: empty; say who recorded this digest, and where")
        witnesses.append(Witness(str(algorithm), digest, source))
    return tuple(witnesses)


def digests_of(path: Path, algorithms: set[str]) -> dict[str, str]:
    """Every digest in ``algorithms`` and sha256, from one streamed read of ``path``."""
    hashers = {name: hashlib.new(name) for name in algorithms | {"sha256"}}
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                for hasher in hashers.values():
                    hasher.update(chunk)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file; download u2netp.pth from upstream's README links first") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror})") from None
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _with_pin(text: str, sha256: str) -> str:
    """``defaults.yaml``'s text with ``u2netp.pin.checkpoint_sha256`` set, every comment kept."""
    lines = text.splitlines(keepends=True)
    pin_at = next((n for n, line in enumerate(lines) if re.match(r"^  pin:\s*$", line)), None)
    if pin_at is None:
        raise ConfigError("defaults.yaml: no `  pin:` block under u2netp; restore it from git")
    end = next(
        (n for n in range(pin_at + 1, len(lines)) if lines[n].strip() and not lines[n].startswith("    ")),
        len(lines),
    )
    for n in range(pin_at + 1, end):
        if match := _PIN_LINE.match(lines[n].rstrip("\n")):
            lines[n] = f"{match.group('indent')}checkpoint_sha256: {sha256}\n"
            return "".join(lines)
    lines.insert(end, f"    checkpoint_sha256: {sha256}\n")
    return "".join(lines)


def plan_pin(checkpoint: Path, defaults: Path, witnesses: Sequence[Witness]) -> PinChange:
    """Hash ``checkpoint`` once, judge it by every witness, and work out the change to ``defaults``."""
    digests = digests_of(checkpoint, {witness.algorithm for witness in witnesses})
    verdicts = tuple(WitnessVerdict(witness, digests[witness.algorithm]) for witness in witnesses)
    text = defaults.read_text(encoding="utf-8")
    previous = _pin_of(text)
    new_text = _with_pin(text, digests["sha256"])
    pin = _pin_of(new_text)
    if pin != digests["sha256"]:
        raise ConfigError(f"{defaults}: could not set u2netp.pin.checkpoint_sha256; edit it by hand")
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True), new_text.splitlines(keepends=True), str(defaults), str(defaults)
        )
    )
    return PinChange(digests["sha256"], verdicts, previous, diff, new_text)


def _pin_of(text: str) -> str | None:
    document: Any = load_yaml(text)
    pin = document["u2netp"]["pin"]
    check_pin(pin, "defaults.yaml: u2netp.pin")
    return pin.get("checkpoint_sha256")


def write_pin(defaults: Path, change: PinChange) -> None:
    write_bytes_atomic(defaults, change.new_text.encode("utf-8"))
