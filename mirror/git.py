"""The one way this toolkit runs git: for fetching and auditing the upstream, the fixture, and attach.

A fixed, minimal environment: the caller's git settings must not change what we read or where
we write.  A ``GIT_DIR`` or ``GIT_WORK_TREE`` exported in the shell would point git at another
repository (``fetch-upstream`` once added its remote to the caller's), so every ``GIT_*``
variable is dropped, and messages are in English (``LC_ALL=C``) so they can be quoted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .errors import InputError

DEFAULT_TIMEOUT = 60


class GitError(InputError):
    """git is missing, or took too long."""


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return clean | {"LC_ALL": "C"} | dict(extra or {})


def run_git(
    root: Path, *args: str, timeout: float = DEFAULT_TIMEOUT, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``git -C root ARGS`` in the clean environment; the caller reads the exit status and output."""
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            env=git_environment(extra_env),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed; it is needed to fetch and audit the upstream checkout") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{root}: git {args[0]} took over {timeout:.0f} s; try again") from None


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """git's own explanation of a failure: the last line it printed on stderr."""
    return (result.stderr.strip().splitlines() or ["git failed"])[-1]
