"""The HTTP server both loopback services run on: threaded, and quiet about clients that hang up.

A client that stops reading (a test's deadline, Ctrl-C in ``invoke demo``) makes the handler's
next write fail with ``BrokenPipeError`` or ``ConnectionResetError``; ``socketserver`` would
print that as a traceback in the middle of the demo's output.  It is not an error of the
server's, so it is dropped; anything else is still printed.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)
