"""``invoke verify --repo --tag``: fetch a release's assets, then verify them like local files."""

from __future__ import annotations

from pathlib import Path

from mirror.errors import MirrorError
from mirror.settings import licence_copy_name

from .assets import MANIFEST_NAME, ONNX_NAME, bundle_path
from .attach import ReleaseTarget
from .github import GitHubClient, Progress

# Everything verify reads; the licence files come along for the operator's records.
REQUIRED = (
    ONNX_NAME,
    MANIFEST_NAME,
    bundle_path(Path(ONNX_NAME)).name,
    bundle_path(Path(MANIFEST_NAME)).name,
    licence_copy_name("LICENSE"),
)


def download_release(
    target: ReleaseTarget, dist: Path, client: GitHubClient, progress: Progress = lambda *_: None
) -> list[Path]:
    """Download the release's assets into ``dist`` (each atomically); return their paths."""
    release = client.find_release(target.tag)
    if release is None:
        raise MirrorError(
            f"{target.repo}: no release {target.tag} (drafts are visible only with a token that can see them)"
        )
    assets = {asset["name"]: asset for asset in client.list_assets(release["id"])}
    missing = [name for name in REQUIRED if assets.get(name, {}).get("state") != "uploaded"]
    if missing:
        raise MirrorError(f"release {target.tag} of {target.repo} lacks {', '.join(missing)}")
    wanted = [*REQUIRED]
    if assets.get(licence_copy_name("NOTICE"), {}).get("state") == "uploaded":
        wanted.append(licence_copy_name("NOTICE"))
    paths = []
    for name in wanted:
        client.download_asset(assets[name], dist / name, progress)
        paths.append(dist / name)
    return paths
