"""The release side's errors, under the project's one base, ``mirror.errors.MirrorError``.

The task layer and the operator's console script catch ``MirrorError`` and print its one-line
message; anything else is a bug and keeps its traceback.  Internal signals (such as a retry)
never leave this package.
"""

from __future__ import annotations

from mirror.errors import InputError, MirrorError, RemoteError, UsageError, VerificationError

__all__ = [
    "AttachConflict",
    "GitHubError",
    "IdentityTokenError",
    "InputError",
    "ReleaseError",
    "RemoteError",
    "SigningError",
    "TrustRootError",
    "UsageError",
    "VerificationError",
    "VerificationFailed",
]


class ReleaseError(MirrorError):
    """Base of the release side's expected failures; each is also one of the four kinds."""


class GitHubError(ReleaseError, RemoteError):
    """A GitHub API request failed for good, or GitHub's answer cannot be trusted."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AttachConflict(ReleaseError, VerificationError):
    """The release already has an asset of the same name with other content."""


class IdentityTokenError(ReleaseError, InputError):
    """No usable OIDC identity token for signing."""


class SigningError(ReleaseError, RemoteError):
    """Signing failed, or the new signature did not verify."""


class TrustRootError(ReleaseError, RemoteError):
    """The Sigstore trust root cannot be loaded."""


class VerificationFailed(ReleaseError, VerificationError):
    """A release check failed; ``check`` names which one."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason
