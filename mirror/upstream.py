"""Audit the local upstream checkout before anything is imported from it.

The checkout must be a clean git work tree at the audited commit, with the
audited ``model/u2net.py`` and an Apache-2.0 LICENSE.  What is found is
returned as an ``UpstreamAudit`` and ends up, hashes and relative paths only,
in the ONNX metadata and in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UpstreamError
from .git import last_line, run_git
from .hashing import sha256_file
from .license import check_apache_2
from .settings import MODULE_IN_CHECKOUT, UpstreamPin

FETCH_HINT = "run `invoke fetch-upstream --dest DIR` to clone the audited upstream"


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
    pinned: bool


def _git(root: Path, *args: str) -> str:
    result = run_git(root, *args)
    if result.returncode != 0:
        raise UpstreamError(f"{root}: not a usable git checkout of U-2-Net ({last_line(result)}); {FETCH_HINT}")
    return result.stdout.strip()


def audit_checkout(root: Path, pin: UpstreamPin, allow_unpinned: bool = False) -> UpstreamAudit:
    """Check ``root`` against ``pin`` and the licence rules; raise ``UpstreamError`` if it fails."""
    if not root.is_dir():
        raise UpstreamError(f"{root}: no upstream checkout here; {FETCH_HINT}")
    toplevel = Path(_git(root, "rev-parse", "--show-toplevel"))
    if toplevel.resolve() != root.resolve():
        raise UpstreamError(f"{root}: is inside the git work tree {toplevel}, not the root of a U-2-Net checkout")
    commit = _git(root, "rev-parse", "--verify", "HEAD^{commit}")
    # Untracked files (the checkpoint under saved_models/) are fine; edits to tracked ones are not.
    changes = _git(root, "status", "--porcelain", "--untracked-files=no")
    if changes:
        first = changes.splitlines()[0].strip()
        raise UpstreamError(
            f"{root}: the checkout has modified tracked files (e.g. {first!r}); "
            "export only from a clean checkout (git stash or git checkout -- .)"
        )

    module = root / MODULE_IN_CHECKOUT
    if not module.is_file():
        raise UpstreamError(f"{module}: missing; this does not look like a U-2-Net checkout")
    module_sha256 = sha256_file(module)

    license_file = root / "LICENSE"
    check_apache_2(license_file)
    license_sha256 = sha256_file(license_file)

    mismatches = [
        f"{what} {found[:12]} != pinned {wanted[:12]}"
        for what, found, wanted in (
            ("commit", commit, pin.commit),
            (MODULE_IN_CHECKOUT.as_posix() + " sha256", module_sha256, pin.module_sha256),
            ("LICENSE sha256", license_sha256, pin.license_sha256),
        )
        if found != wanted
    ]
    if mismatches and not allow_unpinned:
        raise UpstreamError(
            f"{root}: not the audited upstream ({'; '.join(mismatches)}); check out the pinned "
            "commit, or pass --allow-unpinned to export it anyway (recorded in the manifest)"
        )

    notice = root / "NOTICE"
    has_notice = notice.is_file()
    return UpstreamAudit(
        root=root,
        commit=commit,
        module_path=MODULE_IN_CHECKOUT.as_posix(),
        module_sha256=module_sha256,
        license_path="LICENSE",
        license_sha256=license_sha256,
        notice_path="NOTICE" if has_notice else None,
        notice_sha256=sha256_file(notice) if has_notice else None,
        pinned=not mismatches,
    )
