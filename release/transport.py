"""The HTTP transport of the GitHub client: where the token may go, retries, deadlines, caps.

Retries are hand-written rather than urllib3's ``Retry``: an upload body is a file that must
be reopened for every attempt, GitHub signals its secondary rate limit with a 403 that only
the message tells apart from a permissions error, and the wait must honour ``Retry-After``
and ``x-ratelimit-reset``.  Only connection errors, 5xx, 429 and secondary limits are
retried, a bounded number of times; any other 4xx is an immediate, explained error.

The server is not trusted (see ``remote.py`` for the shape checks):

* The token is sent only to the configured API origin (and, for api.github.com, to
  uploads.github.com), over HTTPS or to loopback; never with a redirect or a pagination link
  to anywhere else.  It is not in ``repr``, log lines or exception text.
* Redirects are followed by hand, at most ``MAX_REDIRECTS`` of them, and only to HTTPS (or
  loopback HTTP) URLs.  Pagination links must stay on the list being read.
* Every request runs under a whole-request deadline (``deadline.py``); JSON answers are read
  up to a cap and parsed strictly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
import urllib3

from mirror.errors import ConfigError, UsageError
from mirror.jsonio import StrictJSONError, loads_strict
from mirror.reporting import SILENT, Reporter
from mirror.settings import default_number

from .deadline import DeadlineAdapter, deadline
from .errors import GitHubError
from .redact import printable
from .remote import check_api_url, origin, redirect_target

API_VERSION = "2022-11-28"
CHUNK_SIZE = 1 << 20
MAX_JSON_BYTES = 16 << 20
MAX_REDIRECTS = 5
MAX_PAGES = 100
PER_PAGE = 100
# A transfer's deadline is the read timeout plus its size at this rate: a stalled or
# trickling server is abandoned, a slow honest one still has ample time.
MIN_RATE = 1 << 20
T = TypeVar("T")


class _Retryable(Exception):
    """Internal: this attempt failed in a way worth retrying.  Never leaves this module."""

    def __init__(self, reason: str, response: requests.Response | None = None) -> None:
        super().__init__(reason)
        self.response = response  # an HTTP answer may say how long to wait (Retry-After, rate-limit reset)


class _TooSlow(Exception):
    """Internal: an upload body ran past its deadline."""


_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def check_repo(repo: str) -> str:
    if not _REPO.fullmatch(repo or "") or any(part in (".", "..") for part in repo.split("/")):
        raise UsageError(f"--repo {printable(repo, 80)!r}: expected OWNER/NAME, e.g. example/u2netp-mirror")
    return repo


@dataclass(frozen=True)
class RetryPolicy:
    # Defaults: u2netp.github in defaults.yaml, the one place they are set.
    attempts: int = field(default_factory=lambda: int(default_number("github", "attempts")))
    # The first wait; it doubles each retry.
    backoff: float = field(default_factory=lambda: default_number("github", "backoff_seconds"))
    # No single wait is longer, whatever the server asks.
    max_wait: float = field(default_factory=lambda: default_number("github", "max_wait_seconds"))
    # The deadline of one request: connect, headers and body (a download's grows with its size).
    timeout: float = field(default_factory=lambda: default_number("github", "timeout_seconds"))

    @classmethod
    def from_config(cls, github: Mapping[str, Any], timeout: float | None = None) -> RetryPolicy:
        """From ``u2netp.github`` (checked by mirror.config), ``timeout`` overriding its timeout_seconds."""
        return cls(
            attempts=int(github["attempts"]),
            backoff=float(github["backoff_seconds"]),
            max_wait=float(github["max_wait_seconds"]),
            timeout=float(timeout if timeout is not None else github["timeout_seconds"]),
        )

    def __post_init__(self) -> None:
        # Library callers get the same one-line refusal as a bad config key, not a traceback later.
        checks = (
            ("attempts", self.attempts, 1, 20),
            ("backoff", self.backoff, 0.0, 3600.0),
            ("max_wait", self.max_wait, 0.0, 3600.0),
            ("timeout", self.timeout, 1e-3, 3600.0),
        )
        for name, value, low, high in checks:
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ConfigError(f"RetryPolicy.{name}={value!r}: expected a number from {low:g} to {high:g}")


@dataclass(frozen=True)
class Clock:
    """Where the client reads time and waits; tests pass one that does not wait."""

    now: Callable[[], float] = time.time  # wall clock, for x-ratelimit-reset
    monotonic: Callable[[], float] = time.monotonic  # deadlines
    sleep: Callable[[float], None] = time.sleep


def transfer_deadline(size: int, timeout: float) -> float:
    """Seconds a transfer of ``size`` bytes may take in all."""
    return timeout + size / MIN_RATE


def _number(header: str | None) -> float | None:
    """A header's value as a finite number, or None (absent, a date, garbage)."""
    try:
        value = float(header or "")
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def wait_for(response: requests.Response, attempt: int, retry: RetryPolicy, clock: Clock) -> float:
    """How long to wait before retry ``attempt``: the server's Retry-After or rate-limit reset, else backoff."""
    wait = retry.backoff * (2**attempt)
    if (retry_after := _number(response.headers.get("Retry-After"))) is not None:
        wait = retry_after
    elif response.headers.get("x-ratelimit-remaining") == "0" and (
        (reset := _number(response.headers.get("x-ratelimit-reset"))) is not None
    ):
        wait = reset - clock.now() + 1
    return max(0.0, min(wait, retry.max_wait))


