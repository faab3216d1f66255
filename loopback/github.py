"""A loopback HTTP server that behaves like GitHub's Releases API, faults and hostile answers included.

What it models (REST API 2022-11-28): releases listed with pagination (drafts only for an
authenticated caller), the by-tag endpoint hiding drafts, create/update/delete releases (422
``already_exists`` when a second release would be published for a tag), the ``upload_url``
template on its own upload path, streamed uploads (body hashed and written to disk, never
held in memory) giving assets with ``state`` and ``digest`` (``sha256:…``), 422
``already_exists`` on a duplicate asset name, 422 on uploads to an immutable published
release, asset rename and delete, and asset downloads that redirect to a separate path.

One-shot faults are queued with ``fail(kind, times)`` and hit the next matching requests:

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
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .http import LoopbackHTTPServer

API_VERSION = "2022-11-28"
_MUTATING = {"POST", "PATCH", "DELETE", "PUT"}
HOSTILE_ASSET_ID = "1/../../../some/dir/VICTIM.txt"
Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Asset:
    id: int
    name: str
    path: Path
    size: int = 0
    digest: str | None = None
    state: str = "starter"
    content_type: str = "application/octet-stream"


@dataclass
class Release:
    id: int
    tag_name: str
    name: str
    body: str
    draft: bool
    immutable: bool = False
    assets: dict[int, Asset] = field(default_factory=dict)


class GitHubServer:
    """``start()`` / ``stop()``; ``url`` is the API base, e.g. http://127.0.0.1:PORT/api/v3."""

    def __init__(self, token: str, repo: str = "example/u2netp-mirror") -> None:
        self.token = token
        self.repo = repo
        self.releases: dict[int, Release] = {}
        self.requests: list[tuple[str, str]] = []
        self.header_problems: list[str] = []
        self.faults: Counter[str] = Counter()
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
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()  # re-entered: a fault is taken while the state is locked
        self._storage = Path(tempfile.mkdtemp(prefix="github-server-"))
        self._server: ThreadingHTTPServer | None = None
        self.root = ""

    @property
    def url(self) -> str:
        return f"{self.root}/api/v3"

    def fail(self, kind: str, times: int = 1) -> None:
        self.faults[kind] += times

    def _take_fault(self, kind: str) -> bool:
        with self._lock:
            if self.faults[kind] > 0:
                self.faults[kind] -= 1
                return True
        return False

    def mutating_requests(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method in _MUTATING]

    # -- state as the API shows it ---------------------------------------------------------

    def _asset_json(self, asset: Asset) -> dict[str, Any]:
        return {
            "id": HOSTILE_ASSET_ID if self.hostile_asset_ids else asset.id,
            "name": asset.name,
            "label": "",
            "state": asset.state,
            "size": asset.size,
            "digest": asset.digest if asset.state == "uploaded" and not self.no_digests else None,
            "content_type": asset.content_type,
            "url": f"{self.url}/repos/{self.repo}/releases/assets/{asset.id}",
            "browser_download_url": f"{self.root}/download/{asset.id}/{asset.name}",
        }

    def _release_json(self, release: Release) -> dict[str, Any]:
        document = {
            "id": release.id,
            "tag_name": release.tag_name,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "immutable": release.immutable,
            "html_url": f"https://github.invalid/{self.repo}/releases/tag/{release.tag_name}",
            "url": f"{self.url}/repos/{self.repo}/releases/{release.id}",
            "upload_url": f"{self.root}/uploads/repos/{self.repo}/releases/{release.id}/assets{{?name,label}}",
            "assets": [self._asset_json(a) for a in release.assets.values()],
        }
        return {key: value for key, value in document.items() if key not in self.drop_release_keys}

    def release_by_tag(self, tag: str) -> Release | None:
        return next((r for r in self.releases.values() if r.tag_name == tag), None)

    def published(self, tag: str) -> list[Release]:
        return [r for r in self.releases.values() if r.tag_name == tag and not r.draft]

    def asset_bytes(self, asset: Asset) -> bytes:
        return asset.path.read_bytes()

    def add_release(self, tag: str, draft: bool = True) -> Release:
        """A release made outside the API (the test's setup)."""
        release = Release(id=next(self._ids), tag_name=tag, name="", body="", draft=draft)
        self.releases[release.id] = release
        return release

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> GitHubServer:
        server = LoopbackHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.root = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server  # only a running server is ever shut down (shutdown() waits for its loop)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        shutil.rmtree(self._storage, ignore_errors=True)

    # -- request handling ------------------------------------------------------------------

    def _error(self, status: int, message: str, **extra: Any) -> Answer:
        return status, {"message": self.error_message or message, **extra}, {}

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
        if request.headers.get("X-GitHub-Api-Version") != API_VERSION:
            self.header_problems.append(f"{method} {path}: X-GitHub-Api-Version")
        accept = request.headers.get("Accept", "")
        if accept not in ("application/vnd.github+json", "application/octet-stream"):
            self.header_problems.append(f"{method} {path}: Accept {accept!r}")
        if self._take_fault("api_500"):
            self._drain(request)
            return self._error(500, "Server Error")
        if self._take_fault("rate_limit_429"):
            self._drain(request)
            return 429, {"message": "API rate limit exceeded"}, {"Retry-After": "1"}
        if self._take_fault("secondary_403"):
            self._drain(request)
            message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            return 403, {"message": message}, {"Retry-After": "1"}
        if method in _MUTATING and self._take_fault("forbidden_403"):
            self._drain(request)
            return self._error(403, "Resource not accessible by integration")
        if method in _MUTATING and not authenticated:
            self._drain(request)
            return self._error(401, "Requires authentication")

        prefix = f"/api/v3/repos/{self.repo}/releases"
        upload_prefix = f"/uploads/repos/{self.repo}/releases/"
        if method == "GET" and path == prefix:
            return self._list_releases(query, authenticated)
        if method == "GET" and path.startswith(prefix + "/tags/"):
            release = self.release_by_tag(path.removeprefix(prefix + "/tags/"))
            if release is None or release.draft:
                return self._error(404, "Not Found")
            return 200, self._release_json(release), {}
        if method == "POST" and path == prefix:
            return self._create_release(request)
        if match := re.fullmatch(re.escape(prefix) + r"/(\d+)", path):
            return self._release_item(request, method, int(match.group(1)))
        if method == "GET" and (match := re.fullmatch(re.escape(prefix) + r"/(\d+)/assets", path)):
            release = self.releases.get(int(match.group(1)))
            if release is None:
                return self._error(404, "Not Found")
            return self._paginate([self._asset_json(a) for a in release.assets.values()], query, path)
        if match := re.fullmatch(re.escape(prefix) + r"/assets/(\d+)", path):
            return self._asset_item(request, method, int(match.group(1)))
        if method == "POST" and path.startswith(upload_prefix):
            return self._upload(request, path, query)
        return self._error(404, "Not Found")

    def _drain(self, request: BaseHTTPRequestHandler) -> None:
        remaining = int(request.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = request.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _json_body(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(request.headers.get("Content-Length") or 0)
        return json.loads(request.rfile.read(length) or b"{}")

    def _paginate(self, items: list[Any], query: dict[str, list[str]], path: str) -> Answer:
        if self.html_instead_of_json:
            return 200, b"<html><body>Sign in to GitHub</body></html>", {"Content-Type": "text/html; charset=utf-8"}
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if self.next_link:
            headers["Link"] = f'<{self.next_link}>; rel="next"'
        elif page * per_page < len(items):
            headers["Link"] = f'<{self.root}{path}?per_page={per_page}&page={page + 1}>; rel="next"'
        return 200, chunk, headers

    def _list_releases(self, query: dict[str, list[str]], authenticated: bool) -> Answer:
        visible = [
            self._release_json(r)
            for r in sorted(self.releases.values(), key=lambda r: -r.id)
            if authenticated or not r.draft
        ]
        return self._paginate(visible, query, f"/api/v3/repos/{self.repo}/releases")

    def _tag_taken(self) -> Answer:
        return (
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
            },
            {},
        )

    def _create_release(self, request: BaseHTTPRequestHandler) -> Answer:
        body = self._json_body(request)
        with self._lock:
            # Like GitHub: several drafts may share a tag; a published release owns it.
            if self.published(body["tag_name"]):
                return self._tag_taken()
            release = Release(
                next(self._ids),
                body["tag_name"],
                body.get("name", ""),
                body.get("body", ""),
                bool(body.get("draft", False)),
            )
            self.releases[release.id] = release
        if self._take_fault("create_500"):
            return self._error(500, "Server Error")
        return 201, self._release_json(release), {}

    def _publish_copy(self, release: Release) -> None:
        """Another run's release for the same tag, with the same assets, published first."""
        rival = Release(next(self._ids), release.tag_name, release.name, release.body, draft=False)
        for asset in release.assets.values():
            copy = Asset(next(self._ids), asset.name, self._storage / f"asset-{next(self._ids)}")
            shutil.copyfile(asset.path, copy.path)
            copy.size, copy.digest, copy.state = asset.size, asset.digest, asset.state
            rival.assets[copy.id] = copy
        self.releases[rival.id] = rival

    def _release_item(self, request: BaseHTTPRequestHandler, method: str, release_id: int) -> Answer:
        release = self.releases.get(release_id)
        if release is None:
            return self._error(404, "Not Found")
        if method == "GET":
            return 200, self._release_json(release), {}
        if method == "DELETE":
            with self._lock:
                del self.releases[release_id]
            for asset in release.assets.values():
                asset.path.unlink(missing_ok=True)
            return 204, b"", {}
        if method == "PATCH":
            body = self._json_body(request)
            with self._lock:
                publishing = release.draft and body.get("draft") is False
                if publishing and self._take_fault("publish_race"):
                    self._publish_copy(release)
                if publishing and self.published(release.tag_name):
                    return self._tag_taken()
                for key in ("name", "body", "draft"):
                    if key in body:
                        setattr(release, key, body[key])
            if not release.draft and self.immutable_on_publish:
                release.immutable = True
            return 200, self._release_json(release), {}
        return self._error(405, "Method Not Allowed")

    def _find_asset(self, asset_id: int) -> tuple[Release, Asset] | None:
        for release in list(self.releases.values()):
            if asset_id in release.assets:
                return release, release.assets[asset_id]
        return None

    def _asset_item(self, request: BaseHTTPRequestHandler, method: str, asset_id: int) -> Answer:
        found = self._find_asset(asset_id)
        if found is None:
            return self._error(404, "Not Found")
        release, asset = found
        if method == "GET":
            if request.headers.get("Accept") == "application/octet-stream":
                return 302, b"", {"Location": self._download_location(asset)}
            return 200, self._asset_json(asset), {}
        if release.immutable:
            return self._error(422, "Cannot modify an asset of an immutable release.")
        if method == "DELETE":
            del release.assets[asset_id]
            asset.path.unlink(missing_ok=True)
            return 204, b"", {}
        if method == "PATCH":
            body = self._json_body(request)
            if "name" in body:
                if any(a.name == body["name"] and a.id != asset_id for a in release.assets.values()):
                    return 422, {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}, {}
                asset.name = body["name"]
            return 200, self._asset_json(asset), {}
        return self._error(405, "Method Not Allowed")

    def _download_location(self, asset: Asset) -> str:
        if self.download_mode == "redirect_loop":
            return f"{self.url}/repos/{self.repo}/releases/assets/{asset.id}"
        if self.download_mode == "file_redirect":
            return "file:///etc/passwd"
        if self.download_mode == "foreign_redirect":
            return f"{self.foreign_host}/foreign/{asset.id}/{asset.name}"
        return f"{self.root}/download/{asset.id}/{asset.name}"

    def _upload(self, request: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> Answer | None:
        match = re.fullmatch(rf"/uploads/repos/{re.escape(self.repo)}/releases/(\d+)/assets", path)
        release = self.releases.get(int(match.group(1))) if match else None
        name = query.get("name", [""])[0]
        if release is None or not name:
            self._drain(request)
            return self._error(404, "Not Found")
        if "Content-Length" not in request.headers:
            return self._error(411, "Length Required")
        if release.immutable:
            self._drain(request)
            return self._error(422, "Cannot upload assets to an immutable release.")
        with self._lock:
            duplicate = any(a.name == name for a in release.assets.values())
            if not duplicate:
                asset = Asset(
                    next(self._ids),
                    name,
                    self._storage / f"asset-{next(self._ids)}",
                    content_type=request.headers.get("Content-Type", ""),
                )
                release.assets[asset.id] = asset
        duplicate_answer = (
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
            },
            {},
        )
        if duplicate:
            self._drain(request)
            return duplicate_answer
        total = int(request.headers["Content-Length"])
        if self._take_fault("upload_race"):
            # The other uploader's copy lands first; ours is refused as a duplicate.
            self._receive(request, asset, total)
            asset.digest, asset.state = f"sha256:{hashlib.sha256(asset.path.read_bytes()).hexdigest()}", "uploaded"
            return duplicate_answer
        reset = self._take_fault("upload_reset")
        digest = hashlib.sha256()
        received = 0
        with asset.path.open("wb") as sink:
            while received < total:
                if reset and received >= total // 2:
                    request.close_connection = True
                    request.connection.shutdown(2)  # the peer sees a reset mid-upload
                    return None
                chunk = request.rfile.read(min(total - received, 1 << 20))
                if not chunk:
                    return None
                digest.update(chunk)
                sink.write(chunk)
                received += len(chunk)
        asset.size = received
        if self._take_fault("upload_502_starter"):
            return self._error(502, "Bad Gateway")  # the asset stays a starter
        if self.corrupt_uploads and received:
            data = bytearray(asset.path.read_bytes())
            data[received // 2] ^= 0xFF
            asset.path.write_bytes(bytes(data))
            digest = hashlib.sha256(bytes(data))
        asset.digest = f"sha256:{digest.hexdigest()}"
        asset.state = "uploaded"
        return 201, self._asset_json(asset), {}

    def _receive(self, request: BaseHTTPRequestHandler, asset: Asset, total: int) -> None:
        with asset.path.open("wb") as sink:
            remaining = total
            while remaining > 0:
                chunk = request.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                sink.write(chunk)
                remaining -= len(chunk)
        asset.size = total - remaining

    def _download(self, request: BaseHTTPRequestHandler, path: str) -> Answer | None:
        match = re.fullmatch(r"/download/(\d+)/.*", path)
        found = self._find_asset(int(match.group(1))) if match else None
        if found is None or found[1].state != "uploaded":
            return self._error(404, "Not Found")
        data = found[1].path.read_bytes() if self.download_mode != "normal" else None
        if self.slow_mode == "download_headers":
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {found[1].size}\r\n\r\n"
            )
            trickle(request, head.encode(), self.trickle_seconds)
            request.close_connection = True
            return None
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        if self.download_mode in ("truncated", "oversized", "trickle"):
            # No Content-Length: the body ends when the connection closes.
            request.close_connection = True
            request.send_header("Connection", "close")
            request.end_headers()
            assert data is not None
            body = data[: len(data) // 2] if self.download_mode == "truncated" else data
            if self.download_mode == "oversized":
                body += b"\0" * 4096
            if self.download_mode == "trickle":
                for index in range(len(body)):
                    request.wfile.write(body[index : index + 1])
                    request.wfile.flush()
                    time.sleep(self.trickle_seconds)
            else:
                request.wfile.write(body)
            return None
        if self.download_mode == "bad_length":
            request.send_header("Content-Length", "abc")
            request.send_header("Connection", "close")
            request.close_connection = True
            request.end_headers()
            assert data is not None
            request.wfile.write(data)
            return None
        asset = found[1]
        request.send_header("Content-Length", str(asset.size))
        request.end_headers()
        with asset.path.open("rb") as source:
            shutil.copyfileobj(source, request.wfile, 1 << 20)
        return None


def trickle(request: BaseHTTPRequestHandler, data: bytes, seconds: float) -> None:
    """Send ``data`` one byte every ``seconds`` until it is sent or the client hangs up."""
    try:
        for index in range(len(data)):
            request.wfile.write(data[index : index + 1])
            request.wfile.flush()
            time.sleep(seconds)
    except OSError:
        return


def _handler_for(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            try:
                answer = server.handle(self, method)
            except (ConnectionError, OSError):
                return
            if answer is None:
                return
            status, body, headers = answer
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            listing = method == "GET" and self.path.split("?", 1)[0].endswith("/releases")
            if listing and server.slow_mode in ("list_headers", "list_body"):
                head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                self.close_connection = True
                if server.slow_mode == "list_headers":
                    trickle(self, head.encode() + data, server.trickle_seconds)
                else:
                    self.wfile.write(head.encode())
                    trickle(self, data, server.trickle_seconds)
                return
            self.send_response(status)
            if "Content-Type" not in headers:
                self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                return

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler
