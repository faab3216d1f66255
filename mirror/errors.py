"""The one error hierarchy of u2netp-mirror.

Every failure the toolkit expects is a ``MirrorError``: its message is one
line that names the file involved and says what to do.  The CLI prints that
line and exits non-zero; anything else is a bug and keeps its traceback.
The export side's errors are here; the release side's subclass the same base
in ``release/errors.py``.
"""

from __future__ import annotations


class MirrorError(Exception):
    """Base class: an expected failure with a one-line, actionable message."""

    # What the command line exits with: 1, a check or an input failed; 2, the usage was wrong.
    exit_code = 1


# The four kinds of failure; every error below is one of them, and carries its exit code.


class UsageError(MirrorError):
    """The command line or the configuration is wrong (exit status 2): fix the command and run again."""

    exit_code = 2


class InputError(MirrorError):
    """A file the run was given (a checkout, a checkpoint, dist) is missing, unreadable or unfit."""


class RemoteError(MirrorError):
    """A server (GitHub, Sigstore) failed, or sent something that cannot be trusted."""


class VerificationError(MirrorError):
    """A check failed: the thing checked is not what it must be."""


class ConfigError(UsageError):
    """A configured value (defaults.yaml, invoke.yaml, INVOKE_U2NETP_*, --pins) is malformed or out of range."""


class UpstreamError(InputError):
    """The upstream checkout is missing, dirty, or not the audited one."""


class LicenseError(InputError):
    """The upstream licence is missing or is not the Apache License 2.0."""


class CheckpointError(InputError):
    """The checkpoint cannot be read safely or does not fit U2NETP."""


class ExportError(InputError):
    """The ONNX export itself failed (the model, as loaded, cannot be exported)."""


class ValidationError(VerificationError):
    """The exported ONNX failed the checker or the numerical parity check."""


class ManifestError(InputError):
    """The manifest cannot be written or does not match the ONNX in dist."""


class OutputError(InputError):
    """An output file or directory cannot be written."""
