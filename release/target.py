"""Which GitHub release, where, and with which credentials: shared by attach and download."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mirror.errors import UsageError

from .transport import check_repo

DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class ReleaseTarget:
    repo: str
    tag: str
    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, repo: str | None = None, tag: str | None = None, api_url: str | None = None
    ) -> ReleaseTarget:
        """From ``u2netp.release`` and ``u2netp.github``, the options winning, then the environment."""
        return cls.from_environment(
            repo or config["release"]["repo"] or None,
            tag or config["release"]["tag"] or None,
            api_url or config["github"]["api_url"] or None,
        )

    @classmethod
    def from_environment(cls, repo: str | None, tag: str | None, api_url: str | None) -> ReleaseTarget:
        """Fill the gaps from GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_TOKEN / GH_TOKEN."""
        chosen_repo = check_repo(repo or os.environ.get("GITHUB_REPOSITORY", ""))
        if not tag:
            raise UsageError("--tag: which release? e.g. --tag u2netp-mirror-v1.0.0")
        return cls(
            repo=chosen_repo,
            tag=tag,
            api_url=api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
            token=os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None,
        )
