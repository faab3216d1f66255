"""``attach``: put the signed release files on a GitHub release, safely and idempotently.

The order is what makes it safe: every check that needs no network runs first; then the
remote state is read and a plan made; a conflict stops everything before the first change;
assets are uploaded (streamed) and each one verified, by the server's digest or, where the
server gives none, by downloading it again and hashing it; the release is published only when
every asset is there and verified.  Re-running after any failure finishes the job: what is
already there with the right content is skipped.  Nothing the server sends is used as a path:
remote copies are hashed as they stream, bundles are read into memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle
from sigstore.verify import Verifier

from mirror import __version__
from mirror.contract import (
    BUNDLE_SUFFIX,
    EVALUATION_STATEMENT_NAME,
    MANIFEST_NAME,
    MODEL_CARD_NAME,
    MODEL_ID,
    OMS_NAME,
    ONNX_NAME,
    PROVENANCE_NAME,
    carried,
    licence_copy_name,
)
from mirror.errors import InputError, VerificationError
from mirror.git import GitError, run_git
from mirror.hashing import sha256_file
from mirror.jsonio import loads_strict
from mirror.model_card import ASSET_URL
from mirror.reporting import SILENT, Reporter
from mirror.settings import UpstreamPin

from .assets import checked_manifest, licence_copies
from .attestation import subjects_of
from .attestations import same_envelope
from .bundles import model_signature_serves, serves_as_ours
from .checks import ExpectedSigner, pin_disagreements, verify_release
from .errors import AttachConflict, GitHubError
from .github import GitHubClient
from .instance import SigstoreInstance
from .remote import RemoteAsset, RemoteRelease
from .target import ReleaseTarget

_CONTENT_TYPES = {".onnx": "application/octet-stream", ".json": "application/json"}
# A Sigstore bundle is a few KiB; a remote "bundle" larger than this is not read.
_MAX_BUNDLE_BYTES = 1 << 20


# (bundle's asset name, remote bundle bytes) -> is it as good a signature as ours?
# (release file name, a remote bundle's bytes, the sha256 each other asset will have once attach
# is done) -> whether that bundle serves as well as ours.
BundleCheck = Callable[[str, bytes, Mapping[str, str]], bool]


class Action(StrEnum):
    """What the plan does with one asset (a str, so it prints and compares as its word)."""

    SKIP = "skip"  # already there with the same content (or an equivalent signature)
    UPLOAD = "upload"
    REPLACE = "replace"  # upload under a staging name, verify, delete the old, rename
    RENAME = "rename"  # finish a replace that was interrupted after its upload
    CONFLICT = "conflict"  # other content there, and no --replace: nothing is changed


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
    action: Action
    # The sha256 the asset must have on the release when attach is done: ours, or that of an
    # equivalent signature already there.
    final_sha256: str
    remote: RemoteAsset | None = None
    starters: tuple[RemoteAsset, ...] = ()  # leftovers of failed uploads, removed first


@dataclass(frozen=True)
class AttachResult:
    release_url: str
    created: bool
    published: bool
    plan: list[PlannedAsset]


class _LostPublishRace(Exception):
    """Internal: another run published a release for the tag while this one was uploading."""


def release_assets(dist: Path) -> tuple[dict[str, Any], list[LocalAsset]]:
    """The manifest and the files a release carries, in upload order: the model last so a
    partial release never offers an unsigned model."""
    manifest, onnx_sha256 = checked_manifest(dist)
    licences = licence_copies(manifest)
    # The promotion gate's evidence goes up where sign has signed it.
    evaluated = (dist / EVALUATION_STATEMENT_NAME).is_file()
    notice = manifest["upstream"]["notice_present"]
    names = [name for name in carried(notice=notice, evaluation=evaluated) if name != ONNX_NAME]
    assets = []
    for name in [*names, ONNX_NAME]:
        path = dist / name
        if not path.is_file():
            raise InputError(f"{path}: missing; run `invoke release` (or the step that makes it) first")
        digest = onnx_sha256 if name == ONNX_NAME else sha256_file(path)
        assets.append(LocalAsset(name, path, digest, path.stat().st_size))
    for asset in assets:
        if asset.name in licences and asset.sha256 != licences[asset.name]:
            raise InputError(f"{asset.path}: is not the upstream licence file the manifest records")
    return manifest, assets


def _tracked_by_git(path: Path) -> bool:
    try:
        result = run_git(path.parent, "ls-files", "--error-unmatch", "--", path.name)
    except GitError:
        return False  # no git, no repository to commit the model to
    return result.returncode == 0


def preflight(
    dist: Path,
    target: ReleaseTarget,
    expected: ExpectedSigner,
    instance: SigstoreInstance,
    pins: UpstreamPin,
    *,
    allow_unpinned: bool = False,
    need_token: bool = True,
) -> tuple[dict[str, Any], list[LocalAsset]]:
    """Everything checked before the first request: credentials, files, signatures, pins, git."""
    if need_token and not target.token:
        raise InputError("no GitHub token: set GITHUB_TOKEN (or GH_TOKEN) to a token with contents: write")
    manifest, assets = release_assets(dist)
    problems = pin_disagreements(manifest, pins)
    if problems and not allow_unpinned:
        raise VerificationError(
            f"{dist / MANIFEST_NAME}: a {manifest['build_kind']} build, not the audited model "
            f"({'; '.join(problems)}); refusing to publish it (--allow-unpinned publishes it anyway, marked as such)"
        )
    # The files were hashed just now, for the upload plan: verify uses those digests, not a second read.
    verify_release(
        dist, expected, instance, pins, allow_unpinned=allow_unpinned, known_sha256={a.name: a.sha256 for a in assets}
    )
    onnx = dist / ONNX_NAME
    if _tracked_by_git(onnx):
        raise InputError(
            f"{onnx}: is tracked by git; model binaries are release assets only: `git rm --cached` it first"
        )
    return manifest, assets


class _RemoteContent:
    """What each remote asset holds, learnt once per run: by the server's digest, or by hashing
    a download (servers without digests).  ``verified`` maps asset id -> sha256."""

    def __init__(self, client: GitHubClient) -> None:
        self.client = client
        self.verified: dict[int, str] = {}
        self._bytes: dict[int, bytes] = {}

    def sha256(self, remote: RemoteAsset) -> str:
        if remote.id not in self.verified:
            self.verified[remote.id] = remote.sha256 or self.client.asset_sha256(remote)
        return self.verified[remote.id]

    def small(self, remote: RemoteAsset) -> bytes:
        """A small asset's bytes (a bundle), read into memory, never to a file."""
        if remote.id not in self._bytes:
            self._bytes[remote.id] = self.client.read_asset(remote, _MAX_BUNDLE_BYTES)
        return self._bytes[remote.id]


