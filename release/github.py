"""A small client for GitHub's Releases REST API (2022-11-28): just what attach and download need.

Retries are hand-written rather than urllib3's ``Retry``: an upload body is a file that must
be reopened for every attempt, GitHub signals its secondary rate limit with a 403 that only
the message tells apart from a permissions error, and the wait must honour ``Retry-After``
and ``x-ratelimit-reset``.  Only connection errors, 5xx, 429 and secondary limits are
retried, a bounded number of times; any other 4xx is an immediate, explained error.

The token is a secret: it goes into the Authorization header and nowhere else — not into
``repr``, log lines, or exception text.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import requests

from mirror.errors import MirrorError

API_VERSION = "2022-11-28"
CHUNK_SIZE = 1 << 20
Progress = Callable[[str, int, int], None]  # (asset name, bytes done, bytes total)
T = TypeVar("T")


class GitHubError(MirrorError):
    """A GitHub API request failed for good; the message says what to do."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Retryable(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, reason: str, response: requests.Response | None = None) -> None:
        super().__init__(reason)
        self.response = response  # an HTTP answer may say how long to wait (Retry-After, rate-limit reset)


_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def check_repo(repo: str) -> str:
    if not _REPO.fullmatch(repo or "") or any(part in (".", "..") for part in repo.split("/")):
        raise MirrorError(f"--repo {repo!r}: expected OWNER/NAME, e.g. example/u2netp-mirror")
    return repo


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff: float = 1.0  # first wait; doubles each retry
    max_wait: float = 60.0  # no single wait is longer, whatever the server asks
    timeout: float = 60.0  # per request, connect and read


class _UploadBody:
    """A file opened for one upload attempt: read in chunks, with a length, reporting progress."""

    def __init__(self, path: Path, name: str, progress: Progress) -> None:
        self._stream: BinaryIO = path.open("rb")
        self._size = path.stat().st_size
        self._done = 0
        self._name = name
        self._progress = progress

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(CHUNK_SIZE if size is None or size < 0 else size)
        self._done += len(chunk)
        self._progress(self._name, self._done, self._size)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        self._stream.close()


