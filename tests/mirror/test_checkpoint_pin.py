"""`invoke pin-checkpoint`: a downloaded checkpoint is pinned only with every witness agreeing (issue 19, 2)."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from mirror.checkpoint_pin import Witness, plan_pin, witnesses_from_config, write_pin
from mirror.errors import ConfigError
from mirror.settings import load_yaml, shipped_defaults
from tests.helpers import ROOT, run_cli

DEFAULTS = ROOT / "mirror" / "defaults.yaml"


def test_the_shipped_witness_is_backgroundremovers_md5():
    (witness,) = witnesses_from_config(shipped_defaults()["u2netp"]["checkpoint_witnesses"])
    assert (witness.algorithm, witness.digest) == ("md5", "e4f636406ca4e2af789941e7f139ee2e")
    assert "backgroundremover" in witness.source


def test_a_file_every_witness_agrees_with_is_pinned_keeping_every_comment(pristine, tmp_path):
    defaults = tmp_path / "defaults.yaml"
    shutil.copyfile(DEFAULTS, defaults)
    data = pristine.checkpoint.read_bytes()
    witness = Witness("md5", hashlib.md5(data).hexdigest(), "a test's own record")  # noqa: S324 - a witness's algorithm
    change = plan_pin(pristine.checkpoint, defaults, [witness])
    assert all(verdict.agrees for verdict in change.verdicts)
    assert change.previous is None and change.sha256 == hashlib.sha256(data).hexdigest()
    assert f"+    checkpoint_sha256: {change.sha256}" in change.diff
    assert "-    # checkpoint_sha256: <64 hex digits>" in change.diff
    write_pin(defaults, change)
    pinned = load_yaml(defaults.read_text())["u2netp"]["pin"]
    assert pinned["checkpoint_sha256"] == change.sha256
    assert defaults.read_text().count("#") == DEFAULTS.read_text().count("#") - 1  # only that line's comment went
    again = plan_pin(pristine.checkpoint, defaults, [witness])
    assert again.previous == change.sha256 and again.diff == ""


def test_a_disputed_file_is_refused_and_dist_defaults_untouched(pristine):
    before = DEFAULTS.read_bytes()
    result = run_cli("pin-checkpoint", "--checkpoint", str(pristine.checkpoint))
    assert result.returncode == 1, result.stderr
    assert "DISAGREES: this file's md5 is" in result.stdout
    assert result.stderr.count("\n") == 1 and "not pinned: a witness disagrees" in result.stderr
    assert "--pin-without-witness" in result.stderr
    loud = run_cli("pin-checkpoint", "--checkpoint", str(pristine.checkpoint), "--pin-without-witness")
    assert loud.returncode == 0, loud.stderr
    assert "WARNING: a witness disagrees; pinning" in loud.stdout and "WITHOUT A WITNESS" in loud.stdout
    assert "+    checkpoint_sha256: " in loud.stdout and "not written (--write writes it" in loud.stdout
    assert DEFAULTS.read_bytes() == before


def test_no_checkpoint_is_a_usage_error(tmp_path):
    missing = run_cli("pin-checkpoint")
    assert missing.returncode == 2 and "--checkpoint: which file?" in missing.stderr
    absent = run_cli("pin-checkpoint", "--checkpoint", str(tmp_path / "nowhere.pth"))
    assert absent.returncode == 1 and "no such file" in absent.stderr


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"algorithm": "crc32", "digest": "00", "source": "x"}], "algorithm='crc32'"),
        ([{"algorithm": "md5", "digest": "abc", "source": "x"}], "32 lower-case hex digits"),
        ([{"algorithm": "md5", "digest": "0" * 32, "source": ""}], "source: empty"),
        ("md5", "expected a list"),
    ],
)
def test_a_malformed_witness_is_a_config_error(items, message):
    with pytest.raises(ConfigError, match=message):
        witnesses_from_config(items)