def _equivalent_signature(
    content: _RemoteContent,
    remote: RemoteAsset,
    asset: LocalAsset,
    check: BundleCheck,
    final: Mapping[str, str],
) -> bool:
    """Whether a remote bundle with other bytes is an equally valid signature of the same files.

    Signing is not deterministic: a re-run on a fresh machine makes new bundles for the same
    ONNX and manifest (and a new provenance statement, whose run details differ).  A remote
    bundle that verifies for the expected signer and signs the same files is as good as ours,
    so it is kept rather than reported as a conflict.  The model signature signs the other
    files as they will be on the release (``final``), kept equivalent bundles included.
    """
    if not asset.name.endswith(BUNDLE_SUFFIX) or remote.size > _MAX_BUNDLE_BYTES:
        return False
    return check(asset.name, content.small(remote), final)


def make_plan(
    content: _RemoteContent,
    release: RemoteRelease | None,
    assets: list[LocalAsset],
    replace: bool,
    check: BundleCheck,
) -> list[PlannedAsset]:
    remote_assets = content.client.list_assets(release) if release else []
    by_name: dict[str, list[RemoteAsset]] = {}
    for remote in remote_assets:
        by_name.setdefault(remote.name, []).append(remote)
    plan: list[PlannedAsset] = []
    # The model signature is planned last: it signs the other files as they will be on the release.
    for asset in sorted(assets, key=lambda asset: asset.name == OMS_NAME):
        final = {planned.asset.name: planned.final_sha256 for planned in plan}
        present = by_name.get(asset.name, [])
        starters = tuple(r for r in present if not r.uploaded)
        uploaded = [r for r in present if r.uploaded]
        staged = [r for r in by_name.get(asset.staging_name, []) if r.uploaded and content.sha256(r) == asset.sha256]
        if uploaded:
            remote = uploaded[0]
            if content.sha256(remote) == asset.sha256:
                plan.append(PlannedAsset(asset, Action.SKIP, asset.sha256, remote, starters))
            elif _equivalent_signature(content, remote, asset, check, final):
                plan.append(PlannedAsset(asset, Action.SKIP, content.sha256(remote), remote, starters))
            else:
                plan.append(
                    PlannedAsset(asset, Action.REPLACE if replace else Action.CONFLICT, asset.sha256, remote, starters)
                )
        elif staged:
            plan.append(PlannedAsset(asset, Action.RENAME, asset.sha256, staged[0], starters))
        else:
            plan.append(PlannedAsset(asset, Action.UPLOAD, asset.sha256, None, starters))
    order = [asset.name for asset in assets]
    return sorted(plan, key=lambda planned: order.index(planned.asset.name))


