"""'Audited' means audited, on the export side: every pin judged, each pinned input read once,
and nothing the checkout configures ever runs (issue: "audited" must mean audited, 1, 3, 4)."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from mirror.config import check_config, check_pin
from mirror.errors import ConfigError, UpstreamError
from mirror.fixture import git, write_checkpoint
from mirror.manifest_step import run_manifest
from mirror.pipeline import run_export
from mirror.reporting import Lines
from mirror.settings import shipped_defaults
from mirror.upstream import audit_checkout
from tests.helpers import LICENCE, ONNX, audited_pins, files_in, settings_for

pytestmark = pytest.mark.slow


# -- 1. the label: audited only when every pin holds ------------------------------------------


def test_a_checkpoint_nobody_pinned_is_an_unpinned_build_that_says_which_pin(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist", pin=replace(audited_pins(checkout), checkpoint_sha256=None))
    lines: list[str] = []
    exported = run_export(settings, Lines(lines.append))
    written = run_manifest(settings, reporter=Lines(lines.append), export=exported)
    assert exported.metadata["build_kind"] == written.document["build_kind"] == "unpinned"
    assert exported.metadata["upstream_pinned"] == "false"
    upstream = written.document["upstream"]
    assert upstream["pinned"] is False and upstream["pin"]["checkpoint_sha256"] is None
    (problem,) = upstream["pin_problems"]
    assert problem.startswith("checkpoint: no pin (u2netp.pin.checkpoint_sha256 is not set")
    (build,) = [line for line in lines if line.startswith("build: ")]
    assert "UNPINNED" in build and "checkpoint: no pin" in build
    assert not any("pinned," in line and "NOT PINNED" not in line for line in lines if "hash checkpoint" in line)


def test_every_pin_holding_is_an_audited_build(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    lines: list[str] = []
    written = run_manifest(settings, reporter=Lines(lines.append), export=run_export(settings, Lines(lines.append)))
    assert written.document["build_kind"] == "audited"
    assert written.document["upstream"]["pin_problems"] == []
    assert (
        "build: audited (commit, module, licence and checkpoint match their pins; the upstream witness held)" in lines
    )


def test_release_stops_an_unpinned_build_at_the_audit(checkout, tmp_path):
    unpinned = replace(audited_pins(checkout), checkpoint_sha256=None)
    settings = settings_for(checkout, tmp_path / "dist", pin=unpinned, require_audited=True)
    with pytest.raises(UpstreamError, match=r"not the audited model \(checkpoint: no pin .*--allow-unpinned"):
        run_export(settings)
    assert files_in(settings.dist) == []
    allowed = run_export(replace(settings, allow_unpinned=True))
    assert allowed.metadata["build_kind"] == "unpinned"


@pytest.mark.parametrize("key", ["commit", "module_sha256", "license_sha256", "checkpoint_sha256", "repo_url"])
@pytest.mark.parametrize("value", ["", None, "   "])
def test_an_empty_or_null_pin_is_an_error_never_a_skipped_check(key, value):
    pin = dict(shipped_defaults()["u2netp"]["pin"], checkpoint_sha256="a" * 64)
    pin[key] = value
    with pytest.raises(ConfigError, match=rf"u2netp\.pin\.{key}: empty"):
        check_pin(pin)


def test_the_shipped_config_is_valid_and_pins_no_checkpoint():
    config = shipped_defaults()["u2netp"]
    check_config(config)
    assert "checkpoint_sha256" not in config["pin"]  # nobody has audited upstream's u2netp.pth yet


# -- 3. hashed, then read again: each pinned input is read once --------------------------------


def _swap_after(trigger: str, swap) -> Lines:
    """A reporter that runs ``swap`` right after the sub-step ``trigger`` reports: the moment
    between the audit's read of a file and any later use of it, every time."""

    def write(line: str) -> None:
        if line.startswith(trigger):
            swap()

    return Lines(write)


