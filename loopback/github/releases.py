"""The Releases API's records: releases and assets as the API shows them, and the routes that
list, create, publish, rename and delete them."""

from __future__ import annotations

import json
import shutil
from http.server import BaseHTTPRequestHandler
from typing import Any

from .state import HOSTILE_ASSET_ID, Answer, Asset, Fault, Release, already_exists, body_chunks, content_length


class ReleaseRoutes:
    """Mixed into ``GitHubServer``: the state it reads is the server's."""

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
            "browser_download_url": self._browser_url(asset),
        }

    def _browser_url(self, asset: Asset) -> str:
        # github.com's shape, OWNER/REPO/releases/download/TAG/NAME (a redirect to the bytes), for
        # what a browser, curl or pooch fetches; a draft's assets have no such URL (GitHub's
        # points at an untagged-… name that only works with a token).
        found = self._find_asset(asset.id)
        tag = found[0].tag_name if found is not None else "untagged"
        return f"{self.root}/{self.repo}/releases/download/{tag}/{asset.name}"

    def browser_download(self, repo: str, tag: str, name: str) -> Answer:
        """GET OWNER/REPO/releases/download/TAG/NAME: a published release's asset, by redirect."""
        release = next((r for r in self.published(tag)), None) if repo == self.repo else None
        asset = next((a for a in release.assets.values() if a.name == name), None) if release else None
        if asset is None or asset.state != "uploaded":
            return 404, {"message": "Not Found"}, {}
        return 302, b"", {"Location": f"{self.root}/download/{asset.id}/{asset.name}"}

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

    def _json_body(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        return json.loads(b"".join(body_chunks(request, content_length(request))) or b"{}")

    def _by_tag(self, tag: str) -> Answer:
        release = self.release_by_tag(tag)
        if release is None or release.draft:
            return self._error(404, "Not Found")
        return 200, self._release_json(release), {}

    def _assets_of(self, release_id: int, query: dict[str, list[str]], path: str) -> Answer:
        release = self.releases.get(release_id)
        if release is None:
            return self._error(404, "Not Found")
        return self._paginate([self._asset_json(a) for a in release.assets.values()], query, path)

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

    def _create_release(self, request: BaseHTTPRequestHandler) -> Answer:
        body = self._json_body(request)
        with self._lock:
            # Like GitHub: several drafts may share a tag; a published release owns it.
            if self.published(body["tag_name"]):
                return already_exists("Release", "tag_name")
            release = Release(
                next(self._ids),
                body["tag_name"],
                body.get("name", ""),
                body.get("body", ""),
                bool(body.get("draft", False)),
            )
            self.releases[release.id] = release
        if self._take_fault(Fault.CREATE_500):
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
                if publishing and self._take_fault(Fault.PUBLISH_RACE):
                    self._publish_copy(release)
                if publishing and self.published(release.tag_name):
                    return already_exists("Release", "tag_name")
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
                    return already_exists("ReleaseAsset", "name")
                asset.name = body["name"]
            return 200, self._asset_json(asset), {}
        return self._error(405, "Method Not Allowed")
