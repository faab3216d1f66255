"""The release side's errors, under the project's one base, ``mirror.errors.MirrorError``.

The task layer and the operator's console script catch ``MirrorError`` and print its one-line
message; anything else is a bug and keeps its traceback.  Internal signals (such as a retry)
never leave this package.
"""

from __future__ import annotations

from mirror.errors import MirrorError


class ReleaseError(MirrorError):
    """Base of the release side's expected failures."""


class GitHubError(ReleaseError):
    """A GitHub API request failed for good, or GitHub's answer cannot be trusted."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AttachConflict(ReleaseError):
    """The release already has an asset of the same name with other content."""


class IdentityTokenError(ReleaseError):
    """No usable OIDC identity token for signing."""


class SigningError(ReleaseError):
    """Signing failed, or the new signature did not verify."""


class TrustRootError(ReleaseError):
    """The Sigstore trust root cannot be loaded."""


class VerificationFailed(ReleaseError):
    """A release check failed; ``check`` names which one."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason
