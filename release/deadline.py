"""A deadline for one HTTP request as a whole: connect, headers and body.

requests' ``timeout`` bounds each socket operation, not the request: a server that sends one
byte a second never lets a read time out, and held ``verify --timeout 2`` for minutes while it
trickled the headers of a listing, a JSON body, or the headers of a download.  urllib3's
``Timeout(total=…)`` is no help either: it too is applied per socket operation.

So each request runs under a ``Deadline``: a watchdog timer that, when it fires, shuts down the
request's socket, which makes whatever read or write is blocked on it fail at once.  The
connection classes below register their socket with the deadline of the request running on
their thread before waiting for the response.  This is written by hand because neither
requests nor urllib3 offers a whole-request deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """Shuts down every socket it watches once ``seconds`` have passed; ``expired`` says whether it did."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self.expired = False

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)
            elif self._timer is None:
                self._timer = threading.Timer(self.remaining(), self._expire)
                self._timer.daemon = True
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run the requests made in this block (on this thread) under one ``Deadline``."""
    running = Deadline(seconds)
    outer = getattr(_current, "deadline", None)
    _current.deadline = running
    try:
        yield running
    finally:
        _current.deadline = outer
        running.cancel()


def _watch_current(sock: socket.socket | None) -> None:
    running = getattr(_current, "deadline", None)
    if running is not None:
        running.watch(sock)


class _Watched:
    """Mixed into urllib3's connections: a new connection is watched once connected (so a body
    nobody reads cannot hold the send), a reused one when its next response is awaited."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch_current(self.sock)

    def getresponse(self, *args, **kwargs):
        _watch_current(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections obey the running ``deadline``."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
