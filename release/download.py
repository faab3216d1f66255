"""``verify --repo --tag``: fetch a release into a staging directory, verify it there, then keep it.

dist only ever holds verified releases:

* Only the files the release contract names are downloaded: the ONNX, the manifest, their
  bundles, the signed provenance (unless ``--no-provenance``), the signed evaluation and its
  report where the release has them, and the licence copies the manifest names (its
  signature is checked before anything moves).  Anything else the release
  carries, an unsigned ``NOTICE`` included, stays on the server and is reported.
* Each download is checked against the size and digest the API announced, and the signed
  documents against a size fit for their kind (a bundle is kilobytes) before they are fetched.
* The staging directory is inside dist, so moving the verified files in is a rename on one
  file system even when dist is a mount point.  The move is all or nothing: what it replaces is
  set aside first and put back if any rename fails.  On every exit path (a failed check, an
  error, Ctrl-C, SIGTERM through the console script) the staging directory is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from mirror.contract import (
    ALL_NAMES,
    EVALUATION_DOCUMENTS,
    EVALUATION_STATEMENT_NAME,
    MANIFEST_NAME,
    MAX_DOCUMENT_BYTES,
    ONNX_NAME,
    PROVENANCE_NAME,
    SIGNED_DOCUMENTS,
)
from mirror.errors import OutputError, RemoteError
from mirror.jsonio import StrictJSONError, loads_strict
from mirror.reporting import SILENT, Reporter

from .assets import licence_copies
from .github import GitHubClient
from .remote import RemoteAsset
from .target import ReleaseTarget

T = TypeVar("T")
STAGING_PREFIX = ".u2netp-mirror-staging-"


def _manifest_licences(path: Path) -> list[str]:
    """The licence copies the (not yet verified) manifest names; verify then holds them to it."""
    try:
        with path.open("rb") as stream:
            manifest = loads_strict(stream.read(MAX_DOCUMENT_BYTES + 1))
        return list(licence_copies(manifest))
    except (OSError, StrictJSONError, KeyError, TypeError, AttributeError):
        raise RemoteError(f"{path.name}: not a readable manifest; the release is broken or was tampered with") from None


def download_release(
    target: ReleaseTarget,
    directory: Path,
    client: GitHubClient,
    *,
    provenance: bool = True,
    reporter: Reporter = SILENT,
) -> list[str]:
    """Download the release's signed files into ``directory``; return their names.

    ``provenance=False`` (for releases made before the signed provenance) leaves the statement
    out altogether.  Whatever else the release carries is reported and left on the server.
    """
    release = client.find_release(target.tag)
    if release is None:
        raise RemoteError(
            f"{target.repo}: no release {target.tag} (drafts are visible only with a token that can see them)"
        )
    assets = {asset.name: asset for asset in client.list_assets(release) if asset.uploaded}
    documents = {name: cap for name, cap in SIGNED_DOCUMENTS.items() if provenance or name != PROVENANCE_NAME}
    if missing := [name for name in [ONNX_NAME, *documents] if name not in assets]:
        raise RemoteError(f"release {target.tag} of {target.repo} lacks {', '.join(missing)}")
    if EVALUATION_STATEMENT_NAME in assets:  # the signed evaluation, and the report it names (verify checks both)
        documents.update({name: cap for name, cap in EVALUATION_DOCUMENTS.items() if name in assets})
    for name, cap in documents.items():  # every size first: a hostile one stops the run before any download
        _within(assets[name], cap)
    # The name each file is written under is ours (the release contract), never the server's.
    for name in [ONNX_NAME, *documents]:
        client.download_asset(assets[name], directory / name)
    licences = _manifest_licences(directory / MANIFEST_NAME)
    if missing := [name for name in licences if name not in assets]:
        raise RemoteError(f"release {target.tag} of {target.repo} lacks {', '.join(missing)} (its manifest names it)")
    for name in licences:
        client.download_asset(assets[name], directory / name)
    wanted = [ONNX_NAME, *licences]
    names = [*documents, *wanted]
    if left := sorted(set(assets) - set(names)):
        reporter.line(f"left on the server, not part of the signed release: {', '.join(left)}")
    return names


def _within(asset: RemoteAsset, cap: int) -> None:
    if asset.size > cap:
        raise RemoteError(
            f"release asset {asset.name}: {asset.size:,} bytes announced, over the {cap >> 10:,} KiB such a "
            "file can be; refusing to download it"
        )


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def _in_the_way(dist: Path) -> None:
    """Refuse at once, before any download, if a release file's name in dist is not a plain file."""
    for name in ALL_NAMES:
        path = dist / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise OutputError(
                f"{path}: is a directory or a link, not a release file; move it away (nothing was downloaded)"
            )


@contextmanager
def _staging_in(dist: Path) -> Iterator[Path]:
    """A new, private directory inside ``dist`` (its file system, so moves are renames)."""
    if dist.exists() and not dist.is_dir():
        raise OutputError(f"{dist}: is a file, not a directory; pass --dist with a directory")
    _in_the_way(dist)
    made = _missing_parents(dist)
    try:
        dist.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dist))
    except OSError as exc:
        raise OutputError(f"{dist}: cannot write in it ({exc.strerror})") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in made:  # deepest first; only the ones this run made, and only if empty
            if directory.exists() and not any(directory.iterdir()):
                directory.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _promote(staging: Path, names: list[str], dist: Path) -> None:
    """Move the verified files into dist all at once, or not at all.

    The release files dist holds now (those replaced, and those of an older release that this
    one does not carry) are first set aside in the staging directory; if moving any new file in
    fails, everything moved so far goes back.
    """
    previous = staging / ".previous"
    set_aside: list[str] = []
    moved_in: list[str] = []
    try:
        previous.mkdir()
        for name in ALL_NAMES:
            if (dist / name).exists():
                os.replace(dist / name, previous / name)
                set_aside.append(name)
        for name in names:
            os.replace(staging / name, dist / name)
            moved_in.append(name)
    except OSError as exc:
        for name in moved_in:
            os.replace(dist / name, staging / name)
        for name in set_aside:
            os.replace(previous / name, dist / name)
        raise OutputError(f"{dist}: cannot move the verified files in ({exc.strerror}); dist is as it was") from None


def fetch_verified(
    target: ReleaseTarget,
    dist: Path,
    client: GitHubClient,
    verify: Callable[[Path], T],
    *,
    provenance: bool = True,
    reporter: Reporter = SILENT,
) -> T:
    """Download the release into a staging directory in ``dist``, ``verify`` it, and move it in.

    ``verify`` raises on any failed check; then nothing in ``dist`` changes.
    """
    with _staging_in(dist) as staging:
        names = download_release(target, staging, client, provenance=provenance, reporter=reporter)
        result = verify(staging)
        _promote(staging, names, dist)
    return result