@dataclass
class GitHubClient:
    api_url: str
    repo: str
    token: str | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        check_repo(self.repo)
        self.api_url = self.api_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers.update({"X-GitHub-Api-Version": API_VERSION, "User-Agent": "u2netp-mirror"})
        if self.token:
            self._session.headers["Authorization"] = f"Bearer {self.token}"

    # -- plumbing --------------------------------------------------------------------------

    def _wait_for(self, response: requests.Response, attempt: int) -> float:
        wait = self.retry.backoff * (2**attempt)
        if retry_after := response.headers.get("Retry-After"):
            with contextlib.suppress(ValueError):
                wait = float(retry_after)
        elif response.headers.get("x-ratelimit-remaining") == "0" and (
            reset := response.headers.get("x-ratelimit-reset")
        ):
            with contextlib.suppress(ValueError):
                wait = float(reset) - time.time() + 1
        return max(0.0, min(wait, self.retry.max_wait))

    def _explain(self, method: str, what: str, response: requests.Response) -> GitHubError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        codes = [e.get("code") for e in body.get("errors", []) if isinstance(e, dict)] if isinstance(body, dict) else []
        code = codes[0] if codes else None
        status = response.status_code
        hint = {
            401: "the token is missing, expired or wrong (GITHUB_TOKEN / GH_TOKEN)",
            403: "the token lacks permission: the workflow needs `permissions: contents: write`",
            404: f"not found: check --repo {self.repo} and that the token can see it",
        }.get(status, "")
        if status == 422 and "immutable" in message.lower():
            hint = "the release is published and immutable: assets can no longer change; publish a new tag"
        detail = f"{message} ({code})" if code else message
        return GitHubError(
            f"GitHub {method} {what}: HTTP {status} {detail}".rstrip() + (f"; {hint}" if hint else ""),
            status=status,
            code=code,
        )

    def _is_retryable(self, response: requests.Response) -> bool:
        if response.status_code in (429,) or response.status_code >= 500:
            return True
        if response.status_code == 403:
            text = response.text.lower()
            return "secondary rate limit" in text or response.headers.get("x-ratelimit-remaining") == "0"
        return False

    def retrying(self, what: str, attempt: Callable[[], T], recover: Callable[[], T | None] | None = None) -> T:
        """Run ``attempt`` until it returns, retrying on ``Retryable`` a bounded number of times.

        Before each retry ``recover`` may look at the remote state (did the failed create or
        upload happen after all?) and return the result, which ends the loop.
        """
        for number in range(self.retry.attempts):
            try:
                return attempt()
            except Retryable as exc:
                if number + 1 == self.retry.attempts:
                    raise GitHubError(
                        f"GitHub {what}: still failing after {self.retry.attempts} attempts ({exc})"
                    ) from None
                if exc.response is not None:
                    wait = self._wait_for(exc.response, number)
                else:
                    wait = self.retry.backoff * (2**number)
                self.sleep(min(wait, self.retry.max_wait))
                if recover is not None and (recovered := recover()) is not None:
                    return recovered
        raise AssertionError("unreachable")

    def _send_once(self, method: str, url: str, what: str, ok: tuple[int, ...], **kwargs: Any) -> requests.Response:
        """One attempt: the response if its status is in ``ok``; ``Retryable`` or ``GitHubError`` if not."""
        headers = {"Accept": "application/vnd.github+json", **kwargs.pop("headers", {})}
        try:
            response = self._session.request(method, url, headers=headers, timeout=self.retry.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Only the exception's class name is kept: its text may hold the URL, never headers.
            raise Retryable(type(exc).__name__) from None
        if response.status_code in ok:
            return response
        if self._is_retryable(response):
            raise Retryable(f"HTTP {response.status_code}", response)
        raise self._explain(method, what, response)

    def request(
        self, method: str, url: str, *, what: str, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> requests.Response:
        """One API call with bounded retries on connection errors, 5xx, 429 and secondary limits.

        Only for calls that are safe to repeat (reads, deletes, renames, updates).
        """
        return self.retrying(f"{method} {what}", lambda: self._send_once(method, url, what, ok, **kwargs))

    def _paginated(self, url: str, what: str) -> Iterator[dict[str, Any]]:
        next_url: str | None = f"{url}?per_page=100"
        while next_url:
            response = self.request("GET", next_url, what=what)
            yield from response.json()
            next_url = response.links.get("next", {}).get("url")

    # -- releases --------------------------------------------------------------------------

    @property
    def _releases_url(self) -> str:
        return f"{self.api_url}/repos/{self.repo}/releases"

    def find_release(self, tag: str) -> dict[str, Any] | None:
        """The release for ``tag``, drafts included (the by-tag endpoint hides drafts)."""
        return next((r for r in self._paginated(self._releases_url, "releases") if r["tag_name"] == tag), None)

    def create_draft(self, tag: str, name: str, body: str) -> dict[str, Any]:
        """Create a draft release.  GitHub allows several drafts for one tag, and a 500 or a
        dropped connection may still have created it: so each retry first looks for it."""
        payload = {"tag_name": tag, "name": name, "body": body, "draft": True}
        what = f"create release {tag}"

        def attempt() -> dict[str, Any]:
            return self._send_once("POST", self._releases_url, what, (201,), json=payload).json()

        try:
            return self.retrying(what, attempt, recover=lambda: self.find_release(tag))
        except GitHubError as exc:
            # 422 already_exists: a published release took the tag meanwhile; use it.
            if exc.code == "already_exists" and (release := self.find_release(tag)) is not None:
                return release
            raise

    def update_release(self, release_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PATCH", f"{self._releases_url}/{release_id}", what="update release", json=fields).json()

    def list_assets(self, release_id: int) -> list[dict[str, Any]]:
        return list(self._paginated(f"{self._releases_url}/{release_id}/assets", "release assets"))

    def delete_asset(self, asset_id: int) -> None:
        self.request("DELETE", f"{self._releases_url}/assets/{asset_id}", what="delete asset", ok=(204, 404))

    def rename_asset(self, asset_id: int, name: str) -> dict[str, Any]:
        return self.request(
            "PATCH",
            f"{self._releases_url}/assets/{asset_id}",
            what=f"rename asset to {name}",
            json={"name": name},
        ).json()

    def upload_asset(
        self, upload_url: str, path: Path, name: str, content_type: str, progress: Progress
    ) -> dict[str, Any]:
        """Stream ``path`` as asset ``name``: one attempt, no retry (the caller re-reads the
        release after a failure, because a failed upload can leave a ``starter`` asset)."""
        target = upload_url.split("{", 1)[0]  # strip the {?name,label} URI template
        body = _UploadBody(path, name, progress)
        try:
            response = self._session.post(
                target,
                params={"name": name},
                data=body,
                headers={
                    "Accept": "application/vnd.github+json",
                    "Content-Type": content_type,
                    "Content-Length": str(len(body)),
                },
                timeout=self.retry.timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Retryable(f"upload of {name} interrupted ({type(exc).__name__})") from None
        finally:
            body.close()
        if response.status_code == 201:
            return response.json()
        if self._is_retryable(response):
            raise Retryable(f"upload of {name}: HTTP {response.status_code}", response)
        raise self._explain("POST", f"upload {name}", response)

    def download_asset(self, asset: dict[str, Any], destination: Path, progress: Progress) -> None:
        """Stream an asset to ``destination`` atomically, following GitHub's redirect to storage."""
        from mirror.atomic import write_chunks_atomic

        what = f"download {asset['name']}"

        def attempt() -> None:
            response = self._send_once(
                "GET",
                f"{self._releases_url}/assets/{asset['id']}",
                what,
                (200,),
                headers={"Accept": "application/octet-stream"},
                stream=True,
            )
            total = int(response.headers.get("Content-Length") or asset.get("size") or 0)
            done = 0

            def chunks() -> Iterator[bytes]:
                nonlocal done
                for chunk in response.iter_content(CHUNK_SIZE):
                    done += len(chunk)
                    progress(asset["name"], done, total)
                    yield chunk

            try:
                # Not durable: every downloaded asset is hashed and its signature checked before
                # use, so a file torn by a crash fails verification and is fetched again, while
                # a flush to disk costs 1-2 s a GiB here (curl and gh do not flush either).
                write_chunks_atomic(destination, chunks(), durable=False)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise Retryable(f"interrupted ({type(exc).__name__})") from None
            finally:
                response.close()
            if total and done != total:
                raise Retryable(f"got {done} of {total} bytes")

        self.retrying(what, attempt)
