"""The trust boundary, tried as an attacker and as a careless user would (issue: trust boundary).

A hostile or broken GitHub, a partial download, a debug log, a demo build: each case drives
the real command line in a subprocess and checks what a user would see and what is left on
disk: the exit status, one stderr line without a traceback, no file created or removed
outside dist (a sibling directory is snapshotted), dist unchanged on failure, the published
release unchanged where a step failed, and the tokens absent from every output and file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from loopback.github import HOSTILE_ASSET_ID
from release.attach import attach_release
from release.checks import ExpectedSigner
from release.errors import GitHubError
from release.github import Clock, GitHubClient, RetryPolicy
from release.target import ReleaseTarget
from tests.conftest import GITHUB_TOKEN
from tests.helpers import (
    FOR_RELEASE,
    GITHUB_ISSUER,
    LICENCE,
    MANIFEST,
    MANIFEST_BUNDLE,
    ONNX,
    ONNX_BUNDLE,
    RELEASE_IDENTITY,
    fixture_pin_env,
    run_cli,
    signer_for,
    without_ambient_credentials,
)

pytestmark = pytest.mark.slow

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-v1.0.0"
EXPECTED = ExpectedSigner(issuer=GITHUB_ISSUER, identity=RELEASE_IDENTITY)
FAST = RetryPolicy(attempts=2, backoff=0.01, max_wait=0.05, timeout=10.0)
SIGSTORE_TOKEN_MARKER = "distinctive"


def tree(directory: Path) -> dict[str, bytes | None]:
    """Every path under ``directory`` with its bytes (None for directories)."""
    if not directory.exists():
        return {}
    return {
        p.relative_to(directory).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(directory.rglob("*"))
    }


@dataclass
class Workspace:
    """A directory holding dist and a sibling; a run may change dist only, and only on success."""

    root: Path

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    @property
    def sibling(self) -> Path:
        return self.root / "sibling"

    def outside_dist(self) -> dict[str, bytes | None]:
        return {k: v for k, v in tree(self.root).items() if not (k == "dist" or k.startswith("dist/"))}


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    space = Workspace(tmp_path / "work")
    space.sibling.mkdir(parents=True)
    (space.sibling / "keep.txt").write_text("the user's own file\n")
    return space


def attach_lib(github, dist, instance, pins, **options):
    client = GitHubClient(
        api_url=github.url, repo=REPO, token=GITHUB_TOKEN, retry=FAST, clock=Clock(sleep=lambda _: None)
    )
    target = ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=GITHUB_TOKEN)
    return attach_release(dist, target, EXPECTED, instance, client, pins=pins, **options)


def cli_env(github, pristine, **extra: str) -> dict[str, str]:
    return {
        **without_ambient_credentials(),
        **fixture_pin_env(pristine),
        "GITHUB_API_URL": github.url,
        "INVOKE_U2NETP_GITHUB_ATTEMPTS": "2",
        "INVOKE_U2NETP_GITHUB_BACKOFF_SECONDS": "0.01",
        **extra,
    }


def assert_one_line_failure(result, *fragments: str, code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert "\x1b" not in line
    for fragment in fragments:
        assert fragment in line, line
    return line


def assert_no_secrets(results, *places: Path, secrets=(GITHUB_TOKEN,)) -> None:
    for result in results:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr
    for place in places:
        for path in place.rglob("*"):
            if path.is_file():
                for secret in secrets:
                    assert secret.encode() not in path.read_bytes(), path


# -- downloading: `verify --repo --tag` -----------------------------------------------------


@pytest.fixture
def published(github, signed, instance, pins):
    """A good release on the loopback GitHub: what `signed` holds."""
    attach_lib(github, signed, instance, pins)
    return signed


def verify_download(
    workspace,
    github,
    trust_config,
    pristine,
    *extra: str,
    debug: bool = False,
    file_size_limit: int | None = None,
    **env: str,
):
    args = ["--debug"] if debug else []
    args += ["verify", "--repo", REPO, "--tag", TAG, "--dist", str(workspace.dist)]
    args += ["--trust-config", str(trust_config), *extra]
    return run_cli(
        *args,
        cwd=workspace.root,
        env_override=cli_env(github, pristine, **env),
        timeout=120,
        file_size_limit=file_size_limit,
    )


def test_download_verifies_in_staging_then_fills_dist(github, published, trust_config, pristine, workspace):
    before = workspace.outside_dist()
    result = verify_download(workspace, github, trust_config, pristine)
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout
    assert {name: data for name, data in tree(workspace.dist).items()} == {
        name: (published / name).read_bytes() for name in tree(workspace.dist)
    }
    assert sorted(tree(workspace.dist)) == sorted(p.name for p in published.iterdir())
    assert workspace.outside_dist() == before  # the staging directory is gone


@pytest.mark.parametrize(
    ("switch", "value", "message"),
    [
        ("download_mode", "truncated", "bytes the API announced"),
        ("download_mode", "oversized", "more than the"),
        ("download_mode", "redirect_loop", "more than 5 redirects"),
        ("download_mode", "file_redirect", "not an HTTPS URL"),
        ("html_instead_of_json", True, "not JSON"),
        ("drop_release_keys", {"tag_name"}, "malformed release (no 'tag_name')"),
        ("hostile_asset_ids", True, "malformed release asset ('id' is str, expected int)"),
        ("next_link", "FOREIGN", "the next page is elsewhere"),
        ("error_message", "Not\nFound\x1b[31m red", "Not\\nFound\\x1b[31m red"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 20 else None,
)
def test_a_hostile_or_broken_server_changes_nothing(
    github, published, trust_config, pristine, workspace, switch, value, message
):
    # dist holds an earlier verified copy: a failed download must leave it exactly as it was.
    first = verify_download(workspace, github, trust_config, pristine)
    assert first.returncode == 0, first.stderr
    dist_before, outside_before = tree(workspace.dist), workspace.outside_dist()
    if value == "FOREIGN":
        value = f"http://localhost:{github.root.rsplit(':', 1)[1]}/foreign-list?page=2"
    setattr(github, switch, value)
    if switch == "error_message":
        github.token = "another"  # every request with our token is now refused, with that message
    results = [
        verify_download(workspace, github, trust_config, pristine, debug=debug, GITHUB_TOKEN=GITHUB_TOKEN)
        for debug in (False, True)
    ]
    assert_one_line_failure(results[0], message)
    assert results[1].returncode == 1  # --debug: the traceback, but no token either
    assert tree(workspace.dist) == dist_before
    assert workspace.outside_dist() == outside_before
    assert not any(path.endswith("foreign-list") for _, path in github.requests)
    assert_no_secrets(results, workspace.root)


def test_a_download_that_cannot_be_written_is_the_local_file_s_error(
    github, published, trust_config, pristine, workspace
):
    # A full disk is not a network fault: it is named once, with the file, and not retried
    # (re-downloading cannot help) nor blamed on GitHub.  Here every write past half the ONNX's
    # size fails with EFBIG; the other assets are smaller and still land in staging.
    first = verify_download(workspace, github, trust_config, pristine)
    assert first.returncode == 0, first.stderr
    dist_before, outside_before = tree(workspace.dist), workspace.outside_dist()
    onnx_size = (published / ONNX).stat().st_size
    assert all(path.stat().st_size < onnx_size // 2 for path in published.iterdir() if path.name != ONNX)

    def onnx_downloads() -> int:
        return sum(1 for method, path in github.requests if method == "GET" and path.endswith(f"/{ONNX}"))

    fetched_before = onnx_downloads()
    result = verify_download(workspace, github, trust_config, pristine, file_size_limit=onnx_size // 2)
    line = assert_one_line_failure(result, f"{ONNX}: cannot write it (File too large)")
    assert "GitHub" not in line
    assert onnx_downloads() - fetched_before == 1  # not retried
    assert tree(workspace.dist) == dist_before
    assert workspace.outside_dist() == outside_before


def test_a_garbage_content_length_is_not_trusted_either_way(github, published, trust_config, pristine, workspace):
    # `Content-Length: abc` once crashed the download; the size that counts is the API's.
    github.download_mode = "bad_length"
    result = verify_download(workspace, github, trust_config, pristine)
    assert result.returncode == 0, result.stderr
    assert (workspace.dist / ONNX).read_bytes() == (published / ONNX).read_bytes()


def test_a_trickling_server_is_abandoned_at_the_deadline(github, published, trust_config, pristine, workspace):
    github.download_mode = "trickle"
    github.trickle_seconds = 0.2
    result = verify_download(workspace, github, trust_config, pristine, "--timeout", "1")
    assert_one_line_failure(result, "too slow or stalled", "--timeout")
    assert tree(workspace.dist) == {}
    assert sorted(tree(workspace.root)) == ["sibling", "sibling/keep.txt"]


def test_a_redirect_to_another_host_never_carries_the_token(github, published, trust_config, pristine, workspace):
    github.download_mode = "foreign_redirect"
    github.foreign_host = f"http://localhost:{github.root.rsplit(':', 1)[1]}"
    result = verify_download(workspace, github, trust_config, pristine, GITHUB_TOKEN=GITHUB_TOKEN)
    assert result.returncode == 0, result.stderr
    assert github.foreign_authorizations and set(github.foreign_authorizations) == {""}
    # ... while the API itself did get it (drafts are visible only with it).
    assert_no_secrets([result], workspace.root)


def test_a_failed_check_leaves_dist_as_it_was(github, published, trust_config, pristine, workspace):
    first = verify_download(workspace, github, trust_config, pristine)
    assert first.returncode == 0
    before = tree(workspace.dist)
    (release,) = github.releases.values()
    manifest = next(a for a in release.assets.values() if a.name == MANIFEST_BUNDLE)
    other = next(a for a in release.assets.values() if a.name == ONNX_BUNDLE)
    shutil.copyfile(other.path, manifest.path)  # the wrong bundle, with an honest digest
    manifest.size = other.size
    manifest.digest = other.digest
    result = verify_download(workspace, github, trust_config, pristine)
    assert_one_line_failure(result, f"{MANIFEST} signature")
    assert tree(workspace.dist) == before


def test_dist_that_is_a_file(github, published, trust_config, pristine, workspace):
    workspace.root.joinpath("dist").write_text("not a directory\n")
    requests_before = len(github.requests)
    result = verify_download(workspace, github, trust_config, pristine)
    assert_one_line_failure(result, "is a file, not a directory")
    assert workspace.dist.read_text() == "not a directory\n"
    assert len(github.requests) == requests_before  # refused before the first request


def test_plain_http_to_a_real_host_is_refused_before_any_request(trust_config, pristine, workspace):
    env = {**without_ambient_credentials(), **fixture_pin_env(pristine), "GITHUB_TOKEN": GITHUB_TOKEN}
    result = run_cli(
        "verify",
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--dist",
        str(workspace.dist),
        "--api-url",
        "http://api.example.com",
        "--trust-config",
        str(trust_config),
        cwd=workspace.root,
        env_override=env,
    )
    assert_one_line_failure(result, "plain HTTP is allowed only to 127.0.0.1 or localhost")
    assert_no_secrets([result])


def test_no_network_for_the_trust_root_is_explained(signed, pristine, workspace, tmp_path):
    # A proxy on a closed loopback port stands in for "no network": TUF's request goes to
    # 127.0.0.1 and is refused; empty data and cache directories mean no cached trust root.
    env = {
        **without_ambient_credentials(),
        **fixture_pin_env(pristine),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    common = ["verify", "--dist", str(signed), "--cert-identity", RELEASE_IDENTITY]
    online = run_cli(*common, cwd=workspace.root, env_override=env)
    assert_one_line_failure(online, "Sigstore trust root", "could not be fetched", "--offline", "--trust-config")
    # Offline, sigstore-python falls back on the trust root it ships; the loopback stack's
    # bundles do not verify against production's root, and that is said in one line too.
    offline = run_cli(*common, "--offline", cwd=workspace.root, env_override=env)
    assert_one_line_failure(offline, f"{ONNX} signature", "does not verify")


# -- attaching --------------------------------------------------------------------------------


def attach_cli(github, dist, trust_config, pristine, *extra: str, debug: bool = False):
    args = ["--debug"] if debug else []
    args += ["attach", "--dist", str(dist), "--repo", REPO, "--tag", TAG, "--trust-config", str(trust_config), *extra]
    return run_cli(*args, cwd=dist.parent, env_override=cli_env(github, pristine, GITHUB_TOKEN=GITHUB_TOKEN))


def remote_state(github) -> dict[tuple[int, bool], dict[str, bytes]]:
    return {
        (release.id, release.draft): {asset.name: github.asset_bytes(asset) for asset in release.assets.values()}
        for release in github.releases.values()
    }


@pytest.mark.parametrize("dry_run", [False, True], ids=["attach", "dry-run"])
def test_hostile_asset_ids_never_become_paths(github, published, trust_config, pristine, tmp_path, dry_run):
    github.no_digests = True  # attach must read the remote copies, which once meant a path per id
    github.hostile_asset_ids = True
    victim_dir = published.parent / "some" / "dir"
    victim_dir.mkdir(parents=True)
    (victim_dir / "VICTIM.txt").write_text("precious\n")
    before_outside = tree(published.parent)
    state = remote_state(github)
    result = attach_cli(github, published, trust_config, pristine, *(["--dry-run"] if dry_run else []))
    assert_one_line_failure(result, "malformed release asset", "'id' is str")
    assert HOSTILE_ASSET_ID not in result.stderr or "VICTIM" not in result.stderr
    assert (victim_dir / "VICTIM.txt").read_text() == "precious\n"
    assert tree(published.parent) == before_outside
    assert remote_state(github) == state


def test_replace_without_server_digests_verifies_by_download(github, published, instance, pins, tmp_path):
    github.no_digests = True
    # An honest server without digests: attach verifies every upload by downloading it again.
    again = attach_lib(github, published, instance, pins)
    assert {item.action for item in again.plan} == {"skip"}
    (release,) = github.releases.values()
    assert all(asset.digest for asset in release.assets.values())  # the server knows; the API hides it
    assert any(path.startswith("/download/") for _, path in github.requests)


def test_replace_with_corrupted_uploads_and_no_digests_changes_nothing_published(
    github, published, instance, pins, tmp_path, pristine, sigstore_stack
):
    from tests.release.test_github_release import _other_signed_dist, audited_pins_of

    other = _other_signed_dist(tmp_path, pristine, instance, sigstore_stack)
    state = remote_state(github)
    github.no_digests = True
    github.corrupt_uploads = True
    with pytest.raises(GitHubError, match=r"keeps the upload with sha256 .* nothing published was changed"):
        attach_lib(github, other, instance, audited_pins_of(other), replace=True)
    assert remote_state(github) == state  # the published release's good assets are all still there


def test_a_demo_build_is_refused_by_attach_and_flagged_by_verify(
    github, dist, instance, pins, sigstore_stack, trust_config, pristine, tmp_path
):
    from mirror.manifest_step import run_manifest
    from mirror.pipeline import run_export
    from release.signing import sign_release
    from tests.helpers import settings_for

    settings = settings_for(pristine, tmp_path / "demo", pin=pristine.pin)  # the fixture's own pins: a demo build
    run_manifest(settings, export=run_export(settings))
    sign_release(settings.dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    refused = attach_cli(github, settings.dist, trust_config, pristine)
    assert_one_line_failure(refused, "a demo build, not the audited model", "--allow-unpinned")
    assert github.mutating_requests() == []
    allowed = attach_cli(github, settings.dist, trust_config, pristine, "--allow-unpinned")
    assert allowed.returncode == 0, allowed.stderr
    (release,) = github.releases.values()
    assert release.name.startswith("DEMO BUILD, NOT THE AUDITED MODEL")
    workspace = Workspace(tmp_path / "operator")
    workspace.root.mkdir()
    strict = verify_download(workspace, github, trust_config, pristine)
    assert_one_line_failure(strict, "audited pins: build_kind is 'demo'", "--allow-unpinned")
    assert tree(workspace.dist) == {}
    lenient = verify_download(workspace, github, trust_config, pristine, "--allow-unpinned")
    assert lenient.returncode == 0, lenient.stderr
    assert (
        "WARN  audited pins" in lenient.stdout
        and "passed, WITH WARNINGS: audited pins (see WARN above)" in lenient.stdout
    )


def test_a_lost_publish_race_converges_on_the_winner(github, signed, instance, pins):
    github.fail("publish_race")
    result = attach_lib(github, signed, instance, pins)
    assert github.faults["publish_race"] == 0
    (winner,) = github.releases.values()  # our draft is gone; one published release remains
    assert not winner.draft and not result.published
    assert {item.action for item in result.plan} == {"skip"}


def test_concurrent_attaches_leave_one_published_release(github, signed, instance, pins, tmp_path):
    def run(errors: list[BaseException]) -> None:
        try:
            attach_lib(github, signed, instance, pins)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    for round_number in range(3):
        errors: list[BaseException] = []
        threads = [threading.Thread(target=run, args=(errors,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == [], errors
        releases = list(github.releases.values())
        assert len(releases) == 1 and not releases[0].draft, (round_number, releases)
        names = sorted(asset.name for asset in releases[0].assets.values())
        assert len(names) == len(set(names)) == 8
        github.releases.clear()


def test_pagination_to_another_host_is_not_followed(github, signed, instance, pins):
    github.next_link = f"http://localhost:{github.root.rsplit(':', 1)[1]}/foreign-list?page=2"
    with pytest.raises(GitHubError, match="the next page is elsewhere"):
        attach_lib(github, signed, instance, pins)
    assert not any(path == "/foreign-list" for _, path in github.requests)
    assert github.releases == {}


# -- signing ----------------------------------------------------------------------------------


def test_a_token_from_an_issuer_fulcio_refuses(dist, trust_config, sigstore_stack, workspace):
    sigstore_stack.rejected_issuers.add("https://issuer.example")
    token = sigstore_stack.token("someone@example.com", issuer="https://issuer.example")
    before = tree(dist)
    env = {**without_ambient_credentials(), "SIGSTORE_ID_TOKEN": token}
    # Signing as oneself on purpose: verify is told to expect that identity, so sign asks Fulcio.
    on_purpose = ("--cert-identity", "someone@example.com", "--cert-oidc-issuer", "https://issuer.example")
    args = ("sign", *on_purpose, "--dist", str(dist), "--trust-config", str(trust_config))
    result = run_cli(*args, env_override=env)
    assert_one_line_failure(result, "refused to certify the identity someone@example.com", "https://issuer.example")
    assert tree(dist) == before
    assert_no_secrets([result], dist, secrets=[token])


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_identity_token_never_shows_even_under_debug(dist, trust_config, sigstore_stack, debug, tmp_path):
    token = sigstore_stack.token(RELEASE_IDENTITY)
    args = ["--debug"] if debug else []
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    results = [
        run_cli(
            *args,
            "sign",
            *FOR_RELEASE,
            "--dist",
            str(dist),
            "--trust-config",
            str(trust_config),
            *how,
            env_override=without_ambient_credentials(),
        )
        for how in (["--identity-token", token], ["--identity-token-file", str(token_file)])
    ]
    for result in results:
        assert result.returncode == 0, result.stderr
    if debug:
        assert "[REDACTED]" in results[0].stderr  # Invoke logged the command line, redacted
    assert_no_secrets(results, dist, secrets=[token, *token.split(".")[1:]])


def test_an_expired_identity_token_says_so(dist, trust_config, sigstore_stack):
    token = sigstore_stack.token(RELEASE_IDENTITY, lifetime=-600)
    env = {**without_ambient_credentials(), "SIGSTORE_ID_TOKEN": token}
    result = run_cli("sign", *FOR_RELEASE, "--dist", str(dist), "--trust-config", str(trust_config), env_override=env)
    line = assert_one_line_failure(result, "the identity token expired at", "get a fresh one")
    assert "malformed" not in line
    assert_no_secrets([result], dist, secrets=[token])


# -- exporting: bad input, one line, nothing new in dist ---------------------------------------


def _plain_text_checkpoint(checkout, _dist):
    checkout.checkpoint.write_text("this is not a checkpoint\n" * 10)


def _truncated_checkpoint(checkout, _dist):
    checkout.checkpoint.write_bytes(checkout.checkpoint.read_bytes()[:1000])


def _dist_is_a_file(_checkout, dist):
    dist.write_text("a file where dist should be\n")


def _dist_cannot_be_made(_checkout, _dist):
    pass  # the dist below is under /proc, where nothing can be created, even by root


@pytest.mark.parametrize(
    ("spoil", "dist_name", "message"),
    [
        (_plain_text_checkpoint, "dist", "not a readable PyTorch checkpoint"),
        (_truncated_checkpoint, "dist", "not a readable PyTorch checkpoint, truncated"),
        (_dist_is_a_file, "dist", "is a file, not a directory"),
        (_dist_cannot_be_made, "/proc/u2netp-mirror-dist", "cannot write it"),
    ],
    ids=["plain-text-checkpoint", "truncated-checkpoint", "dist-is-a-file", "unwritable-dist"],
)
def test_export_bad_input_is_one_line(checkout, workspace, spoil, dist_name, message):
    dist = workspace.root / dist_name
    spoil(checkout, dist)
    before = tree(workspace.root)
    args = ("export", "--upstream", str(checkout.root), "--dist", str(dist))
    result = run_cli(*args, cwd=workspace.root, env=fixture_pin_env(checkout))
    line = assert_one_line_failure(result, message)
    if "checkpoint" in message:  # torch's long message is cut at a whole word: "… word …)"
        assert line.endswith(")") and len(line) < 400
    assert tree(workspace.root) == before


def test_tolerance_must_be_a_number(checkout, workspace):
    for value, message in (("abc", "--tolerance 'abc': not a number"), ("-1", "must be a finite number > 0")):
        result = run_cli("export", "--upstream", str(checkout.root), "--tolerance", value, cwd=workspace.root)
        assert_one_line_failure(result, message, code=2)  # a usage error
    assert sorted(tree(workspace.root)) == ["sibling", "sibling/keep.txt"]


def test_a_checkpoint_name_that_is_not_utf8(checkout, workspace):
    name = os.fsdecode(b"u2netp-\xff.pth")
    odd = checkout.root / "saved_models" / "u2netp" / name
    shutil.copyfile(checkout.checkpoint, odd)
    env = fixture_pin_env(checkout)
    common = ("--upstream", str(checkout.root), "--checkpoint", str(odd), "--dist", str(workspace.dist))
    exported = run_cli("export", *common, cwd=workspace.root, env=env)
    assert exported.returncode == 0, exported.stderr
    before = tree(workspace.dist)
    result = run_cli("manifest", *common, cwd=workspace.root, env=env)
    assert_one_line_failure(result, "is not valid UTF-8", "rename the file")
    assert tree(workspace.dist) == before


def test_a_failed_manifest_leaves_no_licence_copy(checkout, workspace):
    env = fixture_pin_env(checkout)
    common = ("--upstream", str(checkout.root), "--dist", str(workspace.dist))
    assert run_cli("export", *common, cwd=workspace.root, env=env).returncode == 0
    # A directory where the manifest goes: writing it fails after the licence copy is ready.
    (workspace.dist / MANIFEST).mkdir()
    before = tree(workspace.dist)
    result = run_cli("manifest", *common, cwd=workspace.root, env=env)
    assert_one_line_failure(result, f"{MANIFEST}: cannot write it")
    assert tree(workspace.dist) == before
    assert not (workspace.dist / LICENCE).exists()


# -- the pieces, in process ---------------------------------------------------------------------


def test_every_server_value_is_checked_before_use():
    from release.remote import RemoteAsset, RemoteRelease

    good = {"id": 7, "name": "a.onnx", "state": "uploaded", "size": 3, "digest": "sha256:" + "a" * 64}
    assert RemoteAsset.parse(good).sha256 == "a" * 64
    for bad in (
        {**good, "id": "7"},
        {**good, "id": True},
        {**good, "id": -1},
        {**good, "name": "../x"},
        {**good, "name": "a\nb"},
        {**good, "size": 3 << 31},
        {**good, "size": "3"},
        {**good, "digest": "md5:" + "a" * 32},
        {**good, "digest": "sha256:" + "a" * 64 + "\n"},
        {**good, "state": "Uploaded!"},
        {key: value for key, value in good.items() if key != "name"},
        [good],
    ):
        with pytest.raises(GitHubError, match="malformed release asset"):
            RemoteAsset.parse(bad)
    release = {
        "id": 1,
        "tag_name": TAG,
        "draft": False,
        "html_url": "https://github.com/example/u2netp-mirror/releases/tag/x",
        "upload_url": "https://uploads.github.com/repos/example/u2netp-mirror/releases/1/assets{?name,label}",
    }
    assert RemoteRelease.parse(release).upload_url.endswith("/releases/1/assets")
    for bad in (
        {**release, "upload_url": "file:///etc/passwd"},
        {**release, "upload_url": "http://uploads.github.com/x"},
        {**release, "html_url": "https://user:pw@github.com/"},
        {**release, "draft": "false"},
        {**release, "tag_name": "v1\x1b[31m"},
    ):
        with pytest.raises(GitHubError):
            RemoteRelease.parse(bad)


def test_the_token_goes_to_the_api_host_only():
    client = GitHubClient(api_url="https://api.github.com", repo=REPO, token=GITHUB_TOKEN)
    assert "Authorization" in client._headers("https://api.github.com/repos/x", None)
    assert "Authorization" in client._headers("https://uploads.github.com/repos/x", None)
    for elsewhere in (
        "https://objects.githubusercontent.com/x",
        "http://api.github.com/x",
        "https://api.github.com:8443/x",
        "https://api.github.com.evil.example/x",
    ):
        assert "Authorization" not in client._headers(elsewhere, None), elsewhere
    enterprise = GitHubClient(api_url="https://ghe.example/api/v3", repo=REPO, token=GITHUB_TOKEN)
    assert "Authorization" not in enterprise._headers("https://uploads.github.com/x", None)
    with pytest.raises(GitHubError, match="plain HTTP"):
        GitHubClient(api_url="http://ghe.example/api/v3", repo=REPO)
    assert repr(client).count(GITHUB_TOKEN) == 0


def test_server_text_is_one_line_and_capped():
    from release.redact import printable

    shown = printable("line one\nline two\x1b[31m red\u2028" + "x" * 500, 80)
    assert "\n" not in shown and "\x1b" not in shown and "\u2028" not in shown
    assert "\\n" in shown and "\\x1b" in shown and len(shown) == 80 and shown.endswith("…")


def test_a_trickle_is_cut_by_the_deadline_on_an_injected_clock(github, published):
    """The deadline check itself, without waiting: the clock jumps a minute per read."""
    ticks = iter(range(0, 10_000, 60))
    client = GitHubClient(
        api_url=github.url,
        repo=REPO,
        retry=RetryPolicy(attempts=1, timeout=1.0),
        clock=Clock(monotonic=lambda: float(next(ticks))),
    )
    github.download_mode = "trickle"
    github.trickle_seconds = 0.0
    release = client.find_release(TAG)
    asset = next(a for a in client.list_assets(release) if a.name == ONNX)
    with pytest.raises(GitHubError, match="too slow or stalled"):
        client.asset_sha256(asset)


def test_digests_in_the_manifest_are_what_attach_uploaded(github, published):
    (release,) = github.releases.values()
    manifest = json.loads((published / MANIFEST).read_text())
    onnx = next(a for a in release.assets.values() if a.name == ONNX)
    assert onnx.digest == f"sha256:{manifest['outputs']['onnx_sha256']}"
    assert hashlib.sha256(github.asset_bytes(onnx)).hexdigest() == manifest["outputs"]["onnx_sha256"]