def test_a_checkpoint_swapped_after_hashing_is_not_what_gets_exported(checkout, exported_dist, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    other = tmp_path / "other.pth"
    write_checkpoint(checkout.root, other, seed=5)
    report = _swap_after("hash checkpoint", lambda: os.replace(other, checkout.checkpoint))
    result = run_export(settings, report)
    assert (checkout.checkpoint.read_bytes() != b"") and other.exists() is False  # the swap happened
    # The weights in the ONNX are the hashed file's: byte-identical to the pristine export.
    assert settings.onnx_path.read_bytes() == (exported_dist / ONNX).read_bytes()
    assert result.inputs.checkpoint_sha256 == settings.pin.checkpoint_sha256


def test_a_module_swapped_after_hashing_is_not_what_runs(checkout, exported_dist, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    module = checkout.root / "model" / "u2net.py"
    doctored = (
        module.read_text()
        + "\n_original = U2NETP.forward\nU2NETP.forward = lambda self, x: [2 * o for o in _original(self, x)]\n"
    )

    def swap() -> None:
        module.write_text(doctored)

    run_export(settings, _swap_after("audit upstream", swap))
    assert module.read_text() == doctored  # the swap happened
    assert settings.onnx_path.read_bytes() == (exported_dist / ONNX).read_bytes()


def test_a_licence_swapped_after_hashing_is_not_what_ships(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    licence = checkout.root / "LICENSE"
    original = licence.read_bytes()
    exported = run_export(
        settings,
        _swap_after("audit upstream", lambda: licence.write_bytes(original + b"\n\nAlso: anything goes.\n")),
    )
    run_manifest(settings, export=exported)
    assert (settings.dist / LICENCE).read_bytes() == original


# -- 4. the audit runs nothing the checkout configures ----------------------------------------


def _payload(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    script = tmp_path / "payload.sh"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\ncat\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script, marker


def _configure(checkout, tmp_path: Path, key: str, script: Path) -> None:
    root = checkout.root
    if key == "core.fsmonitor":
        git(root, "config", "core.fsmonitor", str(script))
    elif key == "filter":
        (root / ".gitattributes").write_text("README.md filter=evil\nLICENSE filter=evil\n")
        git(root, "config", "filter.evil.clean", str(script))
        git(root, "config", "filter.evil.smudge", str(script))
        git(root, "config", "filter.evil.required", "true")
        git(root, "add", ".gitattributes")
        git(root, "commit", "-q", "-m", "attributes")
    elif key == "core.hooksPath":
        hooks = tmp_path / "hooks"
        hooks.mkdir()
        for hook in ("post-index-change", "post-checkout", "pre-commit", "reference-transaction"):
            (hooks / hook).write_text(script.read_text())
            (hooks / hook).chmod(0o755)
        git(root, "config", "core.hooksPath", str(hooks))
    elif key == "include.path":
        included = tmp_path / "included.gitconfig"
        included.write_text(f"[core]\n\tfsmonitor = {script}\n\tpager = {script}\n")
        git(root, "config", "include.path", str(included))
    elif key == "diff.external":
        git(root, "config", "diff.external", str(script))
    elif key == "core.pager":
        git(root, "config", "core.pager", str(script))
        git(root, "config", "pager.status", "true")
    # Setting it up ran the payload (committing applies the filter): only the audit counts.
    (tmp_path / "MARKER").unlink(missing_ok=True)
    # Change every tracked file's stat data, so git must re-read (and filter, and monitor) them.
    for path in (root / "README.md", root / "LICENSE", root / "model" / "u2net.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))


@pytest.mark.parametrize(
    "key", ["core.fsmonitor", "filter", "core.hooksPath", "include.path", "diff.external", "core.pager"]
)
def test_the_audit_runs_nothing_the_checkouts_git_config_names(checkout, tmp_path, key):
    script, marker = _payload(tmp_path)
    _configure(checkout, tmp_path, key, script)
    pin = replace(audited_pins(checkout), commit=git(checkout.root, "rev-parse", "HEAD"))
    audit = audit_checkout(checkout.root, pin)
    assert audit.pinned
    assert not marker.exists(), f"{key}: the checkout's config ran a command during the audit"


def test_the_sparse_checkout_bits_of_the_index_are_kept(checkout):
    # upstream's real checkout is sparse: files outside the cone are absent from the work tree.
    (checkout.root / "README.md").unlink()
    git(checkout.root, "update-index", "--skip-worktree", "README.md")
    assert audit_checkout(checkout.root, checkout.pin).pinned


def test_a_checkout_with_a_detached_or_packed_head_is_read_without_git_config(checkout):
    commit = git(checkout.root, "rev-parse", "HEAD")
    git(checkout.root, "pack-refs", "--all")
    assert audit_checkout(checkout.root, checkout.pin).commit == commit
    git(checkout.root, "checkout", "-q", "--detach")
    assert audit_checkout(checkout.root, checkout.pin).commit == commit


def test_an_onnx_graph_is_unaffected_by_where_the_module_was_read(checkout, tmp_path):
    # The module runs from its hashed bytes; its file name still appears nowhere in the graph.
    settings = settings_for(checkout, tmp_path / "dist")
    run_export(settings)
    assert str(checkout.root) not in str(onnx.load(settings.onnx_path))
