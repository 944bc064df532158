"""A fake Binance REST server on 127.0.0.1 for tests and offline demos (stdlib only, no mocks).

It serves Binance's own paths and response shapes from rows you seed, so ccxt (and
`cl.BinanceREST(endpoint=server.url)`) talk to it exactly as they would to Binance:

    rows = kline_rows("um", "BTCUSDT", "1m", "2024-03-01", "2024-03-02")
    with FakeBinance({("um", "klines", "BTCUSDT", "1m"): rows}) as server:
        server.fail(429, retry_after=1)              # the next request answers 429 once
        rest = BinanceREST(endpoint=server.url)
        ...
        server.requests                              # every request: path, query, status, time

Paths: ``/api/v3/klines``; ``/fapi/v1/{klines,markPriceKlines,indexPriceKlines,premiumIndexKlines,
fundingRate}``; the same under ``/dapi/v1``; ``/{api/v3,fapi/v1,dapi/v1}/exchangeInfo`` (a
minimal payload, recorded so tests can assert it was never asked for). Seed keys are
``(market, data_type, symbol, interval)`` with the archive's interval names (``1mo``) and
``interval=None`` for ``fundingRate``; index-price klines are looked up by ``pair`` (the symbol
before ``_``), as Binance does.

Semantics (docs/binance-archive.md §8): kline rows are filtered on open time by
``startTime``/``endTime``; spot and USDⓈ-M return the *first* ``limit`` rows from ``startTime``
(the last ``limit`` when only ``endTime`` or nothing is given); COIN-M returns the *most recent*
``limit`` rows ending at ``endTime``, takes ``endTime = startTime + 200 days`` when only
``startTime`` is sent, and refuses windows longer than 200 days (400, -1127). Limits: default
500, max 1000 (spot) / 1500 (futures), more is refused (400, -1130). Intervals are REST names
(``1M``); ``1mo`` is refused (400, -1120). Unknown symbols answer 400 ``{"code":-1121,
"msg":"Invalid symbol."}``. Funding: ``limit`` default 100, max 1000, the first ``limit`` rows
from ``startTime``; COIN-M requires ``symbol``.

Faults are queued and consumed one per matching request: ``fail(status, times, retry_after,
body)``, ``hang(seconds, times)``, ``mutate(fn, times)`` (change the rows of a response, e.g.
to make some malformed). Each may be limited to paths containing ``path``.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from cryptolake import grid
from cryptolake.testing._http import serve, shutdown

__all__ = ["FakeBinance", "Fault", "Hit", "kline_rows", "funding_rows", "KLINE_PATHS",
           "FUNDING_PATHS", "DAPI_WINDOW_MS"]

DAPI_WINDOW_MS = 200 * 86_400_000
KLINE_PATHS = {
    "/api/v3/klines": ("spot", "klines"),
    **{f"/fapi/v1/{t}": ("um", t) for t in ("klines", "markPriceKlines", "indexPriceKlines",
                                             "premiumIndexKlines")},
    **{f"/dapi/v1/{t}": ("cm", t) for t in ("klines", "markPriceKlines", "indexPriceKlines",
                                             "premiumIndexKlines")},
}
FUNDING_PATHS = {"/fapi/v1/fundingRate": "um", "/dapi/v1/fundingRate": "cm"}
EXCHANGE_INFO_PATHS = ("/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo")
_REST_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                   "1d", "3d", "1w", "1M")
_MAX_LIMIT = {"spot": 1000, "um": 1500, "cm": 1500}


# ---------------------------------------------------------------- seeded rows
def _ms(value) -> int:
    """A date, datetime, 'YYYY-MM-DD[...]' string or epoch-ms int -> epoch ms (UTC)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * 86_400_000
    raise TypeError(f"cannot read {value!r} as a time")


def _dec(ticks: int, decimals: int) -> str:
    if decimals == 0:
        return str(ticks)
    sign = "-" if ticks < 0 else ""
    q, r = divmod(abs(ticks), 10**decimals)
    return f"{sign}{q}.{r:0{decimals}d}"


_DECIMALS = {"spot": (2, 8), "um": (1, 3), "cm": (1, 0)}     # (price, quantity) as Binance prints


