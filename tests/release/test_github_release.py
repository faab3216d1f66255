"""attach / release / download-then-verify against a loopback GitHub Releases API, faults included."""

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from mirror.errors import MirrorError
from mirror.reporting import Lines
from release.attach import attach_release
from release.checks import ExpectedSigner, verify_release
from release.download import download_release
from release.errors import AttachConflict, GitHubError, VerificationFailed
from release.github import Clock, GitHubClient, RetryPolicy
from release.signing import sign_release
from release.target import ReleaseTarget
from tests.conftest import GITHUB_TOKEN
from tests.helpers import (
    GITHUB_ISSUER,
    LICENCE,
    MANIFEST,
    MANIFEST_BUNDLE,
    MODEL_CARD,
    OMS,
    ONNX,
    ONNX_BUNDLE,
    PROVENANCE,
    RELEASE_IDENTITY,
    files_in,
    fixture_pin_env,
    run_cli,
    signer_for,
    without_ambient_credentials,
)

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-v1.0.0"
EXPECTED = ExpectedSigner(issuer=GITHUB_ISSUER, identity=RELEASE_IDENTITY)
ASSETS = {
    MANIFEST,
    MANIFEST_BUNDLE,
    ONNX_BUNDLE,
    PROVENANCE,
    LICENCE,
    ONNX,
    OMS,
    MODEL_CARD,
}
FAST = RetryPolicy(attempts=5, backoff=0.01, max_wait=2.0, timeout=30.0)


def target(github, token=GITHUB_TOKEN):
    return ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=token)


# Waits (Retry-After: 1 from the rate-limit faults, backoff) happen on this clock, not the wall's.
NO_WAIT = Clock(sleep=lambda _: None)


def client(github, token=GITHUB_TOKEN):
    return GitHubClient(api_url=github.url, repo=REPO, token=token, retry=FAST, clock=NO_WAIT)


def attach(github, dist, instance, **options):
    lines = []
    result = attach_release(
        dist,
        target(github),
        EXPECTED,
        instance,
        client(github),
        pins=audited_pins_of(dist),
        reporter=Lines(lines.append),
        **options,
    )
    return result, lines


def audited_pins_of(dist):
    """The pins a dist's manifest was exported against: what a verifier configured with them holds it to."""
    from mirror.settings import UpstreamPin

    upstream = json.loads((dist / MANIFEST).read_text())["upstream"]
    return UpstreamPin.from_config({**upstream["pin"], "repo_url": upstream["repo"]})


def assert_release_matches(github, dist, published=True):
    (release,) = github.releases.values()  # exactly one: no duplicate drafts
    assert release.draft is not published
    names = [asset.name for asset in release.assets.values()]
    assert sorted(names) == sorted(ASSETS)  # no duplicates, no leftovers
    for asset in release.assets.values():
        local = (dist / asset.name).read_bytes()
        assert asset.state == "uploaded"
        assert asset.digest == f"sha256:{hashlib.sha256(local).hexdigest()}"
        assert github.asset_bytes(asset) == local
    return release


def test_first_release_uploads_everything_and_publishes(github, signed, instance):
    result, _ = attach(github, signed, instance)
    release = assert_release_matches(github, signed)
    assert result.created and result.published
    assert {item.action for item in result.plan} == {"upload"}
    manifest = json.loads((signed / MANIFEST).read_text())
    assert manifest["upstream"]["commit"] in release.body
    assert f"u2netp-mirror verify --repo {REPO} --tag {TAG}" in release.body
    assert "Apache" in release.body and manifest["outputs"]["onnx_sha256"] in release.body
    assert github.header_problems == []
    # Published only after every upload: the PATCH publishing it is the last mutation.
    assert github.mutating_requests()[-1][0] == "PATCH"
    content_types = {a.name: a.content_type for a in release.assets.values()}
    assert content_types[ONNX] == "application/octet-stream"
    assert content_types[MANIFEST] == "application/json"


def test_rerun_changes_nothing(github, signed, instance):
    attach(github, signed, instance)
    before = len(github.requests)
    result, _ = attach(github, signed, instance)
    assert {item.action for item in result.plan} == {"skip"}
    assert [r for r in github.requests[before:] if r[0] != "GET"] == []
    assert_release_matches(github, signed)


def test_draft_option_leaves_a_draft_and_a_later_run_publishes(github, signed, instance):
    attach(github, signed, instance, draft=True)
    assert_release_matches(github, signed, published=False)
    result, _ = attach(github, signed, instance)
    assert result.published
    assert_release_matches(github, signed)


@pytest.mark.parametrize(
    "fault",
    ["create_500", "upload_502_starter", "upload_reset", "rate_limit_429", "secondary_403", "api_500", "upload_race"],
)
def test_faults_converge_without_duplicates_or_leftovers(github, signed, instance, fault):
    github.fail(fault, times=2 if fault in ("upload_502_starter", "upload_reset") else 1)
    attach(github, signed, instance)
    assert_release_matches(github, signed)
    assert github.faults[fault] == 0  # the fault really happened


def test_rerun_after_an_interrupted_run_converges(github, signed, instance):
    github.fail("upload_502_starter", times=FAST.attempts)  # every attempt at the first asset fails
    with pytest.raises(GitHubError, match="still failing"):
        attach(github, signed, instance)
    (release,) = github.releases.values()
    assert release.draft  # never published half-done
    result, _ = attach(github, signed, instance)
    assert_release_matches(github, signed)
    assert result.plan[0].action == "upload"


def test_leftover_starter_assets_are_removed_first(github, signed, instance):
    github.fail("upload_502_starter", times=FAST.attempts)
    with pytest.raises(GitHubError):
        attach(github, signed, instance)
    (release,) = github.releases.values()
    assert [a.state for a in release.assets.values()] == ["starter"]
    _, lines = attach(github, signed, instance, dry_run=True)
    assert any("after removing 1 failed upload leftover" in line for line in lines)
    attach(github, signed, instance)
    assert_release_matches(github, signed)


def _other_signed_dist(tmp_path, pristine, instance, sigstore_stack):
    """An audited build of another fixture (other weights, and upstream maps they reproduce): other
    ONNX, other manifest."""
    from mirror.fixture import build_fixture
    from mirror.manifest_step import run_manifest
    from mirror.pipeline import run_export
    from tests.helpers import settings_for

    other = build_fixture(tmp_path / "other-upstream" / "U-2-Net", seed=5)
    settings = settings_for(other, tmp_path / "other-dist")
    run_manifest(settings, export=run_export(settings))
    sign_release(settings.dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    return settings.dist


def test_conflict_refuses_and_leaves_the_remote_unchanged(github, signed, instance, tmp_path, pristine, sigstore_stack):
    attach(github, signed, instance)
    other = _other_signed_dist(tmp_path, pristine, instance, sigstore_stack)
    mutations = len(github.mutating_requests())
    with pytest.raises(AttachConflict, match=r"nothing was changed.*--replace") as caught:
        attach(github, other, instance)
    assert ONNX in str(caught.value)
    assert len(github.mutating_requests()) == mutations
    assert_release_matches(github, signed)


def test_replace_uploads_first_and_never_leaves_the_release_without_the_asset(
    github, signed, instance, tmp_path, pristine, sigstore_stack
):
    attach(github, signed, instance)
    other = _other_signed_dist(tmp_path, pristine, instance, sigstore_stack)
    start = len(github.requests)
    attach(github, other, instance, replace=True)
    assert_release_matches(github, other)
    # For each replaced asset: upload under a staging name, then delete the old, then rename.
    log = github.requests[start:]
    uploads = [i for i, (method, path) in enumerate(log) if method == "POST" and "/uploads/" in path]
    deletes = [i for i, (method, _) in enumerate(log) if method == "DELETE"]
    renames = [i for i, (method, path) in enumerate(log) if method == "PATCH" and "/assets/" in path]
    assert len(uploads) == len(deletes) == len(renames) >= 2
    assert all(u < d < r for u, d, r in zip(uploads, deletes, renames, strict=True))


def test_replace_interrupted_after_the_delete_is_finished_by_a_rerun(
    github, signed, instance, tmp_path, pristine, sigstore_stack
):
    attach(github, signed, instance)
    other = _other_signed_dist(tmp_path, pristine, instance, sigstore_stack)
    original_rename = GitHubClient.rename_asset

    def failing_rename(self, asset_id, name):
        raise GitHubError("simulated crash before the rename")

    GitHubClient.rename_asset = failing_rename
    try:
        with pytest.raises(GitHubError, match="simulated crash"):
            attach(github, other, instance, replace=True)
    finally:
        GitHubClient.rename_asset = original_rename
    names = {a.name for a in next(iter(github.releases.values())).assets.values()}
    assert any(".new-" in name for name in names)
    result, _ = attach(github, other, instance, replace=True)
    assert "rename" in {item.action for item in result.plan}
    assert_release_matches(github, other)


def test_fresh_signatures_of_the_same_files_are_not_a_conflict(github, signed, instance, sigstore_stack):
    attach(github, signed, instance)
    for bundle in signed.glob("*.sigstore.json"):
        bundle.unlink()  # a re-run on a fresh runner signs again: other bytes, same meaning
    sign_release(signed, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    result, _ = attach(github, signed, instance)
    assert {item.action for item in result.plan} == {"skip"}


def test_dry_run_sends_no_mutating_request(github, signed, instance):
    result, lines = attach(github, signed, instance, dry_run=True)
    assert github.mutating_requests() == []
    assert any("create draft release" in line for line in lines)
    assert sum("plan: upload" in line for line in lines) == len(ASSETS)
    assert not result.published


def test_dry_run_needs_no_token(github, signed, instance):
    attach(github, signed, instance)
    mutations = len(github.mutating_requests())
    anonymous = client(github, token=None)
    lines: list[str] = []
    result = attach_release(
        signed,
        target(github, token=None),
        EXPECTED,
        instance,
        anonymous,
        pins=audited_pins_of(signed),
        dry_run=True,
        reporter=Lines(lines.append),
    )
    assert {item.action for item in result.plan} == {"skip"}  # the published release, read anonymously
    assert len(github.mutating_requests()) == mutations


def test_an_unreachable_github_is_named_and_never_silent(signed, trust_config, pristine, tmp_path):
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        **without_ambient_credentials(),
        **fixture_pin_env(pristine),
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "INVOKE_U2NETP_GITHUB_ATTEMPTS": "2",
        "INVOKE_U2NETP_GITHUB_BACKOFF_SECONDS": "0.01",
    }
    args = ("attach", "--dist", str(signed), "--repo", REPO, "--tag", TAG, "--trust-config", str(trust_config))
    result = run_cli(*args, "--api-url", f"http://127.0.0.1:{port}/api/v3", env_override=env)
    assert result.returncode == 1
    assert "retry 1 of 1" in result.stdout and "(127.0.0.1)" in result.stdout
    (line,) = result.stderr.splitlines()
    assert "still failing after 2 attempts" in line and "host 127.0.0.1" in line


def test_no_token_means_no_request(github, signed, instance):
    with pytest.raises(MirrorError, match="no GitHub token"):
        attach_release(
            signed,
            target(github, token=None),
            EXPECTED,
            instance,
            client(github, token=None),
            pins=audited_pins_of(signed),
        )
    assert github.requests == []


@pytest.mark.parametrize("repo", ["", "example", "a/b/c", "../x", "owner/..", "own er/x"])
def test_malformed_repo_is_refused_before_any_request(github, repo):
    with pytest.raises(MirrorError, match="expected OWNER/NAME"):
        GitHubClient(api_url=github.url, repo=repo, token=GITHUB_TOKEN)
    assert github.requests == []


def test_forbidden_is_explained(github, signed, instance):
    bad = ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token="wrong")
    with pytest.raises(GitHubError, match=r"HTTP 401.*GITHUB_TOKEN"):
        attach_release(
            signed, bad, EXPECTED, instance, GitHubClient(github.url, REPO, "wrong", FAST), pins=audited_pins_of(signed)
        )


def test_missing_contents_write_permission_is_explained(github, signed, instance):
    github.fail("forbidden_403")
    with pytest.raises(GitHubError, match=r"HTTP 403 .*contents: write"):
        attach(github, signed, instance)
    assert github.releases == {}


