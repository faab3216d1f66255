"""Audit the local upstream checkout before anything is imported from it.

The checkout must be a clean git work tree at the audited commit, with the
audited ``model/u2net.py`` and an Apache-2.0 LICENSE.  What is found is
returned as an ``UpstreamAudit`` and ends up, hashes and relative paths only,
in the ONNX metadata and in the manifest.

Read once: the module, the LICENSE and the NOTICE are each read here exactly once, and the
bytes that were hashed are the bytes that are later executed (the module) or copied into the
release (the licence files).  Nothing re-opens them by path, so a file swapped after the audit
changes nothing that the audit vouched for.  The checkout's git state is read without running
anything its ``.git/config`` names (``checkout.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .checkout import read_checkout
from .errors import CheckpointError, UpstreamError
from .hashing import sha256_bytes
from .license import check_apache_2
from .settings import MODULE_IN_CHECKOUT, UpstreamPin

FETCH_HINT = "run `invoke fetch-upstream --dest DIR` to clone the audited upstream"
# upstream's model/u2net.py is 23 KiB and its LICENSE 11 KiB; anything far larger is not them.
MAX_SOURCE_BYTES = 4 << 20


@dataclass(frozen=True)
class UpstreamAudit:
    """What the checkout holds; paths are relative to its root."""

    root: Path
    commit: str
    module_path: str
    module_sha256: str
    license_path: str
    license_sha256: str
    notice_path: str | None
    notice_sha256: str | None
    # The commit, module and licence pins that do not hold (empty: all three match).
    mismatches: tuple[str, ...] = ()
    # The bytes behind each hash above, kept so that nothing is read twice.
    module_source: bytes = field(default=b"", repr=False)
    license_bytes: bytes = field(default=b"", repr=False)
    notice_bytes: bytes | None = field(default=None, repr=False)

    @property
    def pinned(self) -> bool:
        """Whether the checkout matches its pins (the checkpoint is judged separately)."""
        return not self.mismatches


def read_pinned_file(path: Path, what: str, limit: int = MAX_SOURCE_BYTES) -> bytes | None:
    """The whole file at ``path`` in one read (None if there is none); ``UpstreamError`` if too large."""
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise UpstreamError(f"{path}: is a directory, not the {what}") from None
    except OSError as exc:
        raise UpstreamError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > limit:
        raise UpstreamError(f"{path}: over {limit >> 20} MiB; not the {what}")
    return data


def audit_checkout(root: Path, pin: UpstreamPin, allow_unpinned: bool = False) -> UpstreamAudit:
    """Check ``root`` against ``pin`` and the licence rules; raise ``UpstreamError`` if it fails."""
    if not root.is_dir():
        raise UpstreamError(f"{root}: no upstream checkout here; {FETCH_HINT}")
    state = read_checkout(root, FETCH_HINT)
    # Untracked files (the checkpoint under saved_models/) are fine; edits to tracked ones are not.
    if state.changes:
        raise UpstreamError(
            f"{root}: the checkout has modified tracked files (e.g. {state.changes[0].strip()!r}); "
            "export only from a clean checkout (git stash or git checkout -- .)"
        )

    module = root / MODULE_IN_CHECKOUT
    module_source = read_pinned_file(module, "upstream module")
    if module_source is None:
        raise UpstreamError(f"{module}: missing; this does not look like a U-2-Net checkout")
    module_sha256 = sha256_bytes(module_source)

    license_file = root / "LICENSE"
    license_bytes = read_pinned_file(license_file, "licence")
    if license_bytes is None:
        check_apache_2(license_file)  # says there is no LICENSE
        raise UpstreamError(f"{license_file}: missing")
    check_apache_2(license_file, license_bytes)
    license_sha256 = sha256_bytes(license_bytes)

    mismatches = tuple(
        f"{what} {found[:12]} != pinned {wanted[:12]}"
        for what, found, wanted in (
            ("commit", state.commit, pin.commit),
            (MODULE_IN_CHECKOUT.as_posix() + " sha256", module_sha256, pin.module_sha256),
            ("LICENSE sha256", license_sha256, pin.license_sha256),
        )
        if found != wanted
    )
    if mismatches and not allow_unpinned:
        raise UpstreamError(
            f"{root}: not the audited upstream ({'; '.join(mismatches)}); check out the pinned "
            "commit, or pass --allow-unpinned to export it anyway (recorded in the manifest)"
        )

    notice_bytes = read_pinned_file(root / "NOTICE", "NOTICE file")
    return UpstreamAudit(
        root=root,
        commit=state.commit,
        module_path=MODULE_IN_CHECKOUT.as_posix(),
        module_sha256=module_sha256,
        license_path="LICENSE",
        license_sha256=license_sha256,
        notice_path="NOTICE" if notice_bytes is not None else None,
        notice_sha256=sha256_bytes(notice_bytes) if notice_bytes is not None else None,
        mismatches=mismatches,
        module_source=module_source,
        license_bytes=license_bytes,
        notice_bytes=notice_bytes,
    )


def read_checkpoint_bytes(path: Path) -> bytes:
    """The checkpoint file's bytes, in one read: they are hashed and loaded from memory (read once)."""
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint here; download u2netp.pth from upstream's README links "
            "and put it there (or pass --checkpoint FILE)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
