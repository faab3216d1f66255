"""The release flow, composed once: ``ReleaseSettings.from_config`` and ``run_release``."""

from __future__ import annotations

import copy

import pytest

from flow import ReleaseSettings, run_release
from mirror.errors import ConfigError, UpstreamError, UsageError
from mirror.reporting import Lines
from mirror.settings import shipped_defaults
from tests.conftest import GITHUB_TOKEN
from tests.helpers import RELEASE_IDENTITY, files_in

pytestmark = pytest.mark.slow

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-v1.0.0"


def _config(fixture, dist, trust_config, github) -> dict:
    config = copy.deepcopy(shipped_defaults()["u2netp"])
    config["upstream"] = str(fixture.root)
    config["dist"] = str(dist)
    config["pin"].update(
        commit=fixture.pin.commit,
        module_sha256=fixture.pin.module_sha256,
        license_sha256=fixture.pin.license_sha256,
        checkpoint_sha256=fixture.pin.checkpoint_sha256,
    )
    config["sigstore"]["trust_config"] = str(trust_config)
    config["github"]["api_url"] = github.url
    return config


def test_one_flow_exports_signs_and_publishes(checkout, tmp_path, trust_config, github, sigstore_stack, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    config = _config(checkout, tmp_path / "dist", trust_config, github)
    settings = ReleaseSettings.from_config(
        config, repo=REPO, tag=TAG, identity_token=sigstore_stack.token(RELEASE_IDENTITY), timeout=30
    )
    assert settings.expected.identity == RELEASE_IDENTITY and settings.export.require_audited
    reporter = Lines()
    result = run_release(settings, reporter)
    assert [line for line in reporter.lines if line.startswith("release: ")] == [
        "release: export",
        "release: manifest",
        "release: sign",
        "release: attach",
    ]
    assert result.export.inputs.build_kind == "audited"
    assert result.attach.published and len(result.signed) == 4
    (release,) = github.releases.values()
    assert not release.draft and len(release.assets) == 8
    again = run_release(settings, Lines())  # a re-run converges: nothing new is uploaded
    assert {item.action for item in again.attach.plan} == {"skip"}


def test_a_dry_run_checks_every_input_and_changes_nothing(checkout, tmp_path, trust_config, github):
    config = _config(checkout, tmp_path / "dist", trust_config, github)
    settings = ReleaseSettings.from_config(config, repo=REPO, tag=TAG)
    reporter = Lines()
    assert run_release(settings, reporter, dry_run=True).dry_run
    assert files_in(tmp_path / "dist") == [] and github.requests == []
    assert reporter.lines[-1].startswith("release: dry run: would write")
    del config["pin"]["checkpoint_sha256"]  # nobody audited the checkpoint: the flow stops at the audit
    with pytest.raises(UpstreamError, match="not the audited model"):
        run_release(ReleaseSettings.from_config(config, repo=REPO, tag=TAG), Lines(), dry_run=True)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"repo": "not a repo"}, UsageError, "expected OWNER/NAME"),
        ({"tag": ""}, UsageError, "--tag: which release?"),
        ({"staging": True}, UsageError, "are exclusive"),
    ],
)
def test_bad_options_fail_before_any_work(checkout, tmp_path, trust_config, github, change, error, message):
    config = _config(checkout, tmp_path / "dist", trust_config, github)
    options = {"repo": REPO, "tag": TAG, **change}
    with pytest.raises(error, match=message):
        ReleaseSettings.from_config(config, **options)


def test_a_bad_config_value_fails_before_any_work(checkout, tmp_path, trust_config, github):
    config = _config(checkout, tmp_path / "dist", trust_config, github)
    config["github"]["attempts"] = "0"
    with pytest.raises(ConfigError, match=r"u2netp\.github\.attempts='0': out of range"):
        ReleaseSettings.from_config(config, repo=REPO, tag=TAG)


def test_the_gate_stops_a_release_it_does_not_promote(
    checkout, tmp_path, trust_config, github, sigstore_stack, monkeypatch
):
    from flow.run import NotPromoted
    from mirror.fixture import write_checkpoint, write_labelled_set
    from mirror.pipeline import run_export
    from tests.helpers import settings_for

    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    # "The model in use": the same network with other weights, so the gate cannot promote the new one.
    other = tmp_path / "other.pth"
    write_checkpoint(checkout.root, other, seed=11)
    in_use = run_export(settings_for(checkout, tmp_path / "in-use", checkpoint=other, allow_unpinned=True))
    images, masks = write_labelled_set(tmp_path / "labelled")
    config = _config(checkout, tmp_path / "dist", trust_config, github)
    settings = ReleaseSettings.from_config(
        config,
        repo=REPO,
        tag=TAG,
        identity_token=sigstore_stack.token(RELEASE_IDENTITY),
        timeout=30,
        evaluate_images=images,
        evaluate_masks=masks,
        evaluate_baseline=in_use.onnx_path,
    )
    reporter = Lines()
    with pytest.raises(NotPromoted, match=r"evaluation\.json: not promoted: .*; nothing was signed or published"):
        run_release(settings, reporter)
    assert "release: evaluate (the promotion gate): " + str(images) in reporter.lines
    assert not any(line.startswith("release: sign") for line in reporter.lines)
    assert github.releases == {} and not list((tmp_path / "dist").glob("*.sigstore.json"))
    with pytest.raises(UsageError, match="--evaluate-images and --evaluate-baseline go together"):
        ReleaseSettings.from_config(config, repo=REPO, tag=TAG, evaluate_images=images)
