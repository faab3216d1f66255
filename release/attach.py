"""``invoke attach``: put the signed release files on a GitHub release, safely and idempotently.

The order is what makes it safe: every check that needs no network runs first; then the
remote state is read and a plan made; a conflict stops everything before the first change;
assets are uploaded (streamed) and each one's server digest compared with the local sha256;
the release is published only when every asset is there and verified.  Re-running after any
failure finishes the job: what is already there with the right digest is skipped.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigstore.errors import Error as SigstoreError
from sigstore.verify import Verifier

from mirror import __version__
from mirror.errors import MirrorError
from mirror.hashing import sha256_file
from mirror.settings import licence_copy_name

from .assets import BUNDLE_SUFFIX, MANIFEST_NAME, ONNX_NAME, bundle_path, checked_manifest, licence_copies
from .bundles import prehashed, read_bundle
from .github import GitHubClient, GitHubError, Progress, Retryable, check_repo
from .instance import SigstoreInstance
from .verification import ExpectedSigner, verify_release

DEFAULT_API_URL = "https://api.github.com"
_CONTENT_TYPES = {".onnx": "application/octet-stream", ".json": "application/json"}


# (bundle file, sha256 of the file it should sign) -> does it verify for the expected signer?
BundleCheck = Callable[[Path, str], bool]


class AttachConflict(MirrorError):
    """The release already has an asset of the same name with other content."""


@dataclass(frozen=True)
class ReleaseTarget:
    """Which release, where, and with which credentials (shared by attach and download)."""

    repo: str
    tag: str
    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, repo: str | None, tag: str | None, api_url: str | None) -> ReleaseTarget:
        """Fill the gaps from GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_TOKEN / GH_TOKEN."""
        chosen_repo = check_repo(repo or os.environ.get("GITHUB_REPOSITORY", ""))
        if not tag:
            raise MirrorError("--tag: which release? e.g. --tag u2netp-mirror-v1.0.0")
        return cls(
            repo=chosen_repo,
            tag=tag,
            api_url=api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
            token=os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None,
        )


@dataclass(frozen=True)
class LocalAsset:
    name: str
    path: Path
    sha256: str
    size: int

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES.get(self.path.suffix, "text/plain")

    @property
    def staging_name(self) -> str:
        # Where --replace puts the new file until it is verified; unique per content.
        return f"{self.name}.new-{self.sha256[:12]}"


@dataclass(frozen=True)
class PlannedAsset:
    asset: LocalAsset
    action: str  # "skip", "upload", "replace", "rename" (finish an interrupted replace), "conflict"
    remote: dict[str, Any] | None = None
    starters: tuple[dict[str, Any], ...] = ()  # leftovers of failed uploads, removed first

    @property
    def final_digest(self) -> str | None:
        """The digest the asset must have on the release when attach is done."""
        if self.action == "skip" and self.remote is not None:
            return self.remote.get("digest")  # ours, or an equivalent signature's
        return f"sha256:{self.asset.sha256}"


@dataclass(frozen=True)
class AttachResult:
    release_url: str
    created: bool
    published: bool
    plan: list[PlannedAsset]


def release_assets(dist: Path) -> tuple[dict[str, Any], list[LocalAsset]]:
    """The manifest and the files a release carries, in upload order: the model last so a
    partial release never offers an unsigned model."""
    manifest, onnx_sha256 = checked_manifest(dist)
    licences = licence_copies(manifest)
    names = [MANIFEST_NAME, bundle_path(Path(MANIFEST_NAME)).name, bundle_path(Path(ONNX_NAME)).name, *licences]
    assets = []
    for name in [*names, ONNX_NAME]:
        path = dist / name
        if not path.is_file():
            raise MirrorError(f"{path}: missing; run `invoke release` (or the step that makes it) first")
        digest = onnx_sha256 if name == ONNX_NAME else sha256_file(path)
        assets.append(LocalAsset(name, path, digest, path.stat().st_size))
    for asset in assets:
        if asset.name in licences and asset.sha256 != licences[asset.name]:
            raise MirrorError(f"{asset.path}: is not the upstream licence file the manifest records")
    return manifest, assets


def _tracked_by_git(path: Path) -> bool:
    try:
        result = subprocess.run(
            ["git", "-C", str(path.parent), "ls-files", "--error-unmatch", "--", path.name],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def preflight(
    dist: Path, target: ReleaseTarget, expected: ExpectedSigner, instance: SigstoreInstance
) -> tuple[dict[str, Any], list[LocalAsset]]:
    """Everything checked before the first request: credentials, files, signatures, git."""
    if not target.token:
        raise MirrorError("no GitHub token: set GITHUB_TOKEN (or GH_TOKEN) to a token with contents: write")
    manifest, assets = release_assets(dist)
    verify_release(dist, expected, instance)
    onnx = dist / ONNX_NAME
    if _tracked_by_git(onnx):
        raise MirrorError(
            f"{onnx}: is tracked by git; model binaries are release assets only: `git rm --cached` it first"
        )
    return manifest, assets


def _remote_sha256(client: GitHubClient, remote: dict[str, Any], scratch: Path) -> str | None:
    digest = remote.get("digest") or ""
    if digest.startswith("sha256:"):
        return digest.removeprefix("sha256:")
    if remote.get("state") != "uploaded":
        return None
    # Servers without asset digests (older GitHub Enterprise): hash a download instead.
    copy = scratch / f"remote-{remote['id']}"
    client.download_asset(remote, copy, lambda *_: None)
    try:
        return sha256_file(copy)
    finally:
        copy.unlink(missing_ok=True)


def _equivalent_signature(
    client: GitHubClient,
    remote: dict[str, Any],
    asset: LocalAsset,
    artifacts: dict[str, str],
    check: BundleCheck,
    scratch: Path,
) -> bool:
    """Whether a remote bundle with other bytes is an equally valid signature of the same file.

    Signing is not deterministic: a re-run on a fresh machine makes new bundles for the same
    ONNX and manifest.  A remote bundle that verifies for our file and the expected signer is
    as good as ours, so it is kept rather than reported as a conflict.
    """
    artifact = asset.name.removesuffix(BUNDLE_SUFFIX)
    if not asset.name.endswith(BUNDLE_SUFFIX) or artifact not in artifacts:
        return False
    copy = scratch / f"bundle-{remote['id']}"
    client.download_asset(remote, copy, lambda *_: None)
    try:
        return check(copy, artifacts[artifact])
    finally:
        copy.unlink(missing_ok=True)


def make_plan(
    client: GitHubClient,
    release: dict[str, Any] | None,
    assets: list[LocalAsset],
    replace: bool,
    check: BundleCheck,
    scratch: Path,
) -> list[PlannedAsset]:
    remote_assets = client.list_assets(release["id"]) if release else []
    by_name: dict[str, list[dict[str, Any]]] = {}
    for remote in remote_assets:
        by_name.setdefault(remote["name"], []).append(remote)
    artifacts = {asset.name: asset.sha256 for asset in assets}
    plan = []
    for asset in assets:
        present = by_name.get(asset.name, [])
        starters = tuple(r for r in present if r.get("state") != "uploaded")
        uploaded = [r for r in present if r.get("state") == "uploaded"]
        staged = [r for r in by_name.get(asset.staging_name, []) if _remote_sha256(client, r, scratch) == asset.sha256]
        if uploaded:
            same = _remote_sha256(client, uploaded[0], scratch) == asset.sha256 or _equivalent_signature(
                client, uploaded[0], asset, artifacts, check, scratch
            )
            action = "skip" if same else ("replace" if replace else "conflict")
            plan.append(PlannedAsset(asset, action, uploaded[0], starters))
        elif staged:
            plan.append(PlannedAsset(asset, "rename", staged[0], starters))
        else:
            plan.append(PlannedAsset(asset, "upload", None, starters))
    return plan


def _release_text(manifest: dict[str, Any], target: ReleaseTarget, assets: list[LocalAsset]) -> tuple[str, str]:
    upstream = manifest["upstream"]
    name = f"u2netp_mirror_v1 {target.tag} (U-2-Net {upstream['commit'][:12]})"
    rows = "\n".join(f"| `{a.name}` | `{a.sha256}` |" for a in assets)
    body = f"""U-2-Net's U2NETP saliency model ({upstream["repo"]} at commit `{upstream["commit"]}`), \
exported to ONNX (opset {manifest["export"]["opset"]}, input `{manifest["export"]["input_name"]}` → \
output `{manifest["export"]["output_name"]}` = upstream's d0) by u2netp-mirror {__version__}.

