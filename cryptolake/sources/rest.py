"""Binance REST as a top-up source for the days the archive lacks, through ccxt's raw methods.

`BinanceREST()` talks to Binance itself; `BinanceREST(endpoint="http://127.0.0.1:8080")` sends
every request to one server serving Binance's own paths (`/api/v3/...`, `/fapi/v1/...`,
`/dapi/v1/...`): a mirror, a proxy, or the test server in `cryptolake.testing.rest_server`.
Like the archive source, it never writes the lake: it hands back raw pages (for bronze) and
the silver table parsed from them.

What it gets right (docs/binance-archive.md §8-§10):

* ccxt's *raw implicit* methods (`publicGetKlines`, `fapiPublicGetKlines`, `dapiPublicGetKlines`,
  the mark/index/premium-index kline paths, `fapiPublicGetFundingRate`,
  `dapiPublicGetFundingRate`), so all 12 kline fields arrive (`fetch_ohlcv` keeps 6) and our
  own `limit` is sent (ccxt caps `fetch_ohlcv` at 1000; spot allows 1000, futures 1500).
  Markets are set by hand (`set_markets`), so no `exchangeInfo` request is ever made.
* Requests are made per UTC day, each with both `startTime` and `endTime` inside that day: one
  bronze page file per day (`page_key`), which the archive's daily file can later replace, and
  COIN-M never sees `startTime` alone nor a window over its 200-day limit. Spot/USDⓈ-M page
  forward from `startTime`; COIN-M returns the most recent `limit` rows ending at `endTime`,
  so it pages backwards.
* Only closed candles: `endTime` stops before the bar that contains `now`, and rows whose
  `close_time >= now` are dropped even if a server sends them.
* Interval `1mo` is sent as `1M`. Times are ms on REST (µs only with a header we never send);
  both are read per value by magnitude, like the archive parser, onto `timestamp[us, UTC]`.
  On spot bars from 2025-01-01, whose archive files are in µs, a ms `close_time` (…999 ms)
  becomes the bar's last µs (…999999), as the archive has it, so both sources agree.
* 429/418 wait for `Retry-After` (at least); 418 without it, 5xx, timeouts and refused
  connections back off exponentially (`backoff * 2**try`, at most `MAX_BACKOFF` s), at most
  `retries` times; a wait over `max_wait` gives up at once (a 418 ban can last days).
* A symbol the endpoint does not know (HTTP 400, -1121), an unreachable endpoint, or any other
  refusal ends that call with a message in `.errors`; nothing escapes for one symbol. Malformed
  rows are rejected whole, each with its reason, and the rest of the page is kept.
* `user:pass@` in the endpoint is sent as HTTP basic auth by the session and appears in no
  message, repr or URL that ccxt logs.

Bronze pages: ``rest/{market}/{data_type}/{symbol}/[{interval}/]{symbol}-{interval|data_type}-
{YYYY-MM-DD}.json``. The file holds the day's response bodies exactly as received (decoded as
UTF-8), in request order, separated by one newline: one body for most days, several when a
day needs more than one page (e.g. 1m spot: 1440 rows, 1000 per page). `parse_pages` turns
such files back into the silver table, so a partition stays a pure function of its bronze
files.

Funding interval rule: `funding_interval_hours` of a row is the gap to the previous funding
time among the rows parsed together, rounded to whole hours; the first row takes the gap to
the next one; a gap that is not 1, 2, 4, 8, 12 or 24 hours (± 5 min: a missing row, jitter
aside) or a lone row gives null.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np
import pyarrow as pa

from .. import grid, schema
from .parse import US_THRESHOLD

__all__ = ["BinanceREST", "RestPages", "parse_pages", "page_key", "parse_page_key",
           "days_with_data", "rest_interval", "MAX_LIMIT"]

MAX_LIMIT = {"spot": 1000, "um": 1500, "cm": 1500}     # kline rows per request
FUNDING_LIMIT = 1000
MAX_BACKOFF = 30.0
DAY_MS = 86_400_000
SPOT_US_FROM = 1_735_689_600_000_000      # 2025-01-01 in µs: the spot archive's µs era
_VALID_FUNDING_HOURS = (1, 2, 4, 8, 12, 24)
_API = {"spot": "public", "um": "fapiPublic", "cm": "dapiPublic"}
_PATH = {"klines": "Klines", "markPriceKlines": "MarkPriceKlines",
         "indexPriceKlines": "IndexPriceKlines", "premiumIndexKlines": "PremiumIndexKlines",
         "fundingRate": "FundingRate"}
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY")
_USERINFO = re.compile(r"(\w+://)[^/@\s]*@")
_SYMBOL_RE = re.compile(r"^[A-Z0-9_]{2,40}$")


def _symbol(symbol) -> str:
    """Upper-cased exchange symbol; anything else (it becomes part of bronze keys) is refused."""
    s = str(symbol).upper()
    if not _SYMBOL_RE.match(s):
        raise ValueError(f"symbol {symbol!r} is not an exchange symbol like 'BTCUSDT' or 'BTCUSD_PERP'")
    return s


def rest_interval(interval: str) -> str:
    """Archive interval name -> REST name: `1mo` -> `1M` (gotcha 6); others unchanged."""
    return "1M" if interval == "1mo" else interval


def _redact(text: str) -> str:
    """Remove `user:pass@` from any URL in a message."""
    return _USERINFO.sub(r"\1***@", str(text))


def _method(market: str, data_type: str) -> str:
    """ccxt raw method name, e.g. ("cm", "markPriceKlines") -> `dapiPublicGetMarkPriceKlines`."""
    return f"{_API[market]}Get{_PATH[data_type]}"


def _to_ms(now) -> int:
    """None (the current time), epoch ms, date, datetime, ISO string or pandas Timestamp -> ms."""
    if now is None:
        return int(time.time() * 1000)
    if isinstance(now, (int, np.integer)) and not isinstance(now, bool):
        return int(now)
    if isinstance(now, str):
        now = dt.datetime.fromisoformat(now.replace("Z", "+00:00"))
    if hasattr(now, "to_pydatetime"):
        now = now.to_pydatetime()
    if isinstance(now, dt.datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
        return int(round(now.timestamp() * 1000))
    if isinstance(now, dt.date):
        return (now - dt.date(1970, 1, 1)).days * DAY_MS
    raise ValueError(f"now={now!r} is not a time; use None, epoch ms, a datetime or 'YYYY-MM-DDTHH:MM'")


def _bar(days: list, desc: str, progress: bool):
    if not progress:
        return days
    from tqdm.auto import tqdm
    return tqdm(days, desc=desc, unit="day", leave=False)


def _day_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


# ---------------------------------------------------------------- bronze page names
def page_key(market: str, data_type: str, symbol: str, interval: str | None, day) -> str:
    """The bronze key of one day's REST pages (archive interval names: `1mo`, not `1M`)."""
    d = schema._as_date(day, "day")
    if data_type in schema.KLINE_TYPES:
        return f"rest/{market}/{data_type}/{symbol}/{interval}/{symbol}-{interval}-{d}.json"
    return f"rest/{market}/{data_type}/{symbol}/{symbol}-{data_type}-{d}.json"


