"""A small client for GitHub's Releases REST API (2022-11-28): just what attach and download need.

One class for callers, four parts behind it, the way sigstore-python gives each service its
module: ``transport.py`` (where the token may go, retries, deadlines, caps), ``releases.py``
(the REST calls), ``transfers.py`` (streamed uploads and downloads) and ``attestations.py``
(GitHub's artifact attestations).
"""

from __future__ import annotations

from mirror.reporting import SILENT, Reporter

from .attestations import AttestationsAPI
from .releases import MAX_ASSETS, MAX_RELEASES, ReleasesAPI
from .target import ReleaseTarget
from .transfers import Transfers
from .transport import MAX_JSON_BYTES, Clock, RetryPolicy, check_repo, transfer_deadline

__all__ = [
    "MAX_ASSETS",
    "MAX_JSON_BYTES",
    "MAX_RELEASES",
    "Clock",
    "GitHubClient",
    "RetryPolicy",
    "check_repo",
    "transfer_deadline",
]


class GitHubClient(ReleasesAPI, Transfers, AttestationsAPI):
    """``GitHubClient(api_url, repo, token=None, retry=RetryPolicy(), clock=Clock(), reporter=SILENT)``."""

    @classmethod
    def for_target(cls, target: ReleaseTarget, retry: RetryPolicy, reporter: Reporter = SILENT) -> GitHubClient:
        """The client for ``target``'s repository, with its token (the one place a client is made)."""
        return cls(api_url=target.api_url, repo=target.repo, token=target.token, retry=retry, reporter=reporter)