def _release_text(manifest: dict[str, Any], target: ReleaseTarget, assets: list[LocalAsset]) -> tuple[str, str]:
    upstream = manifest["upstream"]
    kind = manifest["build_kind"]
    marker = "" if kind == "audited" else f"{kind.upper()} BUILD, NOT THE AUDITED MODEL: "
    name = f"{marker}{MODEL_ID} {target.tag} (U-2-Net {upstream['commit'][:12]})"
    rows = "\n".join(f"| `{a.name}` | `{a.sha256}` |" for a in assets)
    unheld = "".join(f"- {problem}\n" for problem in upstream.get("pin_problems") or [])
    warning = (
        ""
        if kind == "audited"
        else f"**This is a {kind} build: it was not exported from the audited upstream and checkpoint.**\n\n"
        + (f"Pins that did not hold:\n\n{unheld}\n" if unheld else "")
    )
    body = f"""{warning}U-2-Net's U2NETP saliency model ({upstream["repo"]} at commit `{upstream["commit"]}`), \
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

Or from Python, verified the same way and cached: \
`from release.consumer import fetch; onnx_path = fetch("{target.repo}", "{target.tag}")`. \
Pinned by hash, with pooch:

    pooch.retrieve(
        url="{ASSET_URL.format(repo=target.repo, tag=target.tag)}",
        known_hash="sha256:{manifest["outputs"]["onnx_sha256"]}",
    )

rembg's `u2net_custom` session runs it from under `$REMBG_HOME` (default `~/.rembg`); \
`{MODEL_CARD_NAME}` says how, and what the model is for.
"""
    return name, body


def _upload_verified(content: _RemoteContent, release: RemoteRelease, asset: LocalAsset, name: str) -> RemoteAsset:
    """Upload ``asset`` as ``name`` and verify the server holds exactly its bytes.

    Verified by the server's digest or, where it gives none, by downloading the upload again
    and hashing it.  An upload whose content differs is deleted and tried once more; if that
    fails too, the error says so and nothing published has changed.
    """
    client = content.client

    def settle() -> RemoteAsset | None:
        for remote in client.list_assets(release):
            if remote.name != name:
                continue
            if remote.uploaded and content.sha256(remote) == asset.sha256:
                return remote
            if remote.uploaded:
                raise AttachConflict(
                    f"{name}: appeared on the release with other content while uploading; re-run to see the plan"
                )
            client.delete_asset(remote)  # a starter left by a failed attempt
        return None

    found = ""
    for _ in range(2):
        uploaded = client.upload_asset(release, asset.path, name, asset.content_type, recover=settle)
        found = content.sha256(uploaded)
        if found == asset.sha256:
            return uploaded
        client.delete_asset(uploaded)
    raise GitHubError(
        f"{name}: {client.host} keeps the upload with sha256 {found[:16]}…, not {asset.sha256[:16]}… as sent; "
        "removed it, nothing published was changed"
    )