def test_waits_honour_retry_after_and_rate_limit_reset():
    import requests

    def response(headers):
        answer = requests.Response()
        answer.status_code = 429
        answer.headers.update(headers)
        return answer

    clock = Clock(now=lambda: 1_000_000.0)
    github_client = GitHubClient(
        api_url="http://127.0.0.1:9", repo=REPO, retry=RetryPolicy(backoff=1.0, max_wait=30), clock=clock
    )
    from release.transport import wait_for

    def wait(answer, attempt):
        return wait_for(answer, attempt, github_client.retry, github_client.clock)

    assert wait(response({"Retry-After": "7"}), 0) == 7
    waited = wait(response({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000010"}), 0)
    assert waited == 11
    assert wait(response({"Retry-After": "3600"}), 0) == 30  # bounded
    assert wait(response({}), 3) == 8  # exponential backoff


def test_immutable_published_release_is_explained(github, signed, instance, tmp_path, pristine, sigstore_stack):
    github.immutable_on_publish = True
    attach(github, signed, instance)
    other = _other_signed_dist(tmp_path, pristine, instance, sigstore_stack)
    with pytest.raises(GitHubError, match="immutable"):
        attach(github, other, instance, replace=True)


def test_unsigned_or_tampered_dist_is_refused_before_any_request(github, signed, instance):
    (signed / ONNX_BUNDLE).unlink()
    with pytest.raises(MirrorError, match="missing"):
        attach(github, signed, instance)
    assert github.requests == []


def test_onnx_tracked_by_git_is_refused(github, signed, instance):
    subprocess.run(["git", "init", "-q", str(signed)], check=True)
    subprocess.run(["git", "-C", str(signed), "add", "-f", ONNX], check=True)
    with pytest.raises(MirrorError, match="tracked by git"):
        attach(github, signed, instance)
    assert github.requests == []


def test_download_then_verify_passes_and_catches_a_tampered_remote(github, signed, instance, tmp_path):
    attach(github, signed, instance)
    fetched = tmp_path / "fetched"
    anonymous = GitHubClient(api_url=github.url, repo=REPO, token=None, retry=FAST)
    download_release(target(github, token=None), fetched, anonymous)
    verify_release(fetched, EXPECTED, instance, audited_pins_of(fetched))
    assert ("GET", "/api/v3/repos/example/u2netp-mirror/releases") in github.requests
    assert any(path.startswith("/download/") for _, path in github.requests)  # followed the redirect

    (release,) = github.releases.values()
    onnx = next(a for a in release.assets.values() if a.name == ONNX)
    data = bytearray(onnx.path.read_bytes())
    data[100] ^= 0xFF
    onnx.path.write_bytes(bytes(data))
    # The bytes changed under the API's digest: the download itself refuses them.
    with pytest.raises(GitHubError, match=r"the API announced .*refusing them"):
        download_release(target(github, token=None), tmp_path / "refused", anonymous)
    assert files_in(tmp_path / "refused") == []
    # A server that rewrites the digest too: the download passes, the signature does not.
    onnx.digest = f"sha256:{hashlib.sha256(bytes(data)).hexdigest()}"
    tampered = tmp_path / "tampered"
    download_release(target(github, token=None), tampered, anonymous)
    with pytest.raises(VerificationFailed, match=re.escape(f"{ONNX} signature")):
        verify_release(tampered, EXPECTED, instance, audited_pins_of(fetched))


@pytest.mark.slow
def test_command_line_attach_download_and_verify_never_show_the_token(github, signed, trust_config, tmp_path, pristine):
    env = {
        **without_ambient_credentials(),
        **fixture_pin_env(pristine),
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_API_URL": github.url,
        "INVOKE_U2NETP_GITHUB_BACKOFF_SECONDS": "0.01",
        "INVOKE_U2NETP_GITHUB_MAX_WAIT_SECONDS": "0.01",  # the 429's Retry-After: 1, capped
    }
    github.fail("rate_limit_429")
    attached = run_cli(
        "attach",
        "--dist",
        str(signed),
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--trust-config",
        str(trust_config),
        env_override=env,
    )
    assert attached.returncode == 0, attached.stderr
    assert "published" in attached.stdout and f"upload {ONNX}:" in attached.stdout
    dry = run_cli(
        "--dry",
        "attach",
        "--dist",
        str(signed),
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--trust-config",
        str(trust_config),
        env_override=env,
    )
    assert dry.returncode == 0 and "dry run" in dry.stdout
    fetched = tmp_path / "fetched"
    verified = run_cli(
        "verify",
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--dist",
        str(fetched),
        "--trust-config",
        str(trust_config),
        env_override={k: v for k, v in env.items() if k != "GITHUB_TOKEN"},
    )
    assert verified.returncode == 0, verified.stderr
    assert f"download {ONNX}:" in verified.stdout and "all checks passed" in verified.stdout
    for result in (attached, dry, verified):
        assert GITHUB_TOKEN not in result.stdout + result.stderr
    for path in list(signed.rglob("*")) + list(fetched.rglob("*")):
        assert GITHUB_TOKEN.encode() not in path.read_bytes()


def test_command_line_without_token_makes_no_request(github, signed, trust_config):
    env = {**without_ambient_credentials(), "GITHUB_API_URL": github.url}
    env.pop("GITHUB_TOKEN", None)
    env.pop("GH_TOKEN", None)
    result = run_cli(
        "attach",
        "--dist",
        str(signed),
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--trust-config",
        str(trust_config),
        env_override=env,
    )
    assert result.returncode == 1 and "no GitHub token" in result.stderr
    assert github.requests == []


_UPLOAD_PROBE = """
import sys
from pathlib import Path
from release.github import GitHubClient, RetryPolicy


def high_water_kib():
    # VmHWM is this process's own peak RSS; ru_maxrss would include the parent's at fork time.
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))


client = GitHubClient(api_url=sys.argv[1], repo=sys.argv[2], token=sys.argv[3], retry=RetryPolicy(timeout=300))
release = client.find_release("u2netp-mirror-v1.0.0")
path = Path(sys.argv[6])
before = high_water_kib()
if sys.argv[5] == "upload":
    asset = client.upload_asset(release, path, "big.bin", "application/octet-stream", lambda: None)
    assert asset.size == path.stat().st_size, asset
elif sys.argv[5] == "read-whole-file":  # the control: what a non-streaming upload would cost
    data = path.read_bytes()
print("GROWTH_KIB", high_water_kib() - before)
"""


@pytest.mark.slow
def test_a_300_mb_asset_uploads_with_flat_memory(github, tmp_path):
    github.add_release(TAG)
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:  # 300 MB of incompressible data, written in pieces
        block = os.urandom(1 << 20)
        for _ in range(300):
            stream.write(block)
    args = [github.url, REPO, GITHUB_TOKEN, "-"]
    growth = {}
    for mode in ("upload", "read-whole-file"):
        result = subprocess.run(
            [sys.executable, "-c", _UPLOAD_PROBE, *args, mode, str(big)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        growth[mode] = int(result.stdout.split("GROWTH_KIB")[1])
    assert growth["upload"] < 64 * 1024, growth
    assert growth["read-whole-file"] > 250 * 1024, growth  # the measurement does see a whole-file read
    (asset,) = next(iter(github.releases.values())).assets.values()
    assert asset.size == 300 << 20 and asset.state == "uploaded"


@pytest.mark.slow
def test_invoke_release_end_to_end_stops_at_a_failure_and_a_rerun_converges(
    github, checkout, trust_config, sigstore_stack, tmp_path
):
    from tests.helpers import fixture_pin_env

    env = {
        **without_ambient_credentials(),
        **fixture_pin_env(checkout),
        "SIGSTORE_ID_TOKEN": sigstore_stack.token(RELEASE_IDENTITY),
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_API_URL": github.url,
        "INVOKE_U2NETP_GITHUB_ATTEMPTS": "2",
        "INVOKE_U2NETP_GITHUB_BACKOFF_SECONDS": "0.01",
    }
    args = (
        "release",
        "--upstream",
        str(checkout.root),
        "--dist",
        "dist",
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--trust-config",
        str(trust_config),
    )
    github.fail("api_500", times=1000)  # GitHub is down
    failed = run_cli(*args, cwd=tmp_path, env_override=env)
    assert failed.returncode == 1 and "still failing after 2 attempts" in failed.stderr
    dist = tmp_path / "dist"
    kept = {p.name: p.read_bytes() for p in dist.iterdir()}
    assert set(kept) == ASSETS  # export, manifest and sign all done and kept

    github.faults.clear()
    github.requests.clear()
    released = run_cli(*args, cwd=tmp_path, env_override=env)
    assert released.returncode == 0, released.stderr
    assert "release: https://github.invalid/" in released.stdout and "(published)" in released.stdout
    assert f"{ONNX_BUNDLE}: kept (already signed)" in released.stdout
    assert {p.name: p.read_bytes() for p in dist.iterdir()} == kept  # deterministic re-export
    assert_release_matches(github, dist)

    github.requests.clear()
    again = run_cli(*args, cwd=tmp_path, env_override=env)
    assert again.returncode == 0, again.stderr
    assert github.mutating_requests() == []
    for result in (failed, released, again):
        assert GITHUB_TOKEN not in result.stdout + result.stderr
        assert env["SIGSTORE_ID_TOKEN"] not in result.stdout + result.stderr


def test_5xx_retries_back_off_exponentially_and_429_waits_as_told(github):
    slept = []
    fast = GitHubClient(api_url=github.url, repo=REPO, token=GITHUB_TOKEN, retry=FAST, clock=Clock(sleep=slept.append))
    github.fail("api_500", times=3)
    assert fast.find_release(TAG) is None
    assert slept == [0.01, 0.02, 0.04]
    slept.clear()
    github.fail("rate_limit_429")
    fast.find_release(TAG)
    assert slept == [1.0]  # Retry-After: 1
