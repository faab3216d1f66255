"""Read a git checkout's HEAD and its dirty state without running anything the checkout configures.

A checkout's ``.git/config`` is not audited (the pins cover the tree, not ``.git/``), yet plain
``git status`` obeys it: ``core.fsmonitor`` runs a command, ``filter.<driver>.clean`` runs one for
every re-hashed file named in ``.gitattributes``, ``core.hooksPath`` supplies the
``post-index-change`` hook that refreshing the index triggers, ``include.path`` pulls in more of
the same, and ``diff.external`` and ``core.pager`` name programs too.  So git never sees that
config here:

* HEAD is resolved in Python (``HEAD`` → loose ref or ``packed-refs`` → commit id).
* ``git status`` runs against a private git directory made for the purpose: our own minimal
  ``config``, a copy of the checkout's index (it carries the sparse-checkout bits upstream's
  checkout relies on), HEAD set to that commit id, and the checkout's object store borrowed
  read-only through ``objects/info/alternates``.  System, global and XDG config are switched
  off by environment, and the command line pins the keys that could name a program.

Objects, the index and ``.gitattributes`` are data: git parses them but runs nothing from them
when no config defines a filter driver, a hook or a monitor.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import UpstreamError
from .git import GitError, last_line

_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_REF = re.compile(r"refs/[A-Za-z0-9._/+-]{1,240}")
_MAX_SYMREF_DEPTH = 5
_MAX_SMALL_FILE = 1 << 20  # HEAD, a loose ref, a gitfile, packed-refs' lines are far smaller
_TIMEOUT_SECONDS = 120
# Keys that name a program, pinned on the command line too (it outranks every config file).
_PINNED_KEYS = (
    "core.fsmonitor=false",
    "core.hooksPath=" + os.devnull,
    "core.pager=cat",
    "core.editor=false",
    "core.sshCommand=false",
    "diff.external=",
    "protocol.allow=never",
    # Our own scratch git directory holds the config git reads; the checkout's owner is moot.
    "safe.directory=*",
)


@dataclass(frozen=True)
class CheckoutState:
    commit: str
    # `git status --porcelain` lines for tracked files that differ from HEAD (empty: clean).
    changes: tuple[str, ...]


def _read_small(path: Path) -> str:
    with path.open("rb") as stream:
        data = stream.read(_MAX_SMALL_FILE + 1)
    if len(data) > _MAX_SMALL_FILE:
        raise UpstreamError(f"{path}: over {_MAX_SMALL_FILE >> 10} KiB; not a git file")
    return data.decode("utf-8", errors="replace")


def _enclosing_work_tree(root: Path) -> Path | None:
    for parent in root.resolve().parents:
        if (parent / ".git").exists():
            return parent
    return None


def _git_dirs(root: Path, hint: str) -> tuple[Path, Path]:
    """(the checkout's git directory, its common directory: the same unless it is a linked worktree)."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        git_dir = dot_git
    elif dot_git.is_file():
        text = _read_small(dot_git).strip()
        if not text.startswith("gitdir: "):
            raise UpstreamError(f"{dot_git}: not a git directory or gitfile; {hint}")
        git_dir = (root / text.removeprefix("gitdir: ").strip()).resolve()
    else:
        if (enclosing := _enclosing_work_tree(root)) is not None:
            raise UpstreamError(f"{root}: is inside the git work tree {enclosing}, not the root of a U-2-Net checkout")
        raise UpstreamError(f"{root}: not a usable git checkout of U-2-Net (no .git here); {hint}")
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / _read_small(git_dir / "commondir").strip()).resolve()
    if not (common / "objects").is_dir() or not (git_dir / "HEAD").is_file():
        raise UpstreamError(f"{root}: not a usable git checkout of U-2-Net ({git_dir} has no HEAD or objects); {hint}")
    return git_dir, common


def _packed_ref(common: Path, name: str) -> str | None:
    packed = common / "packed-refs"
    if not packed.is_file():
        return None
    for line in _read_small_lines(packed):
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1].strip() == name and _COMMIT.fullmatch(parts[0]):
            return parts[0]
    return None


def _read_small_lines(path: Path) -> list[str]:
    # packed-refs of a clone with many tags can pass 1 MiB; read it line by line, bounded.
    lines = []
    with path.open("rb") as stream:
        for number, raw in enumerate(stream):
            if number > 1_000_000:
                raise UpstreamError(f"{path}: too many refs to read")
            lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
    return lines