def explain(method: str, what: str, response: requests.Response, text: bytes, repo: str) -> GitHubError:
    """A failed answer as one line: GitHub's message and error code, and what the status usually means."""
    try:
        body = loads_strict(text)
    except StrictJSONError:
        body = {}
    message = printable(body.get("message", ""), 200) if isinstance(body, dict) else ""
    errors = body.get("errors", []) if isinstance(body, dict) else []
    codes = [e.get("code") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    code = printable(codes[0], 40) if codes and isinstance(codes[0], str) else None
    status = response.status_code
    hint = {
        401: "the token is missing, expired or wrong (GITHUB_TOKEN / GH_TOKEN)",
        403: "the token lacks permission: the workflow needs `permissions: contents: write`",
        404: f"not found: check --repo {repo} and that the token can see it",
    }.get(status, "")
    if status == 422 and "immutable" in message.lower():
        hint = "the release is published and immutable: assets can no longer change; publish a new tag"
    detail = f"{message} ({code})" if code else message
    return GitHubError(
        f"GitHub {method} {what}: HTTP {status} {detail}".rstrip() + (f"; {hint}" if hint else ""),
        status=status,
        code=code,
    )


def is_retryable(response: requests.Response, text: bytes) -> bool:
    if response.status_code in (429,) or response.status_code >= 500:
        return True
    if response.status_code == 403:
        limited = response.headers.get("x-ratelimit-remaining") == "0"
        return limited or b"secondary rate limit" in text.lower()
    return False


@dataclass
class Transport:
    """The connection to one repository's API: policy for every request the client makes."""

    api_url: str
    repo: str
    token: str | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=Clock)
    # Told about each retry and its wait (so a slow or unreachable GitHub is never silent),
    # and about each transfer's progress.
    reporter: Reporter = field(default=SILENT, repr=False)

    def __post_init__(self) -> None:
        check_repo(self.repo)
        self.api_url = check_api_url(self.api_url)
        api = origin(self.api_url)
        # Where the token may go: the API itself, and github.com's separate upload host.
        self._token_origins = {api}
        if api == ("https", "api.github.com", 443):
            self._token_origins.add(("https", "uploads.github.com", 443))
        self._session = requests.Session()
        # Every request runs under a whole-request deadline (deadline.py), not only per read.
        for scheme in ("https://", "http://"):
            self._session.mount(scheme, DeadlineAdapter())
        self._session.headers.update({"X-GitHub-Api-Version": API_VERSION, "User-Agent": "u2netp-mirror"})

    @property
    def _releases_path(self) -> str:
        return f"/repos/{self.repo}/releases"

    @property
    def host(self) -> str:
        return origin(self.api_url)[1]

    @contextmanager
    def _bounded(self, what: str, seconds: float) -> Iterator[None]:
        """Run one attempt (request and body) under a deadline; past it, a one-line, final error."""
        with deadline(seconds) as running:
            try:
                yield
            except (_Retryable, GitHubError, requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                if running.expired:
                    raise GitHubError(
                        f"GitHub {what}: no complete answer within {seconds:.0f} s (connect, headers and body); "
                        f"the server ({self.host}) is too slow or stalled; try again or raise --timeout"
                    ) from None
                raise

    def _retrying(self, what: str, attempt: Callable[[], T], recover: Callable[[], T | None] | None = None) -> T:
        """Run ``attempt`` until it returns, retrying a bounded number of times on transient failures.

        Before each retry ``recover`` may look at the remote state (did the failed create or
        upload happen after all?) and return the result, which ends the loop.
        """
        for number in range(self.retry.attempts):
            try:
                return attempt()
            except _Retryable as exc:
                if number + 1 == self.retry.attempts:
                    raise GitHubError(
                        f"GitHub {what}: still failing after {self.retry.attempts} attempts ({exc}; host {self.host})"
                    ) from None
                if exc.response is not None:
                    wait = wait_for(exc.response, number, self.retry, self.clock)
                else:
                    wait = min(self.retry.backoff * (2**number), self.retry.max_wait)
                retries = f"retry {number + 1} of {self.retry.attempts - 1}"
                self.reporter.line(f"GitHub {what}: {exc} ({self.host}); {retries} in {wait:.1f} s")
                self.clock.sleep(wait)
                if recover is not None and (recovered := recover()) is not None:
                    return recovered
        raise AssertionError("unreachable")

    def _headers(self, url: str, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", **(extra or {})}
        if self.token and origin(url) in self._token_origins:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _send_once(self, method: str, url: str, what: str, ok: tuple[int, ...], **kwargs: Any) -> requests.Response:
        """One attempt: the response if its status is in ``ok``; ``_Retryable`` or ``GitHubError`` if not.

        GET redirects are followed here, by hand, so that each hop's target is checked and the
        token is attached only where it belongs.  The response is streamed: read it with care.
        """
        extra = kwargs.pop("headers", None)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=self._headers(url, extra),
                    timeout=self.retry.timeout,
                    allow_redirects=False,
                    stream=True,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                # Only the exception's class name is kept: its text may hold the URL, never headers.
                raise _Retryable(type(exc).__name__) from None
            except _TooSlow:
                raise GitHubError(f"GitHub {method} {what}: the upload ran past its deadline; try again") from None
            except requests.RequestException as exc:
                raise GitHubError(f"GitHub {method} {what}: the request failed ({type(exc).__name__})") from None
            if not (method == "GET" and response.is_redirect):
                break
            target = redirect_target(response.headers.get("Location"), url)
            response.close()
            url = target
        else:
            raise GitHubError(f"GitHub {method} {what}: more than {MAX_REDIRECTS} redirects (a loop?); giving up")
        if response.status_code in ok:
            return response
        try:
            text = self._read_capped(response, 64 << 10)
        except (_Retryable, GitHubError):
            text = b""
        if is_retryable(response, text):
            raise _Retryable(f"HTTP {response.status_code}", response)
        raise explain(method, what, response, text, self.repo)

    def _read_capped(self, response: requests.Response, limit: int) -> bytes:
        """The whole body of a (streamed) response, or an error if it is longer than ``limit``."""
        body = bytearray()
        try:
            for chunk in response.iter_content(CHUNK_SIZE):
                body += chunk
                if len(body) > limit:
                    raise GitHubError(f"an answer from {self.host} is over {limit >> 10:,} KiB; refusing it")
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"interrupted ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise GitHubError(f"an answer from {self.host} could not be read ({type(exc).__name__})") from None
        finally:
            response.close()
        return bytes(body)

    def _json(self, response: requests.Response, method: str, what: str, kind: type[T]) -> T:
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type.lower():
            response.close()
            raise GitHubError(
                f"GitHub {method} {what}: answered HTTP {response.status_code} with "
                f"{printable(content_type, 60) or 'no content type'}, not JSON; is {self.api_url} the API?"
            )
        try:
            document = loads_strict(self._read_capped(response, MAX_JSON_BYTES))
        except StrictJSONError as exc:
            raise GitHubError(f"GitHub {method} {what}: not valid JSON ({printable(exc, 80)})") from None
        if not isinstance(document, kind):
            expected = "a list" if kind is list else "an object"
            raise GitHubError(f"GitHub {method} {what}: answered {type(document).__name__}, expected {expected}")
        return document

    def _call(
        self, method: str, url: str, what: str, kind: type[T], ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> tuple[T, requests.Response]:
        """One API call returning JSON of ``kind``, retried on transient failures.

        Only for calls that are safe to repeat (reads, deletes, renames, updates).
        """

        def attempt() -> tuple[T, requests.Response]:
            with self._bounded(f"{method} {what}", self.retry.timeout):
                response = self._send_once(method, url, what, ok, **kwargs)
                return self._json(response, method, what, kind), response

        return self._retrying(f"{method} {what}", attempt)

    def _delete(self, url: str, what: str) -> None:
        def attempt() -> None:
            with self._bounded(f"DELETE {what}", self.retry.timeout):
                self._send_once("DELETE", url, what, (204, 404)).close()

        self._retrying(f"DELETE {what}", attempt)

    def _paginated(self, path: str, what: str, max_items: int) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: rel="next"`` only along the same list.

        Bounded three ways, so a hostile server cannot make the client read forever or grow
        without limit: at most ``PER_PAGE`` items a page, ``max_items`` in all, and no page twice.
        """
        base = f"{self.api_url}{path}"
        url = f"{base}?per_page={PER_PAGE}"
        seen: set[str] = set()
        count = 0
        for _ in range(MAX_PAGES):
            seen.add(url)
            items, response = self._call("GET", url, what, list)
            if len(items) > PER_PAGE:
                raise GitHubError(f"GitHub GET {what}: {len(items):,} items on one page, over the {PER_PAGE} asked for")
            count += len(items)
            if count > max_items:
                raise GitHubError(f"GitHub GET {what}: more than {max_items:,}; refusing to read on")
            yield from items
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url = redirect_target(following, url)
            if origin(url) != origin(base) or url.split("?", 1)[0] != base:
                raise GitHubError(
                    f"GitHub GET {what}: the next page is elsewhere ({printable(url, 100)}); refusing to follow it"
                )
            if url in seen:
                raise GitHubError(f"GitHub GET {what}: the next page is one already read (the same page twice)")
        raise GitHubError(f"GitHub GET {what}: more than {MAX_PAGES} pages; refusing to read on")
