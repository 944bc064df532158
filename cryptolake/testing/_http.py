"""A stdlib HTTP server on 127.0.0.1 (OS-picked port) in a daemon thread, for the test
servers (`rest_server.FakeBinance`, `proxy.FaultProxy`)."""
from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


def serve(handler_cls, **attrs) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start `handler_cls` (a subclass carrying `attrs`) on loopback; returns (server, thread).
    A short poll interval so that `shutdown()` returns quickly."""
    handler = type("Handler", (handler_cls,), attrs)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return httpd, thread


def shutdown(httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
