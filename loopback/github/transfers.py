"""Asset bytes: streamed uploads (hashed and written to disk, never held in memory) and
downloads, with the misbehaviours the tests ask for (truncated, oversized, trickling, …)."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from http.server import BaseHTTPRequestHandler

from .state import Answer, Asset, Fault, already_exists, body_chunks


class AssetTransfers:
    """Mixed into ``GitHubServer``: the state it reads is the server's."""

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
        duplicate_answer = already_exists("ReleaseAsset", "name")
        if duplicate:
            self._drain(request)
            return duplicate_answer
        total = int(request.headers["Content-Length"])
        if self._take_fault(Fault.UPLOAD_RACE):
            # The other uploader's copy lands first; ours is refused as a duplicate.
            self._receive(request, asset, total)
            asset.digest, asset.state = f"sha256:{hashlib.sha256(asset.path.read_bytes()).hexdigest()}", "uploaded"
            return duplicate_answer
        reset = self._take_fault(Fault.UPLOAD_RESET)
        digest = hashlib.sha256()
        received = 0
        with asset.path.open("wb") as sink:
            for chunk in body_chunks(request, total):
                if reset and received >= total // 2:
                    request.close_connection = True
                    request.connection.shutdown(2)  # the peer sees a reset mid-upload
                    return None
                digest.update(chunk)
                sink.write(chunk)
                received += len(chunk)
        if received < total:
            return None  # the client stopped sending
        asset.size = received
        if self._take_fault(Fault.UPLOAD_502_STARTER):
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
            for chunk in body_chunks(request, total):
                sink.write(chunk)
        asset.size = asset.path.stat().st_size

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
