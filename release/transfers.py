"""Streamed transfers of release assets: uploads read from disk in chunks, downloads hashed as
they arrive and checked against the size and digest the API announced before anything is
written under its final name."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3

from mirror.reporting import SILENT, Reporter

from .errors import GitHubError
from .remote import MAX_ASSET_SIZE, RemoteAsset, RemoteRelease, check_url, origin
from .transport import CHUNK_SIZE, Clock, Transport, _Retryable, _TooSlow, transfer_deadline

# Up to three of these are alive during a download (one being hashed, one read and written, one
# being copied out of http.client's buffer): 24 MiB, inside the bench's 64 MiB bound on memory growth.
DOWNLOAD_CHUNK = 8 << 20


class _WriteFailed(Exception):
    """Writing a downloaded chunk to its file failed (``error``); kept apart from the socket's OSErrors."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _UploadBody:
    """A file opened for one upload attempt: read in chunks, with a length, reporting progress."""

    def __init__(self, path: Path, name: str, reporter: Reporter, clock: Clock, deadline: float) -> None:
        self._stream: BinaryIO = path.open("rb")
        self._size = path.stat().st_size
        self._done = 0
        self._name = name
        self._reporter = reporter
        self._clock = clock
        self._deadline = clock.monotonic() + deadline

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        if self._clock.monotonic() > self._deadline:
            raise _TooSlow
        chunk = self._stream.read(CHUNK_SIZE if size is None or size < 0 else size)
        self._done += len(chunk)
        self._reporter.progress(f"upload {self._name}", self._done, self._size)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        self._stream.close()