def _resolve_head(root: Path, git_dir: Path, common: Path) -> str:
    """HEAD's commit id, followed through symbolic refs by hand (no git, no config)."""
    text = _read_small(git_dir / "HEAD").strip()
    for _ in range(_MAX_SYMREF_DEPTH):
        if _COMMIT.fullmatch(text):
            return text
        if not text.startswith("ref: "):
            break
        name = text.removeprefix("ref: ").strip()
        if not _REF.fullmatch(name) or ".." in name.split("/"):
            break
        for base in (git_dir, common):
            if (base / name).is_file():
                text = _read_small(base / name).strip()
                break
        else:
            if (packed := _packed_ref(common, name)) is not None:
                return packed
            raise UpstreamError(f"{root}: HEAD names {name}, which does not exist (an empty repository?)")
    raise UpstreamError(f"{root}: HEAD is {text[:80]!r}, not a commit; check out the audited commit")


def _private_git_dir(scratch: Path, git_dir: Path, common: Path, commit: str) -> Path:
    private = scratch / "git"
    (private / "objects" / "info").mkdir(parents=True)
    (private / "refs").mkdir()
    (private / "objects" / "info" / "alternates").write_text(f"{(common / 'objects').resolve()}\n", encoding="utf-8")
    (private / "HEAD").write_text(f"{commit}\n", encoding="utf-8")
    extension = "\n[extensions]\n\tobjectFormat = sha256\n" if len(commit) == 64 else ""
    version = 1 if extension else 0
    (private / "config").write_text(
        f"[core]\n\trepositoryformatversion = {version}\n\tbare = false\n{extension}", encoding="utf-8"
    )
    # The index carries the skip-worktree bits of a sparse checkout; a split index its shared part.
    for source in [git_dir / "index", *git_dir.glob("sharedindex.*")]:
        if source.is_file():
            shutil.copyfile(source, private / source.name)
    if (common / "shallow").is_file():
        shutil.copyfile(common / "shallow", private / "shallow")
    return private


def _environment(scratch: Path, private: Path, root: Path) -> dict[str, str]:
    # Built from nothing rather than filtered from os.environ: no GIT_* or config path leaks in.
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LC_ALL": "C",
        "HOME": str(scratch),
        "XDG_CONFIG_HOME": str(scratch),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_SYSTEM": os.devnull,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_DIR": str(private),
        "GIT_WORK_TREE": str(root.resolve()),
    }


def _git(env: dict[str, str], root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    pinned = [item for key in _PINNED_KEYS for item in ("-c", key)]
    try:
        return subprocess.run(
            ["git", "--no-pager", *pinned, *args],
            cwd=env["GIT_WORK_TREE"],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed; it is needed to audit the upstream checkout") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{root}: git {args[0]} took over {_TIMEOUT_SECONDS} s; try again") from None


def read_checkout(root: Path, hint: str) -> CheckoutState:
    """HEAD's commit and the tracked files that differ from it; ``UpstreamError`` if ``root`` is no checkout.

    ``hint`` ends messages about a missing or broken checkout (how to get a good one).
    """
    git_dir, common = _git_dirs(root, hint)
    commit = _resolve_head(root, git_dir, common)
    scratch = Path(tempfile.mkdtemp(prefix="u2netp-mirror-audit-"))
    try:
        env = _environment(scratch, _private_git_dir(scratch, git_dir, common, commit), root)
        kind = _git(env, root, "cat-file", "-t", commit)
        if kind.returncode != 0 or kind.stdout.strip() != "commit":
            raise UpstreamError(f"{root}: HEAD {commit[:12]} is not a commit in its object store ({last_line(kind)})")
        status = _git(env, root, "status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all")
        if status.returncode != 0:
            raise UpstreamError(f"{root}: git status failed ({last_line(status)}); {hint}")
    finally:
        _remove(scratch)
    return CheckoutState(commit=commit, changes=tuple(line for line in status.stdout.splitlines() if line.strip()))


def _remove(scratch: Path) -> None:
    # Ctrl-C kills git mid-run, and a dying git may still be writing its index.lock while the
    # tree is removed: try again briefly rather than leave the directory behind.
    for _ in range(5):
        shutil.rmtree(scratch, ignore_errors=True)
        if not scratch.exists():
            return
        time.sleep(0.05)
