"""Clone the upstream at the pinned commit, for ``invoke fetch-upstream``."""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import UpstreamError
from .git import last_line, run_git
from .settings import CHECKPOINT_IN_CHECKOUT, UpstreamPin
from .upstream import UpstreamAudit, audit_checkout

# Cloning U-2-Net's full history is hundreds of MB; one commit is all we need.
_TIMEOUT_SECONDS = 600


def fetch_upstream(url: str, dest: Path, pin: UpstreamPin) -> UpstreamAudit:
    """Fetch ``pin.commit`` from ``url`` into a new checkout at ``dest`` and audit it.

    ``dest`` must not exist yet (an existing directory is never touched).  If anything
    fails, the partly made checkout is removed again.
    """
    if dest.exists():
        raise UpstreamError(f"{dest}: already exists; pass --dest with a new directory")
    dest.mkdir(parents=True)
    try:
        for args in (
            ["init", "-q"],
            ["remote", "add", "origin", url],
            ["fetch", "-q", "--depth", "1", "origin", pin.commit],
            ["-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"],
        ):
            result = run_git(dest, *args, timeout=_TIMEOUT_SECONDS)
            if result.returncode != 0:
                raise UpstreamError(f"{url}: cannot fetch commit {pin.commit[:12]} ({last_line(result)})")
        return audit_checkout(dest, pin)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def checkpoint_hint(dest: Path) -> str:
    return (
        f"put u2netp.pth (from the links in upstream's README) at {dest / CHECKPOINT_IN_CHECKOUT}, "
        f"then run `invoke export --upstream {dest}`"
    )
