import subprocess
from dataclasses import replace

import pytest

from mirror.errors import LicenseError, UpstreamError
from mirror.fixture import git
from mirror.upstream import audit_checkout


def test_pinned_checkout_is_audited(checkout):
    audit = audit_checkout(checkout.root, checkout.pin)
    assert audit.pinned
    assert audit.commit == checkout.pin.commit
    assert (audit.module_path, audit.license_path) == ("model/u2net.py", "LICENSE")
    assert audit.module_sha256 == checkout.pin.module_sha256
    assert audit.notice_path is None and audit.notice_sha256 is None


def test_notice_is_recorded(checkout):
    (checkout.root / "NOTICE").write_text("U-2-Net\nCopyright 2020 the authors\n")
    git(checkout.root, "add", "NOTICE")
    git(checkout.root, "commit", "-q", "-m", "notice")
    audit = audit_checkout(checkout.root, checkout.pin, allow_unpinned=True)
    assert audit.notice_path == "NOTICE" and len(audit.notice_sha256) == 64


def test_untracked_files_are_fine(checkout):
    (checkout.root / "scratch.txt").write_text("mine")
    assert audit_checkout(checkout.root, checkout.pin).pinned


@pytest.mark.parametrize("tracked", ["model/u2net.py", "README.md"])
def test_modified_tracked_file_is_a_dirty_checkout(checkout, tracked):
    with open(checkout.root / tracked, "a") as stream:
        stream.write("\n# local edit\n")
    with pytest.raises(UpstreamError, match="modified tracked files"):
        audit_checkout(checkout.root, checkout.pin)


def test_staged_change_is_a_dirty_checkout(checkout):
    (checkout.root / "README.md").write_text("changed\n")
    git(checkout.root, "add", "README.md")
    with pytest.raises(UpstreamError, match="modified tracked files"):
        audit_checkout(checkout.root, checkout.pin)


@pytest.mark.parametrize("field", ["commit", "module_sha256", "license_sha256"])
def test_pin_mismatch_is_an_error_unless_waived(checkout, field):
    pin = replace(checkout.pin, **{field: "0" * len(getattr(checkout.pin, field))})
    with pytest.raises(UpstreamError, match=r"not the audited upstream.*--allow-unpinned"):
        audit_checkout(checkout.root, pin)
    assert not audit_checkout(checkout.root, pin, allow_unpinned=True).pinned


def test_new_commit_is_unpinned(checkout):
    (checkout.root / "README.md").write_text("moved on\n")
    git(checkout.root, "commit", "-q", "-am", "upstream moved on")
    with pytest.raises(UpstreamError, match="commit"):
        audit_checkout(checkout.root, checkout.pin)


def test_licence_is_checked_even_when_unpinned(checkout):
    (checkout.root / "LICENSE").write_text("MIT License\n\nApache License Version 2.0 mentioned here.\n")
    git(checkout.root, "commit", "-q", "-am", "relicense")
    with pytest.raises(LicenseError, match=r"not the Apache License 2.0"):
        audit_checkout(checkout.root, checkout.pin, allow_unpinned=True)


def test_missing_licence_is_an_error(checkout):
    git(checkout.root, "rm", "-q", "LICENSE")
    git(checkout.root, "commit", "-q", "-m", "drop licence")
    with pytest.raises(LicenseError, match="no LICENSE file"):
        audit_checkout(checkout.root, checkout.pin, allow_unpinned=True)


def test_missing_module_is_an_error(checkout):
    git(checkout.root, "rm", "-q", "model/u2net.py")
    git(checkout.root, "commit", "-q", "-m", "drop module")
    with pytest.raises(UpstreamError, match=r"u2net\.py: missing"):
        audit_checkout(checkout.root, checkout.pin, allow_unpinned=True)


def test_missing_directory_says_how_to_fetch(tmp_path, pristine):
    with pytest.raises(UpstreamError, match="invoke fetch-upstream"):
        audit_checkout(tmp_path / "nowhere", pristine.pin)


def test_plain_directory_is_not_a_checkout(tmp_path, pristine):
    (tmp_path / "model").mkdir()
    with pytest.raises(UpstreamError, match="not a usable git checkout"):
        audit_checkout(tmp_path, pristine.pin)


def test_subdirectory_of_a_checkout_is_refused(checkout):
    with pytest.raises(UpstreamError, match="not the root"):
        audit_checkout(checkout.root / "model", checkout.pin)


def test_git_environment_of_the_caller_is_ignored(checkout, monkeypatch, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert audit_checkout(checkout.root, checkout.pin).pinned
