"""Errors carry their exit code: 2 for a wrong command line or config, 1 for a failed input,
server or check; both entry points (Invoke's tasks and the operator's console script) map it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.errors import EvaluationError, EvaluationUsageError
from mirror import errors as mirror_errors
from release import errors as release_errors
from tests.helpers import run_cli

CONSOLE = str(Path(sys.executable).with_name("u2netp-mirror"))


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (mirror_errors.ConfigError, mirror_errors.UsageError, 2),
        (mirror_errors.UpstreamError, mirror_errors.InputError, 1),
        (mirror_errors.CheckpointError, mirror_errors.InputError, 1),
        (mirror_errors.OutputError, mirror_errors.InputError, 1),
        (mirror_errors.ValidationError, mirror_errors.VerificationError, 1),
        (release_errors.GitHubError, mirror_errors.RemoteError, 1),
        (release_errors.SigningError, mirror_errors.RemoteError, 1),
        (release_errors.TrustRootError, mirror_errors.RemoteError, 1),
        (release_errors.VerificationFailed, mirror_errors.VerificationError, 1),
        (release_errors.AttachConflict, mirror_errors.VerificationError, 1),
        (release_errors.IdentityTokenError, mirror_errors.InputError, 1),
        (EvaluationError, mirror_errors.InputError, 1),
        (EvaluationUsageError, mirror_errors.UsageError, 2),
    ],
)
def test_every_error_is_one_of_four_kinds_with_its_code(error, kind, code):
    assert issubclass(error, kind)
    assert error.exit_code == code
    kinds = (
        mirror_errors.UsageError,
        mirror_errors.InputError,
        mirror_errors.RemoteError,
        mirror_errors.VerificationError,
    )
    assert any(issubclass(error, each) for each in kinds)


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSOLE, *args], capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify", "--repo", "bad repo", "--tag", "t"), "expected OWNER/NAME"),
        (("verify", "--dist", ".", "--staging", "--trust-config", "x.json", "--cert-identity", "a"), "are exclusive"),
        (("verify", "--dist", "."), "which signer to expect?"),
        (("verify", "--dist", ".", "--cert-identity", "a", "--cert-identity-regexp", "b"), "exactly one of"),
    ],
)
def test_usage_errors_exit_2_from_both_entry_points(args, message):
    for result in (_console(*args), run_cli(*args)):
        assert result.returncode == 2, (result.args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_argparse_usage_errors_are_2_and_failed_checks_1(tmp_path):
    assert _console("verify", "--timeout", "soon").returncode == 2
    missing = _console("verify", "--dist", str(tmp_path), "--cert-identity", "someone")
    assert missing.returncode == 1 and "files present" in missing.stderr
    export = run_cli("export", "--upstream", str(tmp_path / "nowhere"), "--dist", str(tmp_path / "dist"))
    assert export.returncode == 1 and "no upstream checkout here" in export.stderr
