"""What an operator meets: the `u2netp-mirror` console script on the base install.

These tests need no torch, onnx or onnxruntime: CI runs them a second time in a virtual
environment with only `pip install ".[test]"` (no [export] extra), where torch is not installed
at all, so "verify needs no torch" is shown by an install, not by a probe (see .ci/run).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror import __version__
from release.attach import attach_release
from release.checks import ExpectedSigner
from release.github import Clock, GitHubClient
from release.signing import sign_release
from release.target import ReleaseTarget
from tests.conftest import GITHUB_TOKEN
from tests.helpers import (
    GITHUB_ISSUER,
    ONNX,
    RELEASE_IDENTITY,
    ROOT,
    files_in,
    pins_file,
    signer_for,
    without_ambient_credentials,
)
from tests.release.synthetic import PINS, write_release

pytestmark = pytest.mark.operator

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-v1.0.0"
SCRIPT = Path(sys.executable).with_name("u2netp-mirror")


def console(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env or without_ambient_credentials(),
        timeout=120,
        check=False,
    )


@pytest.fixture
def published(tmp_path, github, instance, sigstore_stack):
    """A synthetic release, signed by the release workflow's identity and published on the loopback GitHub."""
    dist = tmp_path / "maintainer"
    write_release(dist)
    sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    client = GitHubClient(api_url=github.url, repo=REPO, token=GITHUB_TOKEN, clock=Clock(sleep=lambda _: None))
    attach_release(
        dist,
        ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=GITHUB_TOKEN),
        ExpectedSigner(issuer=GITHUB_ISSUER, identity=RELEASE_IDENTITY),
        instance,
        client,
        pins=PINS,
    )
    return dist


@pytest.mark.slow
def test_verify_downloads_then_checks_a_release(published, github, trust_config, tmp_path):
    env = {**without_ambient_credentials(), "GITHUB_API_URL": github.url}
    common = [
        "--repo",
        REPO,
        "--tag",
        TAG,
        "--trust-config",
        str(trust_config),
        "--pins",
        str(pins_file(PINS, tmp_path)),
    ]
    result = console("verify", *common, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().splitlines()[-1].startswith("verify: all checks passed")
    downloaded = tmp_path / f"u2netp-mirror-{TAG}"  # the default --dist with --tag
    assert files_in(downloaded) == sorted(path.name for path in published.iterdir())
    # The pins this version ships are U-2-Net's audited ones, not the synthetic release's.
    shipped = console("verify", *common[:-2], "--dist", str(tmp_path / "other"), cwd=tmp_path, env=env)
    assert shipped.returncode == 1
    assert shipped.stderr.startswith("error: audited pins: upstream.commit is 5555555555555555… (signed)")
    assert files_in(tmp_path / "other") == []


def test_verify_of_local_files(published, trust_config, tmp_path):
    args = ["verify", "--dist", str(published), "--trust-config", str(trust_config)]
    args += ["--cert-identity", RELEASE_IDENTITY, "--pins", str(pins_file(PINS, tmp_path))]
    assert console(*args, cwd=tmp_path).returncode == 0
    (published / ONNX).write_bytes(b"\x08\x09")
    failed = console(*args, cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"error: {ONNX} signature:") and "Traceback" not in failed.stderr


def test_help_and_version_in_the_manner_of_sigstore_and_gh(tmp_path):
    top = console("--help", cwd=tmp_path)
    verify = console("verify", "--help", cwd=tmp_path)
    version = console("--version", cwd=tmp_path)
    assert top.returncode == verify.returncode == version.returncode == 0
    assert version.stdout.strip() == f"u2netp-mirror {__version__}"
    for text in (top.stdout, verify.stdout):
        for internal in ("sudo", "write-pyc", "hide", "invoke", "--complete", "--echo"):
            assert internal not in text.lower(), internal
    assert "Exit status: 0 verified, 1 a check failed" in " ".join(top.stdout.split())
    for option in ("--repo", "--tag", "--dist", "--cert-identity", "--trust-config", "--offline", "--allow-unpinned"):
        assert option in verify.stdout
    # Only what operators need: no export, no sign, no test of the current directory.
    for task in ("export", "test", "demo", "sign"):
        wrong = console(task, cwd=tmp_path)
        assert wrong.returncode == 2 and "invalid choice" in wrong.stderr, task
    assert console("verify", "--timeout", "abc", cwd=tmp_path).returncode == 2


def test_invoke_export_without_the_export_extra_is_one_line(tmp_path):
    # On the base install torch is absent; in the dev install it is hidden the same way Python
    # hides a module: an entry of None in sys.modules, which makes find_spec and import fail.
    probe = (
        "import sys\n"
        "for name in ('torch', 'onnx', 'onnxruntime', 'numpy'):\n"
        "    sys.modules[name] = None\n"
        "from invoke.main import program\n"
        f"program.run(['invoke', '--search-root', {str(ROOT)!r}, 'export', '--upstream', {str(tmp_path)!r}])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "not installed" in line and "pip install 'u2netp-mirror[export]'" in line and "-e '.[export]'" in line


def test_torch_is_really_absent_where_ci_says_so():
    # .ci/run sets this in the operator's environment; in the dev environment torch is installed.
    expected = os.environ.get("U2NETP_MIRROR_EXPECT_NO_TORCH") == "1"
    import importlib.util

    assert (importlib.util.find_spec("torch") is None) == expected


def test_fetch_verifies_caches_and_rechecks_offline(published, github, trust_config, tmp_path):
    from release.consumer import fetch

    cache = tmp_path / "cache"

    def fetched():
        return fetch(REPO, TAG, cache, api_url=github.url, trust_config=trust_config, pins=PINS, timeout=30)

    onnx = fetched()
    assert onnx.read_bytes() == (published / ONNX).read_bytes()
    assert onnx.parent.name == hashlib.sha256(onnx.read_bytes()).hexdigest()  # keyed by tag and digest
    assert onnx.parent.parent == cache / "example%2Fu2netp-mirror" / TAG
    requests = len(github.requests)
    assert fetched() == onnx and len(github.requests) == requests  # reused: the hashes checked offline
    # A cached file that changed is noticed, and the release is fetched and verified again.
    licence = next(path for path in onnx.parent.iterdir() if path.name.endswith(".LICENSE"))
    licence.write_bytes(licence.read_bytes() + b"\n")
    assert fetched() == onnx and len(github.requests) > requests
    assert licence.read_bytes() == next(p for p in published.iterdir() if p.name == licence.name).read_bytes()


def test_fetch_keeps_nothing_that_did_not_verify(published, github, trust_config, tmp_path):
    from release.consumer import fetch
    from release.errors import VerificationFailed

    cache = tmp_path / "cache"
    with pytest.raises(VerificationFailed, match="signature"):
        fetch(
            REPO,
            TAG,
            cache,
            api_url=github.url,
            trust_config=trust_config,
            pins=PINS,
            identity="https://github.com/evil/fork/.github/workflows/release.yml@refs/tags/x",
            timeout=30,
        )
    assert [path for path in cache.rglob("*") if path.is_file()] == []


@pytest.mark.parametrize("tag", ["..", "."])
def test_fetch_refuses_a_tag_that_would_leave_its_cache_entry(tag, tmp_path):
    from mirror.errors import UsageError
    from release.consumer import fetch

    with pytest.raises(UsageError, match="not a release tag"):
        fetch(REPO, tag, tmp_path / "cache", api_url="http://127.0.0.1:9", pins=PINS)
    assert not (tmp_path / "cache").exists()
