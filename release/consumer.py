"""``fetch``: one call for a consumer (an application, a notebook) to get a verified model.

::

    from release.consumer import fetch

    onnx_path = fetch("OWNER/REPO", "u2netp-mirror-v1.0.0")

It downloads the release and verifies it exactly as ``u2netp-mirror verify --repo --tag`` does
(the same settings object and the same checks), keeps it in a cache keyed by repository, tag and
the ONNX's sha256 (``CACHE/OWNER%2FNAME/TAG/SHA256/``, with ``verified.json`` beside it), and
returns the ONNX's path.  A later call with the same verification
settings re-checks the cached files' sha256 offline and returns at once; a cached file that
changed is reported and the release is fetched and verified again.  Torch-free.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mirror.atomic import write_bytes_atomic
from mirror.contract import ONNX_NAME
from mirror.errors import UsageError
from mirror.hashing import is_sha256_hex, sha256_file
from mirror.jsonio import StrictJSONError, loads_strict
from mirror.reporting import SILENT, Reporter
from mirror.settings import UpstreamPin, shipped_defaults

from .verify import VerifySettings, run_verify

RECORD = "verified.json"
RECORD_SCHEMA = "u2netp-mirror-fetch-cache-v1"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/u2netp-mirror``, else ``~/.cache/u2netp-mirror``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "u2netp-mirror"


def fetch(
    repo: str,
    tag: str,
    cache_dir: str | Path | None = None,
    *,
    identity: str | None = None,
    identity_regexp: str | None = None,
    issuer: str | None = None,
    trust_config: str | Path | None = None,
    staging: bool = False,
    pins: UpstreamPin | None = None,
    allow_unpinned: bool = False,
    require_evaluation: bool = False,
    api_url: str | None = None,
    timeout: float | None = None,
    reporter: Reporter = SILENT,
) -> Path:
    """The path of the verified ONNX of release ``tag`` of ``repo``, fetched into ``cache_dir`` if needed.

    The options are ``u2netp-mirror verify``'s; by default the signer is ``repo``'s release
    workflow at ``tag`` and the pins are those this version ships.  Raises what verify raises
    (``release.errors.VerificationFailed`` for a failed check, ``mirror.errors.RemoteError`` for a
    release that cannot be fetched); nothing unverified is ever left in the cache.
    """
    settings = VerifySettings.from_config(
        shipped_defaults()["u2netp"],
        dist=".",  # replaced below, once the target is checked
        repo=repo,
        tag=tag,
        api_url=api_url,
        identity=identity,
        identity_regexp=identity_regexp,
        issuer=issuer,
        staging=staging,
        trust_config=trust_config,
        pins=pins,
        allow_unpinned=allow_unpinned,
        require_evaluation=require_evaluation,
        timeout=timeout,
    )
    if settings.target is None:
        raise UsageError("fetch needs the repository and the tag of the release")
    # The repository is checked by then (OWNER/NAME); quoting keeps a tag's "/" out of the path,
    # and a tag that would still name a directory of its own ("." or "..") is refused.
    tag_part = quote(tag, safe="")
    if tag_part in ("", ".", ".."):
        raise UsageError(f"--tag {tag!r}: not a release tag")
    entry = Path(cache_dir or default_cache_dir()) / quote(settings.target.repo, safe="") / tag_part
    policy = _policy(settings)
    if (cached := _cached(entry, policy, reporter)) is not None:
        return cached
    # Verified in a directory of its own, then filed under the ONNX's sha256: the cache is keyed
    # by tag and digest, so a tag whose release was replaced never mixes two releases' files.
    incoming = entry / "incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    run_verify(replace(settings, dist=incoming), reporter)
    files = {path.name: sha256_file(path) for path in sorted(incoming.iterdir()) if path.is_file()}
    release = entry / files[ONNX_NAME]
    shutil.rmtree(release, ignore_errors=True)
    os.replace(incoming, release)
    record = {"schema": RECORD_SCHEMA, "repo": repo, "tag": tag, "policy": policy, "files": files}
    write_bytes_atomic(entry / RECORD, json.dumps(record, indent=2, sort_keys=True).encode("utf-8"))
    return release / ONNX_NAME


def _policy(settings: VerifySettings) -> dict[str, Any]:
    """What the cached files were verified against: a different demand means verifying again."""
    instance = settings.instance
    trust = None
    if instance.trust_config is not None:
        trust = sha256_file(Path(instance.trust_config))
    return {
        "signer": settings.expected.label,
        "instance": "staging" if instance.staging else ("trust_config " + trust if trust else "production"),
        "pins": {key: value for key, value in vars(settings.pins).items() if key != "source"},
        "allow_unpinned": settings.allow_unpinned,
        "require_evaluation": settings.require_evaluation,
        "provenance": settings.provenance,
    }


def _cached(entry: Path, policy: Mapping[str, Any], reporter: Reporter) -> Path | None:
    """The cached ONNX if the record matches ``policy`` and every recorded file still has its sha256."""
    try:
        record = loads_strict((entry / RECORD).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, StrictJSONError):
        record = None
    fine = isinstance(record, dict) and record.get("schema") == RECORD_SCHEMA and isinstance(record.get("files"), dict)
    if not fine or record.get("policy") != json.loads(json.dumps(policy)):
        reporter.line(f"{entry}: cached under other verification settings (or unreadable); verifying again")
        _discard(entry)
        return None
    files = record["files"]
    digest = files.get(ONNX_NAME)
    if not is_sha256_hex(digest):
        _discard(entry)
        return None
    release = entry / digest
    for name, digest in files.items():
        path = release / name
        if name != Path(name).name or not path.is_file() or sha256_file(path) != digest:
            reporter.line(f"{path}: changed since it was verified; fetching the release again")
            _discard(entry)
            return None
    reporter.line(f"{release}: verified before; every file still has its sha256 (checked offline)")
    return release / ONNX_NAME


def _discard(entry: Path) -> None:
    # Everything under the tag's entry is ours: the record and the releases filed by digest.
    shutil.rmtree(entry, ignore_errors=True)