class Transfers(Transport):
    """The bytes of release assets, both ways."""

    def upload_asset(
        self,
        release: RemoteRelease,
        path: Path,
        name: str,
        content_type: str,
        recover: Callable[[], RemoteAsset | None],
    ) -> RemoteAsset:
        """Stream ``path`` as asset ``name``, retrying transient failures a bounded number of times.

        A failed upload can leave a ``starter`` asset behind or may have landed after all, and
        another uploader may have got there first (422 ``already_exists``): before each retry,
        and on that 422, ``recover`` looks at the release, removes leftovers, and returns the
        asset if it is there with the right content (which ends the loop).
        """
        target = check_url(release.upload_url, "the release's upload_url")
        if origin(target) not in self._token_origins:
            raise GitHubError(
                f"release {release.tag_name}: its upload_url points at {origin(target)[1]}, not {self.host}; "
                "refusing to send the token there"
            )
        if not target.endswith(f"/repos/{self.repo}/releases/{release.id}/assets"):
            raise GitHubError(f"release {release.tag_name}: its upload_url is not this release's; refusing it")
        size = path.stat().st_size
        if size > MAX_ASSET_SIZE:
            raise GitHubError(f"{path}: {size:,} bytes; GitHub takes release assets under 2 GiB")
        what = f"upload {name}"

        def attempt() -> RemoteAsset:
            with self._bounded(what, transfer_deadline(size, self.retry.timeout)):
                return upload_once()

        def upload_once() -> RemoteAsset:
            body = _UploadBody(path, name, self.reporter, self.clock, transfer_deadline(size, self.retry.timeout))
            try:
                response = self._send_once(
                    "POST",
                    target,
                    what,
                    (201,),
                    params={"name": name},
                    data=body,
                    headers={"Content-Type": content_type, "Content-Length": str(len(body))},
                )
            except GitHubError as exc:
                if exc.code != "already_exists":
                    raise
                # A race, or an earlier attempt that did land.
                if (settled := recover()) is not None:
                    return settled
                raise _Retryable(f"{name} was in the way; removed the leftover") from None
            finally:
                body.close()
            return RemoteAsset.parse(self._json(response, "POST", what, dict))

        return self._retrying(what, attempt, recover=recover)

    # -- downloads -------------------------------------------------------------------------

    def _stream_asset(self, asset: RemoteAsset, sink: BinaryIO | None, shown: bool) -> str:
        """One attempt at the asset's bytes: written to ``sink`` (if any) and hashed; the sha256.

        Checked on the way: never more than the announced size (reading stops at size + 1),
        exactly that size in the end, the announced digest if there is one, and the deadline,
        which covers the request's headers as well as its body.
        """
        what = f"download {asset.name}"
        with self._bounded(what, transfer_deadline(asset.size, self.retry.timeout)):
            return self._stream_asset_once(asset, sink, self.reporter if shown else SILENT, what)

    def _stream_asset_once(self, asset: RemoteAsset, sink: BinaryIO | None, reporter: Reporter, what: str) -> str:
        # One loop with its checks (size, overrun, deadline) beside the reads they guard: split,
        # a check would sit far from the read it is about.
        response = self._send_once(
            "GET",
            f"{self.api_url}{self._releases_path}/assets/{asset.id}",
            what,
            (200,),
            headers={"Accept": "application/octet-stream", "Accept-Encoding": "identity"},
        )
        deadline = transfer_deadline(asset.size, self.retry.timeout)
        start = self.clock.monotonic()
        digest = hashlib.sha256()
        done = 0

        # The hash runs in a second thread (sha256 releases the GIL) while this one writes the
        # chunk and reads the next: the two halves of the work, ~0.7 s of CPU a GiB each here,
        # then run side by side.  Measured on the bench machine, 1 GiB over loopback: hashing
        # in this thread 0.6-0.7x curl's speed, hash and write together in the second thread
        # 0.87x, the hash alone there 0.95x (medians of 8).  One hash in flight bounds memory
        # and keeps the chunks in order.  Reads fill DOWNLOAD_CHUNK bytes rather than taking
        # whatever the socket holds (read1): a handoff per 8 MiB instead of per ~100 KiB.  The
        # deadline still holds inside a long read: it closes the connection.  Nothing reaches
        # a caller before the digest is checked: until then the sink is a temporary file or a
        # buffer.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="download-hash") as hasher:
            hashing: Future[None] | None = None
            try:
                while chunk := response.raw.read(min(DOWNLOAD_CHUNK, asset.size + 1 - done)):
                    done += len(chunk)
                    if done > asset.size:
                        raise GitHubError(
                            f"GitHub {what}: the server sent more than the {asset.size:,} bytes the API "
                            "announced; refusing it"
                        )
                    if hashing is not None:
                        hashing.result()
                    hashing = hasher.submit(digest.update, chunk)
                    if sink is not None:
                        try:
                            sink.write(chunk)
                        except OSError as exc:
                            raise _WriteFailed(exc) from None
                    reporter.progress(f"download {asset.name}", done, asset.size)
                    if done == asset.size:
                        break
                    if self.clock.monotonic() - start > deadline:
                        raise GitHubError(
                            f"GitHub {what}: {done:,} of {asset.size:,} bytes after {deadline:.0f} s; the server "
                            f"({origin(response.url)[1]}) is too slow or stalled; try again or raise --timeout"
                        )
                # One byte more than announced (or the end) tells an oversized body from an exact one.
                if done == asset.size and response.raw.read(1):
                    raise GitHubError(
                        f"GitHub {what}: the server sent more than the {asset.size:,} bytes the API announced; "
                        "refusing it"
                    )
                if hashing is not None:
                    hashing.result()  # the last chunk hashed
            except _WriteFailed as failed:
                # A full disk is the local file's problem, not the network's: downloading again
                # cannot help.  The OSError reaches the writer, which names the file.
                raise failed.error from None
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                raise _Retryable(f"{asset.name}: interrupted ({type(exc).__name__})") from None
            finally:
                response.close()
        if done != asset.size:
            raise _Retryable(f"{asset.name}: got {done:,} of the {asset.size:,} bytes the API announced")
        found = digest.hexdigest()
        if asset.sha256 is not None and found != asset.sha256:
            raise GitHubError(
                f"GitHub {what}: the bytes have sha256 {found[:16]}…, the API announced {asset.sha256[:16]}…; "
                "refusing them"
            )
        return found

    def asset_sha256(self, asset: RemoteAsset) -> str:
        """The sha256 of the asset's bytes, downloaded and hashed as they stream (nothing is written)."""
        return self._retrying(f"download {asset.name}", lambda: self._stream_asset(asset, None, shown=False))

    def read_asset(self, asset: RemoteAsset, limit: int) -> bytes:
        """A small asset's bytes in memory (a Sigstore bundle); an error if it is over ``limit``."""
        if asset.size > limit:
            raise GitHubError(f"asset {asset.name}: {asset.size:,} bytes, more than the {limit:,} expected")

        def attempt() -> bytes:
            buffer = io.BytesIO()
            self._stream_asset(asset, buffer, shown=False)
            return buffer.getvalue()

        return self._retrying(f"download {asset.name}", attempt)

    def download_asset(self, asset: RemoteAsset, destination: Path) -> str:
        """Download the asset to ``destination``; return its sha256.

        The bytes go to a temporary file beside ``destination`` and replace it only after every
        check in ``_stream_asset`` passed: nothing partial or unchecked is ever left there.
        """
        from mirror.atomic import atomic_writer

        def attempt() -> str:
            # Not durable: every downloaded asset is hashed and its signature checked before
            # use, so a file torn by a crash fails verification and is fetched again, while a
            # flush to disk costs 1-2 s a GiB here (curl and gh do not flush either).
            with atomic_writer(destination, durable=False) as sink:
                return self._stream_asset(asset, sink, shown=True)

        return self._retrying(f"download {asset.name}", attempt)