def kline_rows(market: str, symbol: str, interval: str, start, end, *, seed: int = 0,
               data_type: str = "klines") -> list[list]:
    """Binance REST kline rows (12 fields, numbers as exact decimal strings) for every bar of
    `interval` opening in [start, end) (times in ms; `end` exclusive; dates are UTC midnights).

    ``close_time = next open - 1``. COIN-M rows carry contracts in ``volume`` and coin in the
    8th/11th fields, like Binance. Premium-index rows are small signed numbers.
    """
    lo, hi = _ms(start), _ms(end) - 1
    opens = grid.points(lo * 1000, hi * 1000, interval) // 1000
    if len(opens) == 0:
        return []
    if interval == "1mo":
        nxt = grid.points(lo * 1000, (int(opens[-1]) + 32 * 86_400_000) * 1000, interval) // 1000
        closes = [int(n) - 1 for n in nxt[1:len(opens) + 1]]
    else:
        step = grid.step_us(interval) // 1000
        closes = [int(o) + step - 1 for o in opens]
    rng = random.Random(f"{market}/{data_type}/{symbol}/{interval}/{seed}")
    pdec, qdec = _DECIMALS[market]
    price = rng.randint(30_000, 60_000) * 10**pdec if data_type != "premiumIndexKlines" else 0
    rows = []
    for o, c in zip(opens.tolist(), closes):
        if data_type == "premiumIndexKlines":          # e.g. "-0.00012345": 8 decimals, signed
            op, cl = rng.randint(-9000, 9000), rng.randint(-9000, 9000)
            hi_, lo_ = max(op, cl) + rng.randint(0, 500), min(op, cl) - rng.randint(0, 500)
            p = [_dec(v, 8) for v in (op, hi_, lo_, cl)]
        else:
            op = price
            cl = max(10**pdec, op + rng.randint(-50, 50) * 10**pdec)
            hi_ = max(op, cl) + rng.randint(0, 20) * 10**pdec
            lo_ = min(op, cl) - rng.randint(0, 20) * 10**pdec
            price = cl
            p = [_dec(v, pdec) for v in (op, hi_, lo_, cl)]
        if data_type == "klines":
            trades = rng.randint(0, 5000)
            vol = rng.randint(0, 10**6) if trades else 0
            taker = rng.randint(0, vol) if vol else 0
            if market == "cm":      # contracts -> coin: contracts * 100 USD / price, 8 decimals
                coin = vol * 100 * 10**8 * 10**pdec // max(op, 1)
                tcoin = taker * 100 * 10**8 * 10**pdec // max(op, 1)
                v = [_dec(vol, 0), _dec(coin, 8), _dec(taker, 0), _dec(tcoin, 8)]
            else:                   # base qty and quote = qty * price
                quote = vol * op
                tquote = taker * op
                v = [_dec(vol, qdec), _dec(quote, qdec + pdec), _dec(taker, qdec),
                     _dec(tquote, qdec + pdec)]
        else:                       # price-type klines carry no volume (Binance sends zeros)
            trades = 0
            v = ["0", "0", "0", "0"] if market == "cm" else ["0", "0.000", "0", "0.0000"]
        rows.append([o, *p, v[0], c, v[1], trades, v[2], v[3], "0"])
    return rows


