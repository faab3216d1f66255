"""What GitHub sends, checked for type and shape before anything uses it.

The server is not trusted: every id, name, state, size, digest and URL in its answers is
checked here, and the typed records below are all the rest of the code sees.  Ids are
integers, names are plain file names (compared, never used as paths), digests are sha256
hex, sizes are within GitHub's limit, and URLs are HTTPS (plain HTTP only on loopback).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from .errors import GitHubError
from .redact import printable

# GitHub refuses release assets of 2 GiB or more; an announced size beyond it is a lie.
MAX_ASSET_SIZE = 2 << 30
_MAX_ID = 2**63 - 1
_NAME = re.compile(r"[^\x00-\x1f\x7f/\\]{1,255}")
_STATE = re.compile(r"[a-z_]{1,32}")
_TAG = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only hosts plain HTTP is allowed to."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Origin = tuple[str, str, int]


def origin(url: str) -> Origin:
    """(scheme, host, port) of ``url``, the unit a token is scoped to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def check_url(url: str, what: str) -> str:
    """``url`` if it is absolute HTTPS, or HTTP to a loopback host; a ``GitHubError`` otherwise."""
    parts = urlsplit(url)
    scheme, host, port = origin(url)
    if scheme not in ("https", "http") or not host or port < 0:
        raise GitHubError(f"{what} {printable(url, 120)!r}: not an HTTPS URL; refusing it")
    if scheme == "http" and not is_loopback(host):
        raise GitHubError(
            f"{what} {printable(url, 120)!r}: plain HTTP is allowed only to 127.0.0.1 or localhost; use https://"
        )
    if parts.username or parts.password:
        raise GitHubError(f"{what}: a URL with credentials in it; refusing it")
    return url


def check_api_url(url: str) -> str:
    """The API base, checked and without a trailing slash."""
    check_url(url, "--api-url")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise GitHubError(f"--api-url {printable(url, 120)!r}: expected a base URL without ? or #")
    return url.rstrip("/")


def redirect_target(location: object, current: str) -> str:
    """Where a redirect points, resolved against ``current``, if it is safe to follow."""
    if not isinstance(location, str) or not location:
        raise GitHubError("a redirect without a Location; refusing it")
    return check_url(urljoin(current, location), "redirected to")


def _malformed(what: str, problem: str) -> GitHubError:
    return GitHubError(f"GitHub sent a malformed {what} ({problem}); refusing to go on")


def _field(document: dict[str, Any], key: str, kind: type, what: str) -> Any:
    if key not in document:
        raise _malformed(what, f"no {key!r}")
    value = document[key]
    # bool is an int in Python; an id of `true` is not an id.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(what, f"{key!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _identifier(document: dict[str, Any], what: str) -> int:
    value = _field(document, "id", int, what)
    if not 0 < value <= _MAX_ID:
        raise _malformed(what, f"id {value} out of range")
    return int(value)


@dataclass(frozen=True)
class RemoteAsset:
    """A release asset as the API describes it."""

    id: int
    name: str
    state: str
    size: int
    # Hex sha256 from the API's ``digest`` ("sha256:…"); None where the server gives none.
    sha256: str | None

    @property
    def uploaded(self) -> bool:
        return self.state == "uploaded"

    @classmethod
    def parse(cls, document: object) -> RemoteAsset:
        what = "release asset"
        if not isinstance(document, dict):
            raise _malformed(what, f"a {type(document).__name__}, expected an object")
        name = _field(document, "name", str, what)
        if not _NAME.fullmatch(name):
            raise _malformed(what, f"name {printable(name, 80)!r}")
        state = _field(document, "state", str, what)
        if not _STATE.fullmatch(state):
            raise _malformed(what, f"state {printable(state, 40)!r}")
        size = _field(document, "size", int, what)
        if not 0 <= size <= MAX_ASSET_SIZE:
            raise _malformed(what, f"size {size}")
        digest = document.get("digest")
        if digest is None:
            sha256 = None
        elif isinstance(digest, str) and (match := _DIGEST.fullmatch(digest)):
            sha256 = match.group(1)
        else:
            raise _malformed(what, f"digest {printable(digest, 80)!r}, expected sha256:<64 hex digits>")
        return cls(id=_identifier(document, what), name=name, state=state, size=size, sha256=sha256)


@dataclass(frozen=True)
class RemoteRelease:
    """A release as the API describes it; ``upload_url`` without its URI template."""

    id: int
    tag_name: str
    draft: bool
    html_url: str
    upload_url: str

    @classmethod
    def parse(cls, document: object) -> RemoteRelease:
        what = "release"
        if not isinstance(document, dict):
            raise _malformed(what, f"a {type(document).__name__}, expected an object")
        tag = _field(document, "tag_name", str, what)
        if not _TAG.fullmatch(tag):
            raise _malformed(what, f"tag_name {printable(tag, 80)!r}")
        html_url = _field(document, "html_url", str, what)
        upload_url = _field(document, "upload_url", str, what).split("{", 1)[0]  # drop {?name,label}
        check_url(html_url, "the release's html_url")
        check_url(upload_url, "the release's upload_url")
        return cls(
            id=_identifier(document, what),
            tag_name=tag,
            draft=_field(document, "draft", bool, what),
            html_url=html_url,
            upload_url=upload_url,
        )