_KEY_RE = re.compile(r"^rest/(spot|um|cm)/(\w+)/([A-Z0-9_]+)/(?:(\w+)/)?\3-(\w+)-(\d{4}-\d{2}-\d{2})\.json$")


def parse_page_key(name: str) -> tuple[str, str, str, str | None, dt.date]:
    """Inverse of `page_key`: -> (market, data_type, symbol, interval or None, day)."""
    m = _KEY_RE.match(name)
    if not m or (m.group(4) or m.group(2)) != m.group(5):
        raise ValueError(f"{name!r} is not a REST page key like "
                         f"'rest/um/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-01.json'")
    return m.group(1), m.group(2), m.group(3), m.group(4), dt.date.fromisoformat(m.group(6))


# ---------------------------------------------------------------- parsing pages
def _bodies(data: bytes):
    """The JSON values of a page file (one or more bodies separated by whitespace)."""
    text = data.decode("utf-8")
    dec, i, n = json.JSONDecoder(), 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return
        value, i = dec.raw_decode(text, i)
        yield value


def _int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} is not an integer: {v!r}")
    if v < 0:
        raise ValueError(f"{name} is negative: {v}")
    return v


def _num(v, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise ValueError(f"{name} is not a number: {v!r}")
    try:
        x = float(v)
    except ValueError:
        raise ValueError(f"{name} is not a number: {v!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} is not finite: {v!r}")
    return x


def _us(ms_or_us: int) -> int:
    return ms_or_us if ms_or_us >= US_THRESHOLD else ms_or_us * 1000


_KLINE_NUMBERS = ((1, "open"), (2, "high"), (3, "low"), (4, "close"), (5, "volume"),
                  (7, "quote_volume"), (9, "taker_buy_volume"), (10, "taker_buy_quote_volume"))


def _kline(r, day_us: int | None, spot: bool) -> tuple:
    """One REST kline row -> silver values (ignore dropped); raises ValueError with the reason."""
    if not isinstance(r, list) or len(r) != 12:
        raise ValueError(f"expected a list of 12 fields, got {type(r).__name__}"
                         f"{f' of {len(r)}' if isinstance(r, list) else ''}")
    ot, ct_raw = _us(_int(r[0], "open_time")), _int(r[6], "close_time")
    ct = _us(ct_raw)
    if spot and ot >= SPOT_US_FROM and ct_raw < US_THRESHOLD:
        ct += 999          # the µs archive ends a bar on its last µs (…999999), REST on its last ms
    o, h, lo, c, v, qv, tb, tq = (_num(r[i], n) for i, n in _KLINE_NUMBERS)
    n = _int(r[8], "trades")
    if min(v, qv, tb, tq) < 0:
        raise ValueError("a volume is negative")
    if lo > h:
        raise ValueError(f"low {r[3]} is above high {r[2]}")
    if ct <= ot:
        raise ValueError(f"close_time {r[6]} is not after open_time {r[0]}")
    if day_us is not None and not day_us <= ot < day_us + DAY_MS * 1000:
        raise ValueError(f"open_time {r[0]} is outside the page's day")
    return (ot, o, h, lo, c, v, ct, qv, n, tb, tq)


def _funding(r, symbol: str | None, day_us: int | None) -> tuple:
    if not isinstance(r, dict):
        raise ValueError(f"expected an object, got {type(r).__name__}")
    if symbol is not None and r.get("symbol", symbol) != symbol:
        raise ValueError(f"row is for symbol {r.get('symbol')!r}, not {symbol!r}")
    t = _us(_int(r.get("fundingTime"), "fundingTime"))
    rate = _num(r.get("fundingRate"), "fundingRate")
    mp = r.get("markPrice")
    mark = None if mp in (None, "") else _num(mp, "markPrice")
    if day_us is not None and not day_us <= t < day_us + DAY_MS * 1000:
        raise ValueError(f"fundingTime {r.get('fundingTime')} is outside the page's day")
    return (t, rate, mark)


def _interval_hours(times_us: np.ndarray) -> list:
    """The module's funding-interval rule (see the module docstring)."""
    n = len(times_us)
    if n < 2:
        return [None] * n
    gaps = np.diff(times_us) / 3.6e9
    out = []
    for i in range(n):
        g = gaps[i - 1] if i else gaps[0]
        h = int(round(g))
        out.append(h if h in _VALID_FUNDING_HOURS and abs(g - h) <= 5 / 60 else None)
    return out


def parse_pages(market: str, data_type: str, pages, *, now=None, rejected: list | None = None) -> pa.Table:
    """REST page files [(name, bytes)] -> one table in `schema.silver_schema(market, data_type)`
    with `source="rest"`, deduplicated on its time column (first row wins) and sorted.

    Rows that cannot be read are left out whole; when `rejected` is a list, each is appended as
    ``{"page", "index", "row", "reason"}`` (index None: the whole body). A page named by
    `page_key` also rejects rows outside its day. `now` (epoch ms or a time) drops kline rows
    whose close_time is not before it (unclosed candles).
    """
    if market not in schema.MARKETS:
        raise ValueError(f"unknown market {market!r}; allowed: {', '.join(schema.MARKETS)}")
    target = schema.silver_schema(market, data_type)
    klines = data_type in schema.KLINE_TYPES
    now_us = _to_ms(now) * 1000 if now is not None else None
    rejected = [] if rejected is None else rejected
    rows: list[tuple] = []
    for name, data in pages:
        try:
            _, _, symbol, _, day = parse_page_key(name)
            day_us = _day_ms(day) * 1000
        except ValueError:
            symbol, day_us = None, None
        index = 0
        try:
            bodies = list(_bodies(data))
        except (UnicodeDecodeError, ValueError) as e:
            rejected.append({"page": name, "index": None, "row": data[:200].decode("utf-8", "replace"),
                             "reason": f"page is not JSON: {e}"})
            continue
        for body in bodies:
            if not isinstance(body, list):
                rejected.append({"page": name, "index": None, "row": json.dumps(body)[:200],
                                 "reason": "page body is not a JSON array"})
                continue
            for r in body:
                try:
                    rows.append(_kline(r, day_us, market == "spot") if klines
                                else _funding(r, symbol, day_us))
                except ValueError as e:
                    rejected.append({"page": name, "index": index, "row": json.dumps(r)[:200],
                                     "reason": str(e)})
                index += 1
    if klines and now_us is not None:
        rows = [r for r in rows if r[6] < now_us]
    if not rows:
        return target.empty_table()
    # dedupe on the time column (first row wins), then sort
    seen, uniq = set(), []
    for r in rows:
        if r[0] not in seen:
            seen.add(r[0])
            uniq.append(r)
    uniq.sort(key=lambda r: r[0])
    cols = list(zip(*uniq))
    n = len(uniq)
    if klines:
        arrays = [pa.array(cols[i], type=pa.int64()).cast(schema.TS) if i in (0, 6)
                  else pa.array(cols[i], type=target.field(i).type) for i in range(11)]
    else:
        t = np.asarray(cols[0], dtype=np.int64)
        arrays = [pa.array(t).cast(schema.TS), pa.array(cols[1], pa.float64()),
                  pa.array(_interval_hours(t), pa.int64()), pa.array(cols[2], pa.float64())]
    arrays.append(pa.repeat(pa.scalar("rest", pa.string()), n))
    return pa.Table.from_arrays(arrays, schema=target)


def days_with_data(table: pa.Table) -> set[dt.date]:
    """The UTC days on which `table` (a kline or funding silver table) has rows."""
    col = "open_time" if "open_time" in table.column_names else "funding_time"
    us = table.column(col).cast(pa.int64()).to_numpy()
    return {dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in np.unique(us // (DAY_MS * 1000))}


# ---------------------------------------------------------------- results
@dataclass
class RestPages:
    """What one `klines`/`funding` call brought back.

    pages: [(page_key, raw bytes)] for bronze, one per requested UTC day; table: the silver
    rows parsed from them (closed candles only, `source="rest"`); errors: what went wrong (the
    call stops at the first fatal error; days already complete are kept); rejected: malformed
    rows with reasons; requests: HTTP requests made (retries included).
    """
    market: str
    data_type: str
    symbol: str
    interval: str | None
    pages: list = field(default_factory=list)
    table: pa.Table | None = None
    errors: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def days(self) -> set[dt.date]:
        """UTC days with at least one row."""
        return days_with_data(self.table) if self.table is not None else set()

    def __repr__(self) -> str:
        rows = self.table.num_rows if self.table is not None else 0
        return (f"RestPages({self.market} {self.data_type} {self.symbol}"
                f"{' ' + self.interval if self.interval else ''}: {len(self.pages)} pages, {rows} rows, "
                f"{len(self.rejected)} rejected, {len(self.errors)} errors)")


class _Stop(Exception):
    """A failure that ends one call (unknown symbol, exhausted retries, a refusal)."""


# ---------------------------------------------------------------- the source
class BinanceREST:
    """Binance REST klines and funding history through ccxt, for days the archive lacks.

    endpoint: None for Binance itself, or a base URL serving Binance's paths.
    timeout: seconds per request. retries: extra tries after a 429/418, 5xx, timeout or
    connection failure. backoff: first backoff in seconds (doubled per try, capped at
    MAX_BACKOFF). rate_limit: ccxt's request-weight throttle. page_limit: rows per kline
    request below the endpoint maximum (e.g. for a proxy with a lower cap). max_wait: longest
    wait accepted (Retry-After or backoff) before giving up.
    """

    def __init__(self, endpoint: str | None = None, *, timeout: float = 10, retries: int = 4,
                 backoff: float = 0.5, rate_limit: bool = True, page_limit: int | None = None,
                 max_wait: float = 120.0):
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError(f"need timeout > 0, retries >= 0, backoff >= 0; got timeout={timeout}, "
                             f"retries={retries}, backoff={backoff}")
        if page_limit is not None and page_limit < 1:
            raise ValueError(f"page_limit must be >= 1 or None, got {page_limit}")
        self._auth = None
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"endpoint {_redact(endpoint)!r} is not an http(s) URL "
                                 f"like 'http://127.0.0.1:8080'")
            if parts.username is not None:
                self._auth = (unquote(parts.username), unquote(parts.password or ""))
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            netloc = host + (f":{parts.port}" if parts.port else "")
            endpoint = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.endpoint = endpoint
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.rate_limit, self.page_limit, self.max_wait = rate_limit, page_limit, max_wait
        self._ex = None
        self._markets: dict[str, dict] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BinanceREST({self.endpoint or 'binance.com'!r})"

    def __getstate__(self) -> dict:          # picklable (e.g. shipped to workers): no live client
        state = dict(self.__dict__)
        state["_ex"], state["_lock"], state["_markets"] = None, None, {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- ccxt plumbing
    def _exchange(self):
        if self._ex is None:
            import ccxt

            class _Binance(ccxt.binance):
                raw_body = ""

                def on_rest_response(self, code, reason, url, method, response_headers,
                                     response_body, request_headers, request_body):
                    self.raw_body = response_body          # exactly as received (UTF-8 text)
                    return super().on_rest_response(code, reason, url, method, response_headers,
                                                    response_body, request_headers, request_body)

            ex = _Binance({"enableRateLimit": self.rate_limit, "timeout": int(self.timeout * 1000),
                           "options": {"fetchCurrencies": False, "fetchMargins": False,
                                       "fetchMarkets": {"types": []}}})
            if self.endpoint:
                for k, v in ex.urls["api"].items():
                    if isinstance(v, str) and v.startswith("http"):
                        ex.urls["api"][k] = self.endpoint + urlsplit(v).path
            if self._auth:
                ex.session.auth = self._auth
            self._ex = ex
        return self._ex

    def _ensure_market(self, market: str, symbol: str) -> None:
        """Give ccxt a minimal market for the symbol so nothing ever loads exchangeInfo."""
        key = f"{market}:{symbol}"
        if key in self._markets:
            return
        pair, _, expiry = symbol.partition("_")
        quote = next((q for q in _QUOTES if pair.endswith(q) and len(pair) > len(q)), "")
        base = pair[: len(pair) - len(quote)] if quote else pair
        settle = {"spot": None, "um": quote, "cm": base}[market]
        unified = f"{base}/{quote}" + (f":{settle}" if settle else "")
        if expiry and expiry != "PERP":
            unified += f"-{expiry}"
        self._markets[key] = {
            "id": symbol, "symbol": unified,
            "base": base, "quote": quote, "settle": settle, "baseId": base, "quoteId": quote,
            "settleId": settle, "type": "spot" if market == "spot" else "swap",
            "spot": market == "spot", "margin": False, "swap": market != "spot", "future": False,
            "option": False, "contract": market != "spot", "linear": market == "um" or None,
            "inverse": market == "cm" or None, "active": True, "contractSize": None if market == "spot" else 1,
            "precision": {}, "limits": {}, "info": {"symbol": symbol}, "lowercaseId": symbol.lower(),
        }
        self._exchange().set_markets(list(self._markets.values()))

    def _wait(self, exc, headers, attempt: int) -> float:
        """Seconds to wait before retry `attempt + 1`: Retry-After if given, else backoff."""
        import ccxt
        ra = (headers or {}).get("Retry-After") if isinstance(exc, ccxt.DDoSProtection) else None
        if ra is not None:
            try:
                return max(0.0, float(ra))
            except ValueError:
                when = email.utils.parsedate_to_datetime(ra)
                return max(0.0, when.timestamp() - time.time())
        return min(MAX_BACKOFF, self.backoff * 2 ** attempt)

    def _call(self, method: str, params: dict, where: str, counter: list) -> tuple[object, bytes]:
        """One request with retries -> (JSON value, raw body bytes); raises _Stop."""
        import ccxt
        ex = self._exchange()
        attempt = 0
        while True:
            with self._lock:
                ex.last_response_headers = None
                ex.raw_body = ""
                counter[0] += 1
                try:
                    value = getattr(ex, method)(params)
                    return value, ex.raw_body.encode("utf-8")
                except ccxt.BadSymbol as e:
                    raise _Stop(f"{where}: the REST endpoint does not know the symbol "
                                f"(HTTP 400, -1121): {_redact(e)}") from None
                except ccxt.OperationFailed as e:          # 429/418, 5xx, timeouts, refused
                    err, headers = e, dict(ex.last_response_headers or {})
                except ccxt.BaseError as e:
                    raise _Stop(f"{where}: the REST endpoint refused {method}: {_redact(e)}") from None
            wait = self._wait(err, headers, attempt)
            kind = type(err).__name__
            if attempt >= self.retries:
                raise _Stop(f"{where}: REST endpoint {self!r} failed after {attempt + 1} tries "
                            f"({kind}): {_redact(err)}")
            if wait > self.max_wait:
                raise _Stop(f"{where}: REST endpoint {self!r} asks to wait {wait:.0f} s "
                            f"(more than max_wait={self.max_wait:.0f} s); giving up ({kind}): "
                            f"{_redact(err)}")
            time.sleep(wait)
            attempt += 1

    # -- public API
    @staticmethod
    def _days(start, end, now_ms: int) -> list[dt.date]:
        s, e = schema._as_date(start, "start"), schema._as_date(end, "end")
        today = dt.date(1970, 1, 1) + dt.timedelta(days=now_ms // DAY_MS)
        e = min(e or today, today)
        if s is None:
            raise ValueError("start is required (an inclusive UTC date, 'YYYY-MM-DD')")
        return [s + dt.timedelta(days=i) for i in range((e - s).days + 1)]

    def klines(self, market: str, data_type: str, symbol: str, interval: str, start, end,
               now=None, *, progress: bool = False) -> RestPages:
        """Closed kline-class bars of `symbol` opening on the UTC days start..end (inclusive).

        data_type: klines, markPriceKlines, indexPriceKlines or premiumIndexKlines; interval in
        archive names (`1m` .. `1mo`). `progress` shows a bar over the days. Never raises for
        endpoint trouble: see `.errors`.
        """
        req = schema.validate_request(market, data_type, interval, start, end)
        symbol = _symbol(symbol)
        if data_type not in schema.KLINE_TYPES:
            raise ValueError(f"klines() takes a kline type ({', '.join(schema.KLINE_TYPES)}), "
                             f"not {data_type!r}; use funding() for fundingRate")
        now_ms = _to_ms(now)
        out = RestPages(market, data_type, symbol, interval)
        method = _method(market, data_type)
        name_param = "pair" if data_type == "indexPriceKlines" else "symbol"
        name = symbol.split("_")[0] if name_param == "pair" else symbol
        most = min(MAX_LIMIT[market], self.page_limit or MAX_LIMIT[market])
        closed_before = int(grid.floor(np.array([now_ms * 1000]), interval)[0]) // 1000
        counter = [0]
        days = self._days(req.start, req.end, now_ms)
        self._ensure_market(market, symbol)
        for day in _bar(days, f"REST {market} {data_type} {symbol} {interval}", progress):
            lo = _day_ms(day)
            hi = min(lo + DAY_MS - 1, closed_before - 1)      # open times of closed bars only
            if hi < lo or grid.count(lo * 1000, hi * 1000, interval) == 0:
                continue
            where = f"{market} {data_type} {symbol} {interval} {day}"
            bodies = []
            try:
                while lo <= hi and (left := grid.count(lo * 1000, hi * 1000, interval)) > 0:
                    limit = min(most, left)
                    params = {name_param: name, "interval": rest_interval(interval),
                              "startTime": lo, "endTime": hi, "limit": limit}
                    value, raw = self._call(method, params, where, counter)
                    bodies.append(raw)
                    opens = [_us(r[0]) // 1000 for r in value          # ms, even from a µs server
                             if isinstance(r, list) and r and isinstance(r[0], int)] \
                        if isinstance(value, list) else []
                    if len(value) < limit or not opens:
                        break
                    if market == "cm":                          # most recent rows ending at endTime
                        nxt = min(opens) - 1
                        if nxt >= hi:
                            break
                        hi = nxt
                    else:
                        nxt = max(opens) + 1
                        if nxt <= lo:
                            break
                        lo = nxt
            except _Stop as e:
                out.errors.append(f"{e}; days {day}..{days[-1]} not fetched")
                break
            out.pages.append((page_key(market, data_type, symbol, interval, day), b"\n".join(bodies)))
        out.requests = counter[0]
        out.table = parse_pages(market, data_type, out.pages, now=now_ms, rejected=out.rejected)
        return out

    def funding(self, market: str, symbol: str, start, end, now=None, *,
                progress: bool = False) -> RestPages:
        """Funding events of a USDⓈ-M or COIN-M perpetual on the UTC days start..end (inclusive).

        USDⓈ-M rows carry the mark price; COIN-M rows have none (null). Never raises for
        endpoint trouble: see `.errors`.
        """
        req = schema.validate_request(market, "fundingRate", None, start, end)
        symbol = _symbol(symbol)
        now_ms = _to_ms(now)
        out = RestPages(market, "fundingRate", symbol, None)
        method = _method(market, "fundingRate")
        counter = [0]
        days = self._days(req.start, req.end, now_ms)
        self._ensure_market(market, symbol)
        for day in _bar(days, f"REST {market} fundingRate {symbol}", progress):
            lo = _day_ms(day)
            hi = min(lo + DAY_MS - 1, now_ms)
            if hi < lo:
                continue
            where = f"{market} fundingRate {symbol} {day}"
            bodies = []
            try:
                while lo <= hi:
                    value, raw = self._call(method, {"symbol": symbol, "startTime": lo, "endTime": hi,
                                                     "limit": FUNDING_LIMIT}, where, counter)
                    bodies.append(raw)
                    times = [_us(r["fundingTime"]) // 1000 for r in value if isinstance(r, dict)
                             and isinstance(r.get("fundingTime"), int)] if isinstance(value, list) else []
                    if len(value) < FUNDING_LIMIT or not times or max(times) + 1 <= lo:
                        break
                    lo = max(times) + 1
            except _Stop as e:
                out.errors.append(f"{e}; days {day}..{days[-1]} not fetched")
                break
            out.pages.append((page_key(market, "fundingRate", symbol, None, day), b"\n".join(bodies)))
        out.requests = counter[0]
        out.table = parse_pages(market, "fundingRate", out.pages, now=now_ms, rejected=out.rejected)
        return out
