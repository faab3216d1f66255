"""A loopback HTTP server that behaves like GitHub's Releases API, faults and hostile answers included.

What it models (REST API 2022-11-28): releases listed with pagination (drafts only for an
authenticated caller), the by-tag endpoint hiding drafts, create/update/delete releases (422
``already_exists`` when a second release would be published for a tag), the ``upload_url``
template on its own upload path, streamed uploads (body hashed and written to disk, never
held in memory) giving assets with ``state`` and ``digest`` (``sha256:…``), 422
``already_exists`` on a duplicate asset name, 422 on uploads to an immutable published
release, asset rename and delete, and asset downloads that redirect to a separate path.

One-shot faults (``state.Fault``) are queued with ``fail(fault, times)`` and hit the next matching requests:

* ``create_500``: create the release, then answer 500 (the client must not duplicate it);
* ``upload_502_starter``: read the whole upload, keep a ``starter`` asset, answer 502;
* ``upload_reset``: read part of the upload, then drop the connection;
* ``rate_limit_429``: 429 with ``Retry-After: 1``;
* ``secondary_403``: 403 "secondary rate limit" with ``Retry-After: 1``;
* ``api_500``: any API request answers 500;
* ``forbidden_403``: 403 "Resource not accessible by integration" (no ``contents: write``);
* ``upload_race``: another uploader finishes the same asset first; this upload gets 422;
* ``publish_race``: another run publishes its own copy of the release for the tag just
  before this publish, which GitHub then refuses with 422 ``already_exists``.

Switches (attributes) make the server misbehave for as long as they are set:

* ``no_digests``: assets carry no ``digest`` (older GitHub Enterprise);
* ``corrupt_uploads``: the stored copy of every upload has one byte changed;
* ``hostile_asset_ids``: asset ids are strings such as ``1/../../../some/dir/VICTIM.txt``;
* ``drop_release_keys``: keys left out of every release object (e.g. ``{"tag_name"}``);
* ``html_instead_of_json``: list endpoints answer 200 with an HTML page;
* ``next_link``: a ``Link: rel="next"`` to this URL (e.g. on another host) on every list;
* ``error_message``: the ``message`` of every error answer (e.g. with newlines and ANSI escapes);
* ``download_mode``: "truncated" or "oversized" (bodies without Content-Length), "trickle"
  (one byte every ``trickle_seconds``), "bad_length" (``Content-Length: abc``),
  "redirect_loop", "file_redirect" (to ``file:///etc/passwd``), "foreign_redirect" (to
  ``foreign_host``, recording whether the token came along);
* ``slow_mode``: one byte every ``trickle_seconds`` of "list_headers" (the headers of the
  release listing), "list_body" (its JSON body) or "download_headers" (an asset download's
  headers): a server that never stalls long enough for a read timeout, yet never finishes.

The package: ``state.py`` (records, faults and the answers routes share), ``releases.py``
(the REST routes on releases and asset records), ``transfers.py`` (streamed uploads and
downloads); this facade holds the switches and the route table.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..http import LoopbackService, reply
from .attestations import AttestationRoutes
from .releases import ReleaseRoutes
from .state import (
    API_VERSION,
    HOSTILE_ASSET_ID,
    MUTATING,
    Answer,
    Asset,
    Fault,
    Release,
    body_chunks,
    content_length,
)
from .transfers import AssetTransfers, trickle

__all__ = ["HOSTILE_ASSET_ID", "Asset", "Fault", "GitHubServer", "Release"]

# (method or None for any, path pattern) -> the route, given the request, the match, the query
# and whether the caller is authenticated.
Handler = Callable[[BaseHTTPRequestHandler, str, re.Match[str], dict[str, list[str]], bool], Answer | None]


class GitHubServer(ReleaseRoutes, AssetTransfers, AttestationRoutes, LoopbackService):
    """``start()`` / ``stop()``; ``url`` is the API base, e.g. http://127.0.0.1:PORT/api/v3."""

    def __init__(self, token: str, repo: str = "example/u2netp-mirror") -> None:
        super().__init__()
        self.token = token
        self.repo = repo
        self.releases: dict[int, Release] = {}
        self.header_problems: list[str] = []
        self.faults: Counter[Fault] = Counter()
        self.immutable_on_publish = False
        # Switches: see the module docstring.
        self.no_digests = False
        self.corrupt_uploads = False
        self.hostile_asset_ids = False
        self.drop_release_keys: set[str] = set()
        self.html_instead_of_json = False
        self.next_link: str | None = None
        self.error_message: str | None = None
        self.download_mode = "normal"
        self.trickle_seconds = 0.25
        self.slow_mode: str | None = None
        self.foreign_host = ""
        # Authorization headers seen by the "foreign" download host (must stay empty).
        self.foreign_authorizations: list[str] = []
        # The artifact attestations stored (attestations.py); the switch answers 403 to a store,
        # as GitHub does for a token without `attestations: write`.
        self.attestations: list[dict[str, Any]] = []
        self.attestations_forbidden = False
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()  # re-entered: a fault is taken while the state is locked
        self._storage = Path(tempfile.mkdtemp(prefix="github-server-"))
        self._routes = self._route_table()

    @property
    def url(self) -> str:
        return f"{self.root}/api/v3"

    def fail(self, fault: Fault | str, times: int = 1) -> None:
        self.faults[Fault(fault)] += times  # an unknown fault's name is a ValueError, not a silent no-op

    def _take_fault(self, fault: Fault) -> bool:
        with self._lock:
            if self.faults[fault] > 0:
                self.faults[fault] -= 1
                return True
        return False

    def mutating_requests(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method in MUTATING]

    def stopped(self) -> None:
        shutil.rmtree(self._storage, ignore_errors=True)

    # -- routing ---------------------------------------------------------------------------

    def _route_table(self) -> list[tuple[str | None, re.Pattern[str], Handler]]:
        releases = re.escape(f"/api/v3/repos/{self.repo}/releases")
        attestations = re.escape(f"/api/v3/repos/{self.repo}/attestations")
        table: list[tuple[str | None, str, Handler]] = [
            ("GET", releases, lambda request, m, query, auth: self._list_releases(query, auth)),
            ("GET", releases + r"/tags/(?P<tag>.+)", lambda request, m, query, auth: self._by_tag(m["tag"])),
            ("POST", releases, lambda request, m, query, auth: self._create_release(request)),
            (
                None,
                releases + r"/(?P<id>\d+)",
                lambda request, m, query, auth: self._release_item(request, request.command, int(m["id"])),
            ),
            (
                "GET",
                releases + r"/(?P<id>\d+)/assets",
                lambda request, m, query, auth: self._assets_of(int(m["id"]), query, m.string),
            ),
            (
                None,
                releases + r"/assets/(?P<id>\d+)",
                lambda request, m, query, auth: self._asset_item(request, request.command, int(m["id"])),
            ),
            (
                "POST",
                attestations,
                lambda request, m, query, auth: self._store_attestation(request),
            ),
            (
                "GET",
                re.escape(f"/api/v3/repos/{self.repo}/attestations/")
                + r"(?P<algorithm>[a-z0-9]+):(?P<digest>[0-9a-f]+)",
                lambda request, m, query, auth: self._attestations_for(m["algorithm"], m["digest"]),
            ),
            (
                "POST",
                re.escape(f"/uploads/repos/{self.repo}/releases/") + r".*",
                lambda request, m, query, auth: self._upload(request, m.string, query),
            ),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    def _check_headers(self, request: BaseHTTPRequestHandler, method: str, path: str) -> None:
        if request.headers.get("X-GitHub-Api-Version") != API_VERSION:
            self.header_problems.append(f"{method} {path}: X-GitHub-Api-Version")
        accept = request.headers.get("Accept", "")
        if accept not in ("application/vnd.github+json", "application/octet-stream"):
            self.header_problems.append(f"{method} {path}: Accept {accept!r}")

    def _fault_answer(self, request: BaseHTTPRequestHandler, method: str, authenticated: bool) -> Answer | None:
        """A queued fault's answer for this request, or None to serve it."""
        answer: Answer | None = None
        if self._take_fault(Fault.API_500):
            answer = self._error(500, "Server Error")
        elif self._take_fault(Fault.RATE_LIMIT_429):
            answer = 429, {"message": "API rate limit exceeded"}, {"Retry-After": "1"}
        elif self._take_fault(Fault.SECONDARY_403):
            message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            answer = 403, {"message": message}, {"Retry-After": "1"}
        elif method in MUTATING and self._take_fault(Fault.FORBIDDEN_403):
            answer = self._error(403, "Resource not accessible by integration")
        elif method in MUTATING and not authenticated:
            answer = self._error(401, "Requires authentication")
        if answer is not None:
            self._drain(request)
        return answer

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> Answer | None:
        """Answer one request: (status, JSON body or bytes, headers), or None if already answered."""
        parts = urlsplit(request.path)
        path, query = parts.path, parse_qs(parts.query)
        self.requests.append((method, path))
        authorization = request.headers.get("Authorization", "")
        if path.startswith("/foreign/"):
            self.foreign_authorizations.append(authorization)
            return self._download(request, "/download/" + path.removeprefix("/foreign/"))
        authenticated = authorization in (f"Bearer {self.token}", f"token {self.token}")
        if authorization and not authenticated:
            return self._error(401, "Bad credentials")
        if path.startswith("/download/"):
            return self._download(request, path)
        if method == "GET" and (web := re.fullmatch(r"/([^/]+/[^/]+)/releases/download/([^/]+)/([^/]+)", path)):
            return self.browser_download(web.group(1), web.group(2), web.group(3))
        self._check_headers(request, method, path)
        if (faulted := self._fault_answer(request, method, authenticated)) is not None:
            return faulted
        for route_method, pattern, handler in self._routes:
            if (route_method is None or route_method == method) and (match := pattern.fullmatch(path)):
                return handler(request, match, query, authenticated)
        return self._error(404, "Not Found")

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        try:
            answer = self.handle(handler, method)
        except (ConnectionError, OSError):
            return
        if answer is None:
            return
        status, body, _ = answer
        listing = method == "GET" and handler.path.split("?", 1)[0].endswith("/releases")
        if listing and self.slow_mode in ("list_headers", "list_body"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            handler.close_connection = True
            if self.slow_mode == "list_headers":
                trickle(handler, head.encode() + data, self.trickle_seconds)
            else:
                handler.wfile.write(head.encode())
                trickle(handler, data, self.trickle_seconds)
            return
        reply(handler, answer)

    def _error(self, status: int, message: str, **extra: Any) -> Answer:
        return status, {"message": self.error_message or message, **extra}, {}

    def _drain(self, request: BaseHTTPRequestHandler) -> None:
        for _ in body_chunks(request, content_length(request)):
            pass