def funding_rows(market: str, symbol: str, start, end, *, every_hours: int = 8,
                 jitter_ms: int = 0, seed: int = 0) -> list[dict]:
    """Binance REST funding rows for funding events every `every_hours` in [start, end).

    USDⓈ-M rows: ``{"symbol","fundingTime","fundingRate","markPrice"}``; COIN-M rows lack
    ``markPrice``. ``jitter_ms`` adds 0..jitter ms to each fundingTime, as live rows have.
    """
    rng = random.Random(f"{market}/funding/{symbol}/{seed}")
    step = every_hours * 3_600_000
    lo, hi = _ms(start), _ms(end)
    t = -(-lo // step) * step
    out = []
    while t < hi:
        row = {"symbol": symbol, "fundingTime": t + (rng.randint(0, jitter_ms) if jitter_ms else 0),
               "fundingRate": _dec(rng.randint(-5000, 15000), 8)}
        if market == "um":
            row["markPrice"] = _dec(rng.randint(30_000 * 10**8, 60_000 * 10**8), 8)
        out.append(row)
        t += step
    return out


# ---------------------------------------------------------------- request log and faults
@dataclass
class Hit:
    """One request as the server saw it; `t` is `time.monotonic()` at arrival."""
    t: float
    path: str
    query: dict
    status: int | None = None
    body: bytes | None = None            # what was sent back (None: nothing, e.g. a hang)
    auth: str | None = None              # the Authorization header, if any

    def int(self, name: str) -> int | None:
        v = self.query.get(name)
        return int(v) if v is not None else None


@dataclass
class Fault:
    """An answer to give instead of (or on top of) the normal one, `times` times."""
    status: int | None = None            # answer this HTTP status with `body`
    retry_after: float | None = None     # Retry-After header (seconds) with that status
    body: str | None = None
    hang: float = 0.0                    # sleep this long before answering (client may time out)
    mutate: Callable[[list], list] | None = None    # rewrite the rows of a normal answer
    path: str | None = None              # only requests whose path contains this
    times: int = 1


_DEFAULT_BODIES = {
    429: {"code": -1003, "msg": "Too many requests; current limit of IP is 2400 requests per minute."},
    418: {"code": -1003, "msg": "Way too many requests; IP banned."},
    500: {"code": -1000, "msg": "An unknown error occured while processing the request."},
}


class _Reject(Exception):
    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


# ---------------------------------------------------------------- the server
class FakeBinance:
    """A threaded HTTP server speaking Binance's REST shapes from seeded rows.

    ``rows``: ``{(market, data_type, symbol, interval): list}`` — kline rows (lists of 12) or
    funding rows (dicts; ``interval=None``). ``symbols``: extra known symbols per market (known
    but empty). Start with ``start()`` or a ``with`` block; ``url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, rows: dict | None = None, *, symbols: dict[str, list[str]] | None = None):
        self.rows: dict[tuple, list] = {}
        self._known: dict[str, set[str]] = {m: set(s) for m, s in (symbols or {}).items()}
        for k, v in (rows or {}).items():
            self.add(*k, v)
        self.requests: list[Hit] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- seeding and faults
    def add(self, market: str, data_type: str, symbol: str, interval: str | None, rows: list) -> None:
        """Seed (or extend) the rows of one (market, data_type, symbol, interval)."""
        self.rows.setdefault((market, data_type, symbol, interval), []).extend(rows)
        self._known.setdefault(market, set()).add(symbol)

    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None,
             body: str | None = None, path: str | None = None) -> None:
        """Answer the next `times` matching requests with HTTP `status`."""
        self.faults.append(Fault(status=status, retry_after=retry_after, body=body, path=path,
                                 times=times))

    def hang(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        """Sleep `seconds` before answering the next `times` matching requests."""
        self.faults.append(Fault(hang=seconds, path=path, times=times))

    def mutate(self, fn: Callable[[list], list], *, times: int = 1, path: str | None = None) -> None:
        """Pass the rows of the next `times` matching answers through `fn` (e.g. corrupt some)."""
        self.faults.append(Fault(mutate=fn, path=path, times=times))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.times > 0 and (f.path is None or f.path in path):
                    f.times -= 1
                    return f
        return None

    # -- lifecycle
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeBinance is not started; call start() or use it in a with block")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeBinance":
        self._stop.clear()
        self._httpd, self._thread = serve(_Handler, fake=self)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stop.set()                         # wakes hanging handlers
        shutdown(self._httpd, self._thread)
        self._httpd = None

    def __enter__(self) -> "FakeBinance":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- views of the log
    def paths(self) -> list[str]:
        return [h.path for h in self.requests]

    def hits(self, path_part: str) -> list[Hit]:
        return [h for h in self.requests if path_part in h.path]

    # -- answering
    def _known_symbol(self, market: str, symbol: str) -> bool:
        return symbol in self._known.get(market, set())

    def answer(self, path: str, q: dict) -> object:
        """The JSON value for a request, or raises _Reject with Binance's error code."""
        if path in EXCHANGE_INFO_PATHS:
            market = {"api": "spot", "fapi": "um", "dapi": "cm"}[path.split("/")[1]]
            return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                    "symbols": [{"symbol": s, "status": "TRADING"}
                                for s in sorted(self._known.get(market, ()))]}
        if path in KLINE_PATHS:
            return self._klines(*KLINE_PATHS[path], q)
        if path in FUNDING_PATHS:
            return self._funding(FUNDING_PATHS[path], q)
        raise _Reject(404, -1, f"no route for {path}")

    @staticmethod
    def _int(q: dict, name: str) -> int | None:
        v = q.get(name)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            raise _Reject(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                      "legal range is '^[0-9]{1,20}$'.") from None

    def _limit(self, q: dict, default: int, most: int) -> int:
        limit = self._int(q, "limit")
        if limit is None:
            return default
        if not 1 <= limit <= most:
            raise _Reject(400, -1130, f"Data sent for parameter 'limit' is not valid (1..{most}).")
        return limit

    def _klines(self, market: str, data_type: str, q: dict) -> list:
        key_name = "pair" if data_type == "indexPriceKlines" else "symbol"
        name = q.get(key_name)
        if not name:
            raise _Reject(400, -1102, f"Mandatory parameter '{key_name}' was not sent, "
                                      "was empty/null, or malformed.")
        interval = q.get("interval")
        allowed = _REST_INTERVALS if market == "spot" else _REST_INTERVALS[1:]
        if interval not in allowed:
            raise _Reject(400, -1120, "Invalid interval.")
        limit = self._limit(q, 500, _MAX_LIMIT[market])
        start, end = self._int(q, "startTime"), self._int(q, "endTime")
        archive_interval = "1mo" if interval == "1M" else interval
        if data_type == "indexPriceKlines":
            matches = [k for k in self.rows if k[:2] == (market, data_type) and k[3] == archive_interval
                       and k[2].split("_")[0] == name]
            known = any(s.split("_")[0] == name for s in self._known.get(market, ()))
            rows = self.rows[matches[0]] if matches else []
        else:
            known = self._known_symbol(market, name)
            rows = self.rows.get((market, data_type, name, archive_interval), [])
        if not known:
            raise _Reject(400, -1121, "Invalid symbol.")
        if market == "cm":
            if start is not None and end is None:
                end = start + DAPI_WINDOW_MS
            if start is not None and end - start > DAPI_WINDOW_MS:
                raise _Reject(400, -1127, "More than 200 days between startTime and endTime.")
        rows = sorted(rows, key=lambda r: r[0] if isinstance(r[0], int) else 0)
        sel = [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] <= end)]
        if market == "cm" or start is None:          # most recent `limit` rows ending at endTime
            return sel[-limit:]
        return sel[:limit]

    def _funding(self, market: str, q: dict) -> list:
        symbol = q.get("symbol")
        if market == "cm" and not symbol:
            raise _Reject(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol and not self._known_symbol(market, symbol):
            raise _Reject(400, -1121, "Invalid symbol.")
        limit = self._limit(q, 100, 1000)
        start, end = self._int(q, "startTime"), self._int(q, "endTime")
        rows = [r for (m, t, s, _), rs in self.rows.items() if m == market and t == "fundingRate"
                and (symbol is None or s == symbol) for r in rs]
        rows.sort(key=lambda r: r["fundingTime"])
        sel = [r for r in rows if (start is None or r["fundingTime"] >= start)
               and (end is None or r["fundingTime"] <= end)]
        return sel[:limit] if start is not None else sel[-limit:]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBinance
    server_version = "FakeBinance/1.0"

    def log_message(self, *args) -> None:        # keep test output clean
        pass

    def do_GET(self) -> None:                    # noqa: N802 (stdlib name)
        fake = self.fake
        parts = urlsplit(self.path)
        hit = Hit(time.monotonic(), parts.path, dict(parse_qsl(parts.query)),
                  auth=self.headers.get("Authorization"))
        with fake._lock:
            fake.requests.append(hit)
        fault = fake._take_fault(parts.path)
        try:
            if fault and fault.hang:
                if fake._stop.wait(fault.hang):
                    return
            if fault and fault.status:
                body = fault.body
                if body is None and fault.status in _DEFAULT_BODIES:
                    body = json.dumps(_DEFAULT_BODIES[fault.status])
                elif body is None:
                    body = "Service Unavailable" if fault.status == 503 else json.dumps({"code": -1, "msg": "error"})
                headers = {"Retry-After": _fmt(fault.retry_after)} if fault.retry_after is not None else {}
                self._send(fault.status, body, headers, hit)
                return
            try:
                value = fake.answer(parts.path, hit.query)
            except _Reject as r:
                self._send(r.status, json.dumps({"code": r.code, "msg": r.msg}), {}, hit)
                return
            if fault and fault.mutate and isinstance(value, list):
                value = fault.mutate([list(r) if isinstance(r, list) else dict(r)
                                      if isinstance(r, dict) else r for r in value])
            body = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            self._send(200, body, {}, hit)
        except (BrokenPipeError, ConnectionResetError):   # the client gave up (timeout)
            hit.status = hit.status or -1

    def _send(self, status: int, body: str, headers: dict, hit: Hit) -> None:
        data = body.encode()
        hit.status, hit.body = status, data
        self.send_response(status)
        ctype = "application/json" if body[:1] in "[{" else "text/plain"
        self.send_header("Content-Type", f"{ctype};charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
