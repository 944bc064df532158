"""A small fault-injecting HTTP proxy for tests: stdlib only, loopback only, bounded.

Put it in front of a real endpoint (the moto S3 server, the fake Binance REST server) and
tell it which requests to spoil:

    with FaultProxy(moto.endpoint_url) as px:
        px.add("status", 503, path="BTCUSDT-1h-2024-01-02.zip", method="GET", times=2)
        px.add("truncate", path=".zip", times=1)          # half the body, then hang up
        px.add("corrupt", path=".zip", times=1)           # flip bytes, same length
        px.add("stall", 5.0, path=".zip", times=1)        # wait 5 s before answering
        px.add("refuse", path=".CHECKSUM")                # close without an answer
        px.add("status", 500, method="PUT", share=0.3, seed=1)   # fail 30% of writes
        opts = {**moto.anon_options(), "endpoint_url": px.url}

A rule fires on a request whose method matches and whose path (query left out) `path`, a
regular expression, is found in (`re.search`; `re.escape(name) + "$"` for one file), `times` times
(None: always), each time with probability `share` (seeded). The first matching rule with
fires left wins; requests that match none are forwarded untouched. `hits` logs
(method, path, action) of every request. Bodies over `max_body` bytes are refused (413),
upstream calls time out after `upstream_timeout` seconds, stalls are capped at `max_stall`
and end early when the proxy stops.
"""
from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from cryptolake.testing._http import serve, shutdown

__all__ = ["FaultProxy", "Rule"]

ACTIONS = ("status", "truncate", "corrupt", "stall", "refuse")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade"}


@dataclass
class Rule:
    action: str
    arg: float | int | None = None
    path: str | None = None
    method: str | None = None
    times: int | None = 1
    share: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        where = path.split("?", 1)[0]
        return (self.method is None or self.method == method) and \
            (self.path is None or re.search(self.path, where) is not None) and \
            (self.times is None or self.times > 0)


class FaultProxy:
    """See the module docstring. `url` is `http://127.0.0.1:PORT` once started."""

    def __init__(self, upstream: str, *, max_body: int = 256 << 20, upstream_timeout: float = 60.0,
                 max_stall: float = 60.0):
        u = urlsplit(upstream)
        if u.scheme != "http" or u.hostname not in _LOOPBACK:
            raise ValueError(f"FaultProxy forwards only to a loopback http:// endpoint, got {upstream!r}")
        self.upstream = (u.hostname, u.port or 80)
        self.max_body, self.upstream_timeout, self.max_stall = max_body, upstream_timeout, max_stall
        self.rules: list[Rule] = []
        self.hits: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._httpd else "stopped"
        return f"FaultProxy({where} -> {self.upstream[0]}:{self.upstream[1]}, {len(self.rules)} rules)"

    # -- rules
    def add(self, action: str, arg=None, *, path: str | None = None, method: str | None = None,
            times: int | None = 1, share: float = 1.0, seed: int = 0) -> Rule:
        """Spoil matching requests: status (arg = HTTP code), truncate, corrupt, stall (arg =
        seconds), refuse. See the module docstring."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
        if action == "status" and not (isinstance(arg, int) and 400 <= arg <= 599):
            raise ValueError(f"'status' needs an HTTP error code 400-599 as arg, got {arg!r}")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be within [0, 1], got {share}")
        r = Rule(action, arg, path, method.upper() if method else None, times, share, random.Random(seed))
        with self._lock:
            self.rules.append(r)
        return r

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for r in self.rules:
                if r.matches(method, path):
                    if r.share < 1.0 and r.rng.random() >= r.share:
                        return None
                    if r.times is not None:
                        r.times -= 1
                    r.fired += 1
                    return r
        return None

    # -- lifecycle
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FaultProxy is not started; call start() or use it in a with block")
        return "http://%s:%d" % self._httpd.server_address[:2]

    def start(self) -> "FaultProxy":
        self._stop.clear()
        self._httpd, self._thread = serve(_Handler, proxy=self)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stop.set()
        shutdown(self._httpd, self._thread)
        self._httpd = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes | None:
        n = int(self.headers.get("Content-Length") or 0)
        if n > self.proxy.max_body:
            return None
        data = self.rfile.read(n) if n else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = self._chunked()
        return data

    def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()
            if len(out) > self.proxy.max_body:
                raise ValueError("body too large")

    def _handle(self) -> None:
        px, method, path = self.proxy, self.command, self.path
        body = self._body()
        if body is None:
            self._reply(413, b"request body over the proxy's limit", {})
            return
        rule = px._take(method, path)
        with px._lock:
            px.hits.append((method, path, rule.action if rule else "forward"))
        if rule and rule.action == "refuse":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if rule and rule.action == "status":
            xml = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InjectedFault</Code>"
                   f"<Message>fault proxy: HTTP {rule.arg}</Message></Error>").encode()
            self._reply(int(rule.arg), xml, {"Content-Type": "application/xml"})
            return
        if rule and rule.action == "stall":
            if px._stop.wait(min(float(rule.arg or px.max_stall), px.max_stall)):
                return
        status, headers, data = self._forward(method, path, body)
        if rule and rule.action == "corrupt" and data:
            b = bytearray(data)
            for i in range(len(b) // 2, len(b), max(1, len(b) // 16)):
                b[i] ^= 0xFF
            data = bytes(b)
        if rule and rule.action == "truncate" and data:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._reply(status, data, dict(headers))

    def _forward(self, method, path, body):
        host, port = self.proxy.upstream
        conn = http.client.HTTPConnection(host, port, timeout=self.proxy.upstream_timeout)
        try:
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in _HOP and k.lower() != "content-length"}
            if body or method in ("PUT", "POST"):
                hdrs["Content-Length"] = str(len(body))
            conn.request(method, path, body=body if body or method in ("PUT", "POST") else None,
                         headers=hdrs)
            resp = conn.getresponse()
            data = resp.read() if method != "HEAD" else b""
            keep = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP
                    and k.lower() != "content-length"]
            if method == "HEAD":
                keep.append(("Content-Length", resp.getheader("Content-Length") or "0"))
            return resp.status, keep, data
        finally:
            conn.close()

    def _reply(self, status: int, data: bytes, headers: dict) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() != "content-length":
                self.send_header(k, v)
        if self.command != "HEAD" or "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Content-Length", headers["Content-Length"])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = lambda self: self._safe()  # noqa: E731

    def _safe(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def wait_port(url: str, timeout: float = 5.0) -> None:
    """Block until a TCP listener answers at url's host:port (tests)."""
    u = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((u.hostname, u.port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
