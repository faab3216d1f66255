"""``verify --repo --tag``: fetch a release into a staging directory, verify it there, then keep it.

dist only ever holds verified releases: the assets are downloaded (each checked against the
size and digest the API announced) into a new directory beside dist, verified there, and
moved into dist only when every check passed.  On any failure the staging directory goes
and dist keeps exactly what it had.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from mirror.errors import MirrorError, OutputError
from mirror.settings import MANIFEST_NAME, ONNX_NAME, PROVENANCE_NAME, bundle_name, licence_copy_name

from .assets import RELEASE_FILES
from .github import GitHubClient, Progress
from .target import ReleaseTarget

T = TypeVar("T")

# Everything verify reads; the licence files come along for the operator's records.
REQUIRED = (
    ONNX_NAME,
    MANIFEST_NAME,
    bundle_name(ONNX_NAME),
    bundle_name(MANIFEST_NAME),
    PROVENANCE_NAME,
    licence_copy_name("LICENSE"),
)
OPTIONAL = (licence_copy_name("NOTICE"),)


def download_release(
    target: ReleaseTarget,
    directory: Path,
    client: GitHubClient,
    progress: Progress = lambda *_: None,
    *,
    provenance: bool = True,
) -> list[str]:
    """Download the release's assets into ``directory`` (each checked, then renamed in place).

    ``provenance=False`` (for releases made before the signed provenance) makes it optional.
    """
    release = client.find_release(target.tag)
    if release is None:
        raise MirrorError(
            f"{target.repo}: no release {target.tag} (drafts are visible only with a token that can see them)"
        )
    assets = {asset.name: asset for asset in client.list_assets(release) if asset.uploaded}
    required = [name for name in REQUIRED if provenance or name != PROVENANCE_NAME]
    optional = [*OPTIONAL, *([] if provenance else [PROVENANCE_NAME])]
    missing = [name for name in required if name not in assets]
    if missing:
        raise MirrorError(f"release {target.tag} of {target.repo} lacks {', '.join(missing)}")
    wanted = [*required, *(name for name in optional if name in assets)]
    for name in wanted:
        # The file name is ours (REQUIRED, OPTIONAL), never the server's.
        client.download_asset(assets[name], directory / name, progress)
    return wanted


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


@contextmanager
def _staging_beside(dist: Path) -> Iterator[Path]:
    """A new, private directory next to ``dist`` (same file system: moves are renames)."""
    if dist.exists() and not dist.is_dir():
        raise OutputError(f"{dist}: is a file, not a directory; pass --dist with a directory")
    made = _missing_parents(dist)
    try:
        dist.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dist.name}.staging-", dir=dist.parent))
    except OSError as exc:
        raise OutputError(f"{dist}: cannot write beside it ({exc.strerror})") from None
    try:
        yield staging
    except BaseException:
        for parent in made:  # deepest first; only the ones this run made, and only if empty
            if parent.exists() and not any(parent.iterdir()):
                parent.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _promote(staging: Path, names: list[str], dist: Path) -> None:
    """Move the verified files into dist; remove release files of an older release they do not replace."""
    try:
        dist.mkdir(exist_ok=True)
        for stale in sorted(set(RELEASE_FILES) - set(names)):
            (dist / stale).unlink(missing_ok=True)
        for name in names:
            os.replace(staging / name, dist / name)
    except OSError as exc:
        raise OutputError(f"{dist}: cannot move the verified files in ({exc.strerror})") from None


def fetch_verified(
    target: ReleaseTarget,
    dist: Path,
    client: GitHubClient,
    verify: Callable[[Path], T],
    progress: Progress = lambda *_: None,
    *,
    provenance: bool = True,
) -> T:
    """Download the release beside ``dist``, ``verify`` the download, and move it into ``dist``.

    ``verify`` raises on any failed check; then nothing in ``dist`` changes.
    """
    with _staging_beside(dist) as staging:
        names = download_release(target, staging, client, progress, provenance=provenance)
        result = verify(staging)
        _promote(staging, names, dist)
    return result
