"""The Releases REST calls (2022-11-28): list, create, publish and delete releases; list, rename
and delete assets.  Every answer is parsed into the typed records of ``remote.py`` first."""

from __future__ import annotations

from .errors import GitHubError
from .remote import RemoteAsset, RemoteRelease
from .transport import MAX_PAGES, PER_PAGE, Transport

# GitHub allows 1,000 assets per release; the releases of one repository are listed to 10,000.
MAX_ASSETS = 1000
MAX_RELEASES = MAX_PAGES * PER_PAGE


class ReleasesAPI(Transport):
    """The calls on releases and their assets' records (the bytes are ``transfers.py``'s)."""

    def releases_for(self, tag: str) -> list[RemoteRelease]:
        """Every release for ``tag``, drafts included (GitHub allows several drafts for one tag)."""
        found = (RemoteRelease.parse(item) for item in self._paginated(self._releases_path, "releases", MAX_RELEASES))
        return [release for release in found if release.tag_name == tag]

    def find_release(self, tag: str) -> RemoteRelease | None:
        """The release for ``tag``: the published one if there is one, else the oldest draft."""
        candidates = self.releases_for(tag)
        published = [release for release in candidates if not release.draft]
        if published:
            return published[0]
        return min(candidates, key=lambda release: release.id, default=None)

    def create_draft(self, tag: str, name: str, body: str) -> RemoteRelease:
        """Create a draft release.  GitHub allows several drafts for one tag, and a 500 or a
        dropped connection may still have created it: so each retry first looks for it."""
        payload = {"tag_name": tag, "name": name, "body": body, "draft": True}
        what = f"create release {tag}"
        url = f"{self.api_url}{self._releases_path}"

        def attempt() -> RemoteRelease:
            with self._bounded(f"POST {what}", self.retry.timeout):
                response = self._send_once("POST", url, what, (201,), json=payload)
                return RemoteRelease.parse(self._json(response, "POST", what, dict))

        try:
            return self._retrying(what, attempt, recover=lambda: self.find_release(tag))
        except GitHubError as exc:
            # 422 already_exists: a published release took the tag meanwhile; use it.
            if exc.code == "already_exists" and (release := self.find_release(tag)) is not None:
                return release
            raise

    def publish(self, release: RemoteRelease) -> RemoteRelease:
        """Make a draft public.  GitHub answers 422 ``already_exists`` if another release took the tag."""
        url = f"{self.api_url}{self._releases_path}/{release.id}"
        document, _ = self._call("PATCH", url, f"publish release {release.tag_name}", dict, json={"draft": False})
        return RemoteRelease.parse(document)

    def delete_release(self, release: RemoteRelease) -> None:
        self._delete(f"{self.api_url}{self._releases_path}/{release.id}", f"release {release.tag_name} (draft)")

    def list_assets(self, release: RemoteRelease) -> list[RemoteAsset]:
        items = self._paginated(f"{self._releases_path}/{release.id}/assets", "release assets", MAX_ASSETS)
        return [RemoteAsset.parse(item) for item in items]

    def delete_asset(self, asset: RemoteAsset) -> None:
        self._delete(f"{self.api_url}{self._releases_path}/assets/{asset.id}", f"asset {asset.name}")

    def rename_asset(self, asset: RemoteAsset, name: str) -> RemoteAsset:
        url = f"{self.api_url}{self._releases_path}/assets/{asset.id}"
        document, _ = self._call("PATCH", url, f"rename asset to {name}", dict, json={"name": name})
        return RemoteAsset.parse(document)