def _carry_out(
    content: _RemoteContent,
    release: RemoteRelease,
    plan: list[PlannedAsset],
    reporter: Reporter,
) -> None:
    client = content.client
    for item in plan:
        for starter in item.starters:
            client.delete_asset(starter)
        if item.action is Action.UPLOAD:
            _upload_verified(content, release, item.asset, item.asset.name)
        elif item.action is Action.RENAME and item.remote is not None:
            client.rename_asset(item.remote, item.asset.name)
        elif item.action is Action.REPLACE and item.remote is not None:
            # Never delete first: the new file is uploaded and verified under a staging name,
            # then the old asset is deleted and the new one takes its name.
            staged = _upload_verified(content, release, item.asset, item.asset.staging_name)
            client.delete_asset(item.remote)
            client.rename_asset(staged, item.asset.name)
        reporter.line(f"{item.action}: {item.asset.name} sha256 {item.asset.sha256}")


def _check_final(content: _RemoteContent, release: RemoteRelease, plan: list[PlannedAsset]) -> None:
    """Every planned asset is on the release, uploaded, with the content the plan wants."""
    final = {remote.name: remote for remote in content.client.list_assets(release)}
    for item in plan:
        remote = final.get(item.asset.name)
        if remote is None or not remote.uploaded or content.sha256(remote) != item.final_sha256:
            raise GitHubError(
                f"{item.asset.name}: not on release {release.tag_name} as uploaded; re-run `invoke attach`"
            )


# The signed in-toto statements about the ONNX that GitHub's attestation store keeps for
# `gh attestation verify FILE --repo OWNER/REPO` (online): the provenance, and the evaluation.
ATTESTED = (PROVENANCE_NAME, EVALUATION_STATEMENT_NAME)


def _store_attestations(
    client: GitHubClient, content: _RemoteContent, plan: list[PlannedAsset], reporter: Reporter
) -> None:
    """Store each statement the release carries, as the release carries it, unless it is stored already."""
    onnx = next(item for item in plan if item.asset.name == ONNX_NAME)
    stored = client.attestations_for(onnx.final_sha256)
    for item in plan:
        if item.asset.name not in ATTESTED:
            continue
        kept_remote = item.remote is not None and item.final_sha256 != item.asset.sha256
        data = content.small(item.remote) if kept_remote and item.remote else item.asset.path.read_bytes()
        bundle = loads_strict(data)
        if same_envelope(bundle, stored):
            reporter.line(f"attestation: {item.asset.name} already in {client.repo}'s attestations")
            continue
        client.store_attestation(bundle, onnx.final_sha256)
        reporter.line(f"attestation: stored {item.asset.name} in {client.repo}'s attestations (gh attestation verify)")


def _publish(client: GitHubClient, release: RemoteRelease) -> RemoteRelease:
    try:
        return client.publish(release)
    except GitHubError as exc:
        # GitHub refuses a second published release for a tag: another run won the race.
        if exc.code == "already_exists":
            raise _LostPublishRace from None
        raise


