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


class UsageError(MirrorError):
    """The command line or the configuration is wrong (exit status 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configured value (defaults.yaml, invoke.yaml, INVOKE_U2NETP_*, --pins) is malformed or out of range."""


class UpstreamError(MirrorError):
    """The upstream checkout is missing, dirty, or not the audited one."""


class LicenseError(MirrorError):
    """The upstream licence is missing or is not the Apache License 2.0."""


class CheckpointError(MirrorError):
    """The checkpoint cannot be read safely or does not fit U2NETP."""


class ExportError(MirrorError):
    """The ONNX export itself failed."""


class ValidationError(MirrorError):
    """The exported ONNX failed the checker or the numerical parity check."""


class ManifestError(MirrorError):
    """The manifest cannot be written or does not match the ONNX in dist."""


class OutputError(MirrorError):
    """An output file or directory cannot be written."""