| asset | sha256 |
| --- | --- |
{rows}

Upstream module `{upstream["module_path"]}` sha256 `{upstream["module_sha256"]}`; \
checkpoint `u2netp.pth` sha256 `{upstream["checkpoint_sha256"]}`.

Licence: {upstream["license_spdx"]}. The model is a derivative of U-2-Net by Xuebin Qin et al., \
redistributed under the Apache License 2.0: see `{licence_copy_name("LICENSE")}`\
{" and `" + licence_copy_name("NOTICE") + "`" if upstream["notice_present"] else ""}.

Verify before use (no PyTorch needed):

    pip install u2netp-mirror
    u2netp-mirror verify --repo {target.repo} --tag {target.tag} --dist u2netp-mirror-{target.tag}
"""
    return name, body


def _upload_verified(
    client: GitHubClient, release: dict[str, Any], asset: LocalAsset, name: str, progress: Progress
) -> dict[str, Any]:
    """Upload ``asset`` as ``name`` until the server holds it with the right digest.

    After a failed attempt the release is re-read: an upload that completed anyway is
    accepted, a ``starter`` leftover is deleted before the next attempt.
    """

    def settle() -> dict[str, Any] | None:
        for remote in client.list_assets(release["id"]):
            if remote["name"] != name:
                continue
            if remote.get("state") == "uploaded" and remote.get("digest") == f"sha256:{asset.sha256}":
                return remote
            if remote.get("state") == "uploaded":
                raise AttachConflict(
                    f"{name}: appeared on the release with other content while uploading; re-run to see the plan"
                )
            client.delete_asset(remote["id"])  # a starter left by the failed attempt
        return None

    def attempt() -> dict[str, Any]:
        try:
            uploaded = client.upload_asset(release["upload_url"], asset.path, name, asset.content_type, progress)
        except GitHubError as exc:
            if exc.code == "already_exists":  # a race, or an earlier attempt that did land
                if (settled := settle()) is not None:
                    return settled
                raise Retryable(f"{name} was in the way; removed the leftover") from None
            raise
        if uploaded.get("digest") not in (None, f"sha256:{asset.sha256}"):
            client.delete_asset(uploaded["id"])
            raise Retryable(f"{name}: server digest {uploaded.get('digest')} != local sha256; upload again")
        return uploaded

    return client.retrying(f"upload {name}", attempt, recover=settle)


def attach_release(
    dist: Path,
    target: ReleaseTarget,
    expected: ExpectedSigner,
    instance: SigstoreInstance,
    client: GitHubClient,
    *,
    draft: bool = False,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress = lambda *_: None,
    report: Callable[[str], None] = lambda _: None,
) -> AttachResult:
    """Check, plan, then (unless ``dry_run``) upload and publish.  See the module docstring."""
    manifest, assets = preflight(dist, target, expected, instance)
    report(f"preflight: {len(assets)} assets present, signatures verified, ONNX not tracked by git")
    release = client.find_release(target.tag)
    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    signer_policy = expected.policy()

    def bundle_verifies(bundle: Path, artifact_sha256: str) -> bool:
        try:
            verifier.verify_artifact(prehashed(artifact_sha256), read_bundle(bundle), signer_policy)
        except (MirrorError, SigstoreError):
            return False
        return True

    with tempfile.TemporaryDirectory(prefix=".attach-", dir=dist) as scratch:
        plan = make_plan(client, release, assets, replace, bundle_verifies, Path(scratch))
    conflicts = [p.asset.name for p in plan if p.action == "conflict"]
    if release is None:
        report(f"plan: create draft release {target.tag}")
    for item in plan:
        cleanup = f" (after removing {len(item.starters)} failed upload leftover)" if item.starters else ""
        report(f"plan: {item.action:<8} {item.asset.name}{cleanup}")
    if conflicts:
        raise AttachConflict(
            f"release {target.tag} already has {', '.join(conflicts)} with other content; nothing was changed. "
            "Re-export the same inputs, or pass --replace to swap them (new uploaded and verified first)"
        )
    publish = not draft and (release is None or release.get("draft", False))
    if dry_run:
        report(f"plan: {'publish the release' if publish else 'leave the release as it is'} (dry run: no changes made)")
        url = release["html_url"] if release else f"(a new draft for {target.tag})"
        return AttachResult(url, release is None, False, plan)

    created = release is None
    if release is None:
        name, body = _release_text(manifest, target, assets)
        release = client.create_draft(target.tag, name, body)
        report(f"created draft release {target.tag}")
    for item in plan:
        for starter in item.starters:
            client.delete_asset(starter["id"])
        if item.action == "upload":
            _upload_verified(client, release, item.asset, item.asset.name, progress)
        elif item.action == "rename" and item.remote is not None:
            client.rename_asset(item.remote["id"], item.asset.name)
        elif item.action == "replace" and item.remote is not None:
            # Never delete first: the new file is uploaded and verified under a staging name,
            # then the old asset is deleted and the new one takes its name.
            staged = _upload_verified(client, release, item.asset, item.asset.staging_name, progress)
            client.delete_asset(item.remote["id"])
            client.rename_asset(staged["id"], item.asset.name)
        report(f"{item.action}: {item.asset.name} sha256 {item.asset.sha256}")

    final = {r["name"]: r for r in client.list_assets(release["id"])}
    for item in plan:
        remote = final.get(item.asset.name)
        if (
            remote is None
            or remote.get("state") != "uploaded"
            or (remote.get("digest") and remote["digest"] != item.final_digest)
        ):
            raise GitHubError(f"{item.asset.name}: not on release {target.tag} as uploaded; re-run `invoke attach`")
    published = False
    if publish and release.get("draft", True):
        release = client.update_release(release["id"], draft=False)
        published = True
        report(f"published release {target.tag}")
    return AttachResult(release["html_url"], created, published, plan)