def _signature_equivalence(
    instance: SigstoreInstance, expected: ExpectedSigner, manifest: dict[str, Any], assets: list[LocalAsset]
) -> BundleCheck:
    verifier = Verifier(trusted_root=instance.client_trust_config.trusted_root)
    signer_policy = expected.policy()
    artifacts = {asset.name: asset.sha256 for asset in assets}
    subjects = subjects_of(manifest, artifacts[MANIFEST_NAME])

    def equivalent(name: str, data: bytes, final: Mapping[str, str]) -> bool:
        try:
            bundle = Bundle.from_json(data)
        except (SigstoreError, ValueError):
            return False
        if name == OMS_NAME:
            return model_signature_serves(
                verifier, bundle, {n: d for n, d in final.items() if n != OMS_NAME}, signer_policy
            )
        return serves_as_ours(verifier, bundle, name, artifacts, subjects, signer_policy)

    return equivalent


def _show_plan(tag: str, release: RemoteRelease | None, plan: list[PlannedAsset], reporter: Reporter) -> None:
    """Report the plan; refuse, before any change, if it has a conflict."""
    if release is None:
        reporter.line(f"plan: create draft release {tag}")
    for item in plan:
        cleanup = f" (after removing {len(item.starters)} failed upload leftover)" if item.starters else ""
        reporter.line(f"plan: {item.action:<8} {item.asset.name}{cleanup}")
    conflicts = [item.asset.name for item in plan if item.action is Action.CONFLICT]
    if conflicts:
        raise AttachConflict(
            f"release {tag} already has {', '.join(conflicts)} with other content; nothing was changed. "
            "Re-export the same inputs, or pass --replace to swap them (new uploaded and verified first)"
        )


def attach_release(
    dist: Path,
    target: ReleaseTarget,
    expected: ExpectedSigner,
    instance: SigstoreInstance,
    client: GitHubClient,
    *,
    pins: UpstreamPin,
    allow_unpinned: bool = False,
    draft: bool = False,
    replace: bool = False,
    dry_run: bool = False,
    reporter: Reporter = SILENT,
) -> AttachResult:
    """Check, plan, then (unless ``dry_run``) upload and publish.  See the module docstring.

    If another run publishes a release for the same tag meanwhile, this run removes its own
    draft and converges on the published one (re-planned against it: skips, or a conflict).
    """
    manifest, assets = preflight(
        dist, target, expected, instance, pins, allow_unpinned=allow_unpinned, need_token=not dry_run
    )
    reporter.line(f"preflight: {len(assets)} assets present, signatures and pins verified, ONNX not tracked by git")
    if problems := pin_disagreements(manifest, pins):
        reporter.line(
            f"build: {manifest['build_kind'].upper()}, not the audited model (--allow-unpinned): {'; '.join(problems)}"
        )
    else:
        reporter.line("build: audited (every pin holds)")
    check = _signature_equivalence(instance, expected, manifest, assets)
    content = _RemoteContent(client)
    for _ in range(2):  # a second round only after losing the race to publish the tag
        release = client.find_release(target.tag)
        plan = make_plan(content, release, assets, replace, check)
        _show_plan(target.tag, release, plan, reporter)
        publish = not draft and (release is None or release.draft)
        if dry_run:
            reporter.line(f"plan: {'publish the release' if publish else 'leave the release as it is'} (dry run)")
            url = release.html_url if release else f"(a new draft for {target.tag})"
            return AttachResult(url, release is None, False, plan)
        created = release is None
        if release is None:
            name, body = _release_text(manifest, target, assets)
            release = client.create_draft(target.tag, name, body)
            reporter.line(f"created draft release {target.tag}")
        _carry_out(content, release, plan, reporter)
        _check_final(content, release, plan)
        _store_attestations(client, content, plan, reporter)
        if not (publish and release.draft):
            return AttachResult(release.html_url, created, False, plan)
        try:
            release = _publish(client, release)
        except _LostPublishRace:
            reporter.line(f"another run published release {target.tag} first; checking theirs")
            if created:  # our own draft; another run's draft is theirs to clean up
                client.delete_release(release)
            continue
        reporter.line(f"published release {target.tag}")
        return AttachResult(release.html_url, created, True, plan)
    raise GitHubError(f"release {target.tag}: lost the race to publish it twice; re-run `invoke attach`")
