"""Write archive-format files (data.binance.vision's layout and bytes) into any fsspec location.

This is the independent side of every ingest test: it generates realistic, seeded bars,
renders them the way Binance does (zip holding one CSV named like the zip, deflated, LF line
endings, final newline, plus ``<zip>.CHECKSUM`` = ``<sha256>  <zip name>\\n``) and remembers,
in silver terms, what it wrote (:meth:`ArchiveBuilder.frame`). It never imports the parser.

    b = ArchiveBuilder("memory://archive")            # or file:///tmp/x, s3://data.binance.vision
    key = b.klines("um", "BTCUSDT", "1m", "2024-01-02", missing=[slice(60, 120)], duplicates=3)
    b.funding("um", "BTCUSDT", "2024-01")
    b.junk(key.key.rsplit("/", 1)[0])                 # a Spark leftover part-00000-….zip
    expected = b.frame(key)                           # DataFrame in the silver schema

Values are generated as integers in ticks and rendered as exact decimal strings, so the
frame's floats (``ticks / 10**decimals``) are exactly what a correct decimal parser returns.
"""
from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import io
import random
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Iterable

import fsspec
from fsspec.implementations.local import LocalFileSystem
import numpy as np
import pandas as pd

from cryptolake import schema
from cryptolake.layout import ArchiveKey, symbol_dir

__all__ = ["ArchiveBuilder", "ArchiveFile", "ArchiveSite", "render_klines", "render_funding",
           "zip_csv", "checksum_line", "realistic_header", "realistic_unit", "KLINE_HEADER",
           "FUNDING_HEADER"]

KLINE_HEADER = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")

# Decimals as printed by the archive, per market: (price, volume, quote volume).
_DECIMALS = {"spot": (8, 8, 8), "um": (2, 3, 5), "cm": (1, 0, 8)}
_PRICE_TICK = {"spot": 10**6, "um": 10, "cm": 1}     # price tick in units of 10**-decimals
_START_PRICE = {"BTC": 40_000.0, "ETH": 2_200.0, "SOL": 100.0, "BNB": 300.0, "XRP": 0.6,
                "DOGE": 0.08}
_SPOT_LOT = {"BTC": 10**3, "ETH": 10**4, "SOL": 10**5, "BNB": 10**5}   # qty step, 1e-8 units
_CM_CONTRACT_USD = {"BTC": 100}                      # BTCUSD_PERP: 100 USD, others 10 USD
_US_FROM = dt.date(2025, 1, 1)                       # spot files from this date are in µs
_HEADER_DAILY_FROM = dt.date(2022, 8, 11)            # futures kline headers (see archive doc §3)
_HEADER_MONTHLY_FROM = dt.date(2022, 1, 1)


# ---------------------------------------------------------------- small pure helpers
_ALWAYS_HEADED = ("fundingRate", "metrics", "bookDepth", "bookTicker", "liquidationSnapshot")
_TRADES_HEADER_MONTHLY_FROM = dt.date(2022, 8, 1)    # monthly trade files made after 2022-08-11


def realistic_header(market: str, data_type: str, cadence: str, first_day: dt.date) -> bool:
    """Whether Binance heads such a file with column names: spot never; funding, metrics,
    bookDepth, bookTicker and liquidationSnapshot always; futures klines from 2022-08-11
    (daily) / 2022-01 (monthly); futures aggTrades/trades from 2022-08-11 (daily) / 2022-08
    (monthly)."""
    if data_type in _ALWAYS_HEADED:
        return True
    if market == "spot":
        return False
    if data_type in ("aggTrades", "trades"):
        return first_day >= (_HEADER_DAILY_FROM if cadence == "daily" else _TRADES_HEADER_MONTHLY_FROM)
    return first_day >= (_HEADER_DAILY_FROM if cadence == "daily" else _HEADER_MONTHLY_FROM)


def realistic_unit(market: str, first_day: dt.date) -> str:
    """"us" for spot files dated 2025-01-01 and later, "ms" otherwise."""
    return "us" if market == "spot" and first_day >= _US_FROM else "ms"


def checksum_line(zip_bytes: bytes, zip_name: str) -> bytes:
    """The `.CHECKSUM` body: `<64 lowercase hex>  <zip name>\\n` (sha256sum -c compatible)."""
    return f"{hashlib.sha256(zip_bytes).hexdigest()}  {zip_name}\n".encode()


def zip_csv(csv: bytes, member: str, when: dt.datetime | None = None) -> bytes:
    """A deflated zip holding exactly one member; deterministic for the same inputs."""
    when = when or dt.datetime(2020, 1, 1)
    info = zipfile.ZipInfo(member, date_time=when.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(info, csv)
    return buf.getvalue()


def _dec(values: np.ndarray, decimals: int) -> list[str]:
    """Integers in units of 10**-decimals -> exact decimal strings ("-0.00003449")."""
    if decimals == 0:
        return [str(int(v)) for v in values]
    s = 10**decimals
    out = []
    for v in values.tolist():
        sign = "-" if v < 0 else ""
        q, r = divmod(abs(v), s)
        out.append(f"{sign}{q}.{r:0{decimals}d}")
    return out


def _utc_us(us: np.ndarray) -> pd.DatetimeIndex:
    """Epoch µs integers -> tz-aware UTC times at µs resolution (silver's dtype)."""
    return pd.DatetimeIndex(np.asarray(us, dtype=np.int64).view("datetime64[us]")).tz_localize("UTC")


def _ms(ts) -> int:
    """Timestamp-like -> epoch ms (naive values are UTC)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1_000_000)


def _period_bounds(cadence: str, period: str) -> tuple[dt.date, int, int]:
    """(first day, start ms inclusive, end ms exclusive) of a daily or monthly period."""
    if cadence == "daily":
        d0 = dt.date.fromisoformat(period)
        d1 = d0 + dt.timedelta(days=1)
    elif cadence == "monthly":
        d0 = dt.date.fromisoformat(period + "-01")
        y, m = d0.year, d0.month
        d1 = dt.date(y + (m == 12), m % 12 + 1, 1)
    else:
        raise ValueError(f"cadence must be 'daily' or 'monthly', got {cadence!r}")
    ep = dt.date(1970, 1, 1)
    return d0, (d0 - ep).days * 86_400_000, (d1 - ep).days * 86_400_000


def _grid(interval: str, start: int, end: int) -> np.ndarray:
    """Bar open times (ms) in [start, end) on the archive's grid: epoch-aligned fixed
    intervals, Monday-aligned weeks, calendar months for 1mo."""
    if interval == "1mo":
        d = dt.datetime.fromtimestamp(start / 1000, dt.timezone.utc)
        out, y, m = [], d.year, d.month
        while True:
            t = calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
            if t >= end:
                break
            if t >= start:
                out.append(t)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return np.array(out, dtype=np.int64)
    step = schema.interval_ms(interval)
    offset = 4 * 86_400_000 if interval == "1w" else 0       # 1970-01-05 was a Monday
    first = -(-(start - offset) // step) * step + offset
    return np.arange(first, end, step, dtype=np.int64)


def _base(symbol: str) -> str:
    for b in sorted(_START_PRICE, key=len, reverse=True):
        if symbol.startswith(b):
            return b
    return ""


def _select_missing(open_ms: np.ndarray, missing: Iterable) -> np.ndarray:
    """Boolean mask of the bars to drop. Items: int (bar index), slice (bar indices),
    a timestamp (that bar's open time), or a (start, end) pair of timestamps (inclusive)."""
    drop = np.zeros(len(open_ms), dtype=bool)
    idx = np.arange(len(open_ms))
    for item in missing or ():
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            drop[int(item)] = True
        elif isinstance(item, slice):
            drop[idx[item]] = True
        elif isinstance(item, tuple) and len(item) == 2:
            lo, hi = _ms(item[0]), _ms(item[1])
            drop |= (open_ms >= lo) & (open_ms <= hi)
        else:
            drop |= open_ms == _ms(item)
    return drop


# ---------------------------------------------------------------- a generated file
@dataclass
class ArchiveFile:
    """One rendered archive file: its key, CSV and zip bytes, and the expected silver rows."""
    key: ArchiveKey
    csv: bytes
    zip: bytes
    frame: pd.DataFrame          # silver terms: deduplicated, sorted, silver column names
    header: bool
    unit: str                    # "ms" | "us"
    rows_written: int            # data rows in the CSV (duplicates included)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.zip).hexdigest()

    @property
    def checksum(self) -> bytes:
        return checksum_line(self.zip, self.key.filename)


def _source(cadence: str) -> str:
    return "archive_monthly" if cadence == "monthly" else "archive_daily"


def _csv_bytes(header: tuple[str, ...] | None, columns: list[list[str]], order: np.ndarray) -> bytes:
    rows = [",".join(r) for r in zip(*columns)]
    lines = ([",".join(header)] if header else []) + [rows[i] for i in order]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _written_order(n: int, duplicates: int, shuffle: bool, rng: np.random.Generator) -> np.ndarray:
    """Row indices as written: each of `duplicates` random rows appears twice (adjacent, like
    the archive's doubled rows), then optionally shuffled."""
    order = list(range(n))
    if duplicates and n:
        picks = sorted(rng.choice(n, size=min(duplicates, n), replace=False).tolist(), reverse=True)
        for p in picks:
            order.insert(p + 1, p)
    order = np.array(order, dtype=np.int64)
    if shuffle:
        rng.shuffle(order)
    return order


def render_klines(market: str, symbol: str, interval: str, period: str, cadence: str | None = None,
                  *, data_type: str = "klines", header: bool | None = None, unit: str | None = None,
                  missing: Iterable = (), duplicates: int = 0, shuffle: bool = False, seed: int = 0,
                  start_price: float | None = None, when: dt.datetime | None = None) -> ArchiveFile:
    """Generate one kline-class file (see :meth:`ArchiveBuilder.klines`) without writing it."""
    cadence = cadence or ("daily" if len(period) == 10 else "monthly")
    if data_type not in schema.KLINE_TYPES:
        raise ValueError(f"data_type must be one of {schema.KLINE_TYPES}, got {data_type!r}")
    schema.validate_request(market, data_type, interval, ingestible_only=False)
    if cadence == "daily" and interval not in schema.DAILY_INTERVALS:
        raise ValueError(f"interval {interval!r} has no daily files; use cadence='monthly'")
    key = ArchiveKey(market, cadence, data_type, symbol, interval, period)
    first_day, start, end = _period_bounds(cadence, period)
    header = realistic_header(market, data_type, cadence, first_day) if header is None else header
    unit = realistic_unit(market, first_day) if unit is None else unit
    if unit not in ("ms", "us"):
        raise ValueError(f"unit must be 'ms' or 'us', got {unit!r}")

    seq = np.random.SeedSequence([seed, *symbol.encode(), *interval.encode(), *period.encode(),
                                  *market.encode(), *data_type.encode()])
    rng = np.random.default_rng(seq)
    all_open = _grid(interval, start, end)
    n_all = len(all_open)
    step_ms = np.diff(np.append(all_open, _grid(interval, end, end + 40 * 86_400_000)[:1]))
    pd_, vd, qd = _DECIMALS[market]
    minutes = max(float(np.median(step_ms)) / 60_000 if n_all else 1.0, 1 / 60)

    # ---- prices: a random walk in ticks (premium index: a small signed ratio, 8 decimals)
    if data_type == "premiumIndexKlines":
        pd_, tick = 8, 1
        path = np.round(rng.normal(0, 20, n_all + 1).cumsum()).astype(np.int64) + int(rng.integers(-500, 500))
        open_, close = path[:-1], path[1:]
        wig = np.abs(rng.normal(0, 15, (2, n_all))).astype(np.int64)
    else:
        tick = _PRICE_TICK[market]
        p0 = start_price if start_price is not None else _START_PRICE.get(_base(symbol), 100.0)
        p0_ticks = max(int(round(p0 * 10**pd_ / tick)), 1000)
        sigma = 0.0008 * np.sqrt(minutes)
        path = p0_ticks * np.exp(np.cumsum(rng.normal(0, sigma, n_all + 1)))
        path = np.maximum(np.round(path).astype(np.int64), 1)
        open_, close = path[:-1] * tick, path[1:] * tick
        wig = (np.abs(rng.normal(0, sigma * 0.6, (2, n_all))) * path[:-1] + 0.5).astype(np.int64) * tick
    high = np.maximum(open_, close) + wig[0]
    low = np.minimum(open_, close) - wig[1]
    if data_type != "premiumIndexKlines":
        low = np.maximum(low, tick)

    # ---- volumes / counts
    zeros = np.zeros(n_all, dtype=np.int64)
    if data_type == "klines":
        u = rng.uniform(0.2, 0.8, n_all)
        vwap = (low + (high - low) * rng.uniform(0, 1, n_all)) / 10**pd_         # float price
        if market == "cm":
            contract = _CM_CONTRACT_USD.get(_base(symbol), 10)
            vol = np.round(rng.lognormal(np.log(3000 * minutes), 0.8, n_all)).astype(np.int64)
            qv = np.round(vol * contract / vwap * 10**qd).astype(np.int64)       # coin
            tbv = np.round(vol * u).astype(np.int64)
            tbq = np.round(tbv * contract / vwap * 10**qd).astype(np.int64)
        else:
            notional = rng.lognormal(np.log(2e5 * minutes), 0.8, n_all)          # quote per bar
            lot = _SPOT_LOT.get(_base(symbol), 10**6) if market == "spot" else 1   # qty step
            vol = np.round(notional / vwap * 10**vd / lot).astype(np.int64) * lot
            qv = np.round(vol / 10**vd * vwap * 10**qd).astype(np.int64)
            tbv = np.round(vol * u / lot).astype(np.int64) * lot
            tbq = np.round(tbv / 10**vd * vwap * 10**qd).astype(np.int64)
        trades = np.maximum(np.round(rng.lognormal(np.log(400 * minutes), 0.6, n_all)), 1).astype(np.int64)
        quiet = rng.uniform(0, 1, n_all) < 0.01                                   # zero-volume bars
        vol[quiet] = qv[quiet] = tbv[quiet] = tbq[quiet] = trades[quiet] = 0
        high[quiet] = low[quiet] = open_[quiet] = close[quiet]
    else:   # mark / index / premium: no volumes; position 8 counts the underlying samples
        vol = qv = tbv = tbq = zeros
        trades = np.full(n_all, int(round(minutes * 60)), dtype=np.int64)

    keep = ~_select_missing(all_open, missing)
    sel = np.flatnonzero(keep)
    op_ms = all_open[sel]
    step_sel = step_ms[sel]
    f = 1000 if unit == "us" else 1
    open_u = op_ms * f
    close_u = (op_ms + step_sel) * f - 1
    cols = [[str(v) for v in open_u.tolist()], _dec(open_[sel], pd_), _dec(high[sel], pd_),
            _dec(low[sel], pd_), _dec(close[sel], pd_), _dec(vol[sel], vd if data_type == "klines" else 0),
            [str(v) for v in close_u.tolist()], _dec(qv[sel], qd if data_type == "klines" else 0),
            [str(v) for v in trades[sel].tolist()], _dec(tbv[sel], vd if data_type == "klines" else 0),
            _dec(tbq[sel], qd if data_type == "klines" else 0), ["0"] * len(sel)]
    order = _written_order(len(sel), duplicates, shuffle, rng)
    csv = _csv_bytes(KLINE_HEADER if header else None, cols, order)

    vscale = 10**vd if data_type == "klines" else 1
    qscale = 10**qd if data_type == "klines" else 1
    sch = schema.kline_schema(market)
    names = sch.names
    frame = pd.DataFrame({
        names[0]: _utc_us(op_ms * 1000),
        "open": open_[sel] / 10**pd_, "high": high[sel] / 10**pd_,
        "low": low[sel] / 10**pd_, "close": close[sel] / 10**pd_,
        "volume": vol[sel] / vscale,
        "close_time": _utc_us(close_u if unit == "us" else close_u * 1000),
        names[7]: qv[sel] / qscale, "trades": trades[sel].astype(np.int64),
        "taker_buy_volume": tbv[sel] / vscale, names[10]: tbq[sel] / qscale,
        "source": pd.array([_source(cadence)] * len(sel), dtype="str"),
    })
    when = when or dt.datetime.combine(key.last_day + dt.timedelta(days=1), dt.time(0, 13))
    return ArchiveFile(key, csv, zip_csv(csv, key.filename[:-4] + ".csv", when), frame,
                       header, unit, len(order))


def render_funding(market: str, symbol: str, month: str, *, interval_hours: int = 8,
                   jitter_ms: bool = True, header: bool = True, missing: Iterable = (),
                   duplicates: int = 0, shuffle: bool = False, seed: int = 0,
                   when: dt.datetime | None = None) -> ArchiveFile:
    """Generate one monthly fundingRate file (see :meth:`ArchiveBuilder.funding`)."""
    schema.validate_request(market, "fundingRate")
    key = ArchiveKey(market, "monthly", "fundingRate", symbol, None, month)
    _, start, end = _period_bounds("monthly", month)
    rng = np.random.default_rng(np.random.SeedSequence([seed, *symbol.encode(), *month.encode(),
                                                        *market.encode(), interval_hours]))
    grid = np.arange(start, end, interval_hours * 3_600_000, dtype=np.int64)
    jit = np.where(rng.uniform(0, 1, len(grid)) < 0.55, rng.integers(1, 14, len(grid)), 0)
    t = grid + (jit if jitter_ms else 0)
    rate = np.round(rng.normal(5000, 4000, len(grid))).astype(np.int64)         # 1e-8 units
    sel = np.flatnonzero(~_select_missing(grid, missing))
    cols = [[str(v) for v in t[sel].tolist()], [str(interval_hours)] * len(sel), _dec(rate[sel], 8)]
    order = _written_order(len(sel), duplicates, shuffle, rng)
    csv = _csv_bytes(FUNDING_HEADER if header else None, cols, order)
    frame = pd.DataFrame({
        "funding_time": _utc_us(t[sel] * 1000),
        "funding_rate": rate[sel] / 10**8,
        "funding_interval_hours": np.full(len(sel), interval_hours, dtype=np.int64),
        "mark_price": np.full(len(sel), np.nan),
        "source": pd.array(["archive_monthly"] * len(sel), dtype="str"),
    })
    when = when or dt.datetime.combine(key.last_day + dt.timedelta(days=1), dt.time(7, 26))
    return ArchiveFile(key, csv, zip_csv(csv, key.filename[:-4] + ".csv", when), frame,
                       header, "ms", len(order))


# ---------------------------------------------------------------- the builder
@dataclass
class ArchiveBuilder:
    """Writes archive files under ``url`` (any fsspec URL) in the real key layout.

    ``storage_options`` must allow writing (for S3: key/secret, not ``anon``). Every method
    returns the written :class:`ArchiveKey` (``junk`` returns the raw key string);
    :meth:`frame` gives the silver rows a correct parser must produce for a key.
    """
    url: str
    storage_options: dict | None = None
    files: dict[ArchiveKey, ArchiveFile] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.url = self.url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(self.storage_options or {}))
        self.root = self.root.rstrip("/")

    def __repr__(self) -> str:
        return f"ArchiveBuilder({self.url!r}, {len(self.files)} files)"

    # -- paths
    def path(self, key: ArchiveKey | str) -> str:
        """Filesystem path (no protocol) of a key."""
        k = key.key if isinstance(key, ArchiveKey) else key.lstrip("/")
        return f"{self.root}/{k}"

    def url_of(self, key: ArchiveKey | str) -> str:
        k = key.key if isinstance(key, ArchiveKey) else key.lstrip("/")
        return f"{self.url}/{k}"

    def _put(self, key: str, data: bytes) -> None:
        p = self.path(key)
        parent = p.rsplit("/", 1)[0]
        if isinstance(self.fs, LocalFileSystem):
            self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(p, data)

    def write(self, f: ArchiveFile, checksum: str = "good") -> ArchiveKey:
        """Write a rendered file and its `.CHECKSUM` ("good", "bad": a well-formed line with a
        wrong hash, or "missing": none)."""
        if checksum not in ("good", "bad", "missing"):
            raise ValueError(f"checksum must be 'good', 'bad' or 'missing', got {checksum!r}")
        self._put(f.key.key, f.zip)
        if checksum == "good":
            self._put(f.key.checksum_key, f.checksum)
        elif checksum == "bad":
            self._put(f.key.checksum_key, checksum_line(f.zip + b"tampered", f.key.filename))
        elif self.fs.exists(self.path(f.key.checksum_key)):
            self.fs.rm_file(self.path(f.key.checksum_key))
        self.files[f.key] = f
        return f.key

    # -- generators
    def klines(self, market: str, symbol: str, interval: str, period: str,
               cadence: str | None = None, *, data_type: str = "klines",
               header: bool | None = None, unit: str | None = None, missing: Iterable = (),
               duplicates: int = 0, shuffle: bool = False, seed: int = 0,
               start_price: float | None = None, checksum: str = "good") -> ArchiveKey:
        """Write one kline-class file for ``period`` ("YYYY-MM-DD" daily, "YYYY-MM" monthly;
        ``cadence`` defaults from its length).

        header: None = realistic (spot never; futures from 2022-08-11 daily / 2022-01 monthly).
        unit: None = realistic ("us" for spot files dated 2025-01-01+, else "ms").
        missing: bars to drop: int/slice (bar indices), timestamps, or (start, end) pairs.
        duplicates: how many rows to write twice (adjacent); shuffle: write rows out of order.
        seed: the random walk's seed (with symbol/interval/period mixed in).
        """
        f = render_klines(market, symbol, interval, period, cadence, data_type=data_type,
                          header=header, unit=unit, missing=missing, duplicates=duplicates,
                          shuffle=shuffle, seed=seed, start_price=start_price)
        return self.write(f, checksum)

    def funding(self, market: str, symbol: str, month: str, *, interval_hours: int = 8,
                jitter_ms: bool = True, header: bool = True, missing: Iterable = (),
                duplicates: int = 0, shuffle: bool = False, seed: int = 0,
                checksum: str = "good") -> ArchiveKey:
        """Write a monthly fundingRate file: one row per ``interval_hours`` from the month's
        first instant; with ``jitter_ms``, ``calc_time`` carries 1-13 ms of jitter on ~55% of
        rows, as real files do."""
        f = render_funding(market, symbol, month, interval_hours=interval_hours,
                           jitter_ms=jitter_ms, header=header, missing=missing,
                           duplicates=duplicates, shuffle=shuffle, seed=seed)
        return self.write(f, checksum)

    # -- the other data types (renderers in cryptolake.testing.archive_types)
    def agg_trades(self, market: str, symbol: str, period: str, cadence: str | None = None, *,
                   checksum: str = "good", **kw) -> ArchiveKey:
        """Write an aggTrades file (``period`` daily or monthly). Keywords: ``rows``, ``header``
        / ``unit`` (None = realistic), ``duplicates`` (int or "all"), ``shuffle``,
        ``interleave`` (rows moved far earlier), ``seed``, ``first_id``."""
        from cryptolake.testing.archive_types import render_agg_trades
        return self.write(render_agg_trades(market, symbol, period, cadence, **kw), checksum)

    def trades(self, market: str, symbol: str, period: str, cadence: str | None = None, *,
               checksum: str = "good", **kw) -> ArchiveKey:
        """Write a trades file; keywords as :meth:`agg_trades`."""
        from cryptolake.testing.archive_types import render_trades
        return self.write(render_trades(market, symbol, period, cadence, **kw), checksum)

    def metrics(self, market: str, symbol: str, day: str, *, checksum: str = "good",
                **kw) -> ArchiveKey:
        """Write a daily metrics file. Keywords: ``missing`` / ``empty`` (slot indices),
        ``long_decimals``, ``shift``, ``duplicates``, ``shuffle``, ``header``, ``seed``."""
        from cryptolake.testing.archive_types import render_metrics
        return self.write(render_metrics(market, symbol, day, **kw), checksum)

    def book_depth(self, market: str, symbol: str, day: str, *, checksum: str = "good",
                   **kw) -> ArchiveKey:
        """Write a daily bookDepth file. Keywords: ``snapshots``, ``duplicates``,
        ``shuffle``, ``header``, ``seed``."""
        from cryptolake.testing.archive_types import render_book_depth
        return self.write(render_book_depth(market, symbol, day, **kw), checksum)

    def book_ticker(self, market: str, symbol: str, period: str, cadence: str | None = None, *,
                    checksum: str = "good", **kw) -> ArchiveKey:
        """Write a bookTicker file. Keywords: ``rows``, ``duplicates``, ``shuffle``,
        ``header``, ``seed``."""
        from cryptolake.testing.archive_types import render_book_ticker
        return self.write(render_book_ticker(market, symbol, period, cadence, **kw), checksum)

    def liquidation_snapshot(self, market: str, symbol: str, day: str, *,
                             checksum: str = "good", **kw) -> ArchiveKey:
        """Write a daily liquidationSnapshot file (COIN-M only). Keywords: ``rows``,
        ``same_instant``, ``duplicates``, ``shuffle``, ``header``, ``seed``."""
        from cryptolake.testing.archive_types import render_liquidation_snapshot
        return self.write(render_liquidation_snapshot(market, symbol, day, **kw), checksum)

    def raw(self, key: ArchiveKey, csv: bytes, *, checksum: str = "good",
            member: str | None = None) -> ArchiveKey:
        """Write arbitrary CSV bytes as an archive file (for malformed-input tests).
        :meth:`frame` is not available for it."""
        z = zip_csv(csv, member or key.filename[:-4] + ".csv")
        f = ArchiveFile(key, csv, z, pd.DataFrame(), False, "ms", csv.count(b"\n"))
        self.write(f, checksum)
        self.files.pop(key)
        return key

    def junk(self, dir_key: str, name: str | None = None, seed: int = 0) -> str:
        """Write a non-archive object into a directory, by default a Spark leftover
        ``part-00000-<uuid>-c000.zip`` (a valid zip, with a checksum); returns its key."""
        name = name or f"part-00000-{uuid.UUID(int=random.Random(seed).getrandbits(128))}-c000.zip"
        key = f"{dir_key.strip('/')}/{name}"
        data = zip_csv(b"1,2,3\n", name[:-4] + ".csv")
        self._put(key, data)
        self._put(key + ".CHECKSUM", checksum_line(data, name))
        return key

    def corrupt_zip(self, key: ArchiveKey, data: bytes | None = None) -> ArchiveKey:
        """Write bytes that are not a zip at ``key``, with a CHECKSUM that matches them
        (so only parsing, not verification, can notice)."""
        data = data if data is not None else b"PK\x03\x04 this is not a zip " + key.key.encode()
        self._put(key.key, data)
        self._put(key.checksum_key, checksum_line(data, key.filename))
        self.files.pop(key, None)
        return key

    def remove(self, key: ArchiveKey) -> None:
        """Delete a file and its checksum (e.g. a day Binance never published)."""
        for k in (key.key, key.checksum_key):
            if self.fs.exists(self.path(k)):
                self.fs.rm_file(self.path(k))
        self.files.pop(key, None)

    def symbol_dir(self, market: str, cadence: str, data_type: str, symbol: str,
                   interval: str | None = None) -> str:
        """Directory key of one symbol's files (for :meth:`junk`)."""
        return symbol_dir(market, cadence, data_type, symbol, interval)

    # -- what was written
    @property
    def keys(self) -> list[ArchiveKey]:
        return sorted(self.files)

    def file(self, key: ArchiveKey) -> ArchiveFile:
        try:
            return self.files[key]
        except KeyError:
            raise KeyError(f"{key.key} was not generated by this builder "
                           f"(corrupt, raw and junk files have no expected frame)") from None

    def frame(self, key: ArchiveKey) -> pd.DataFrame:
        """The silver rows of a generated file: deduplicated, sorted, silver column names and
        dtypes (times tz-aware UTC at µs resolution), ``source`` from the key's cadence."""
        return self.file(key).frame.copy()


@dataclass
class ArchiveSite:
    """An archive location for tests: where to read it and a builder that writes into it."""
    url: str
    storage_options: dict
    builder: ArchiveBuilder

    def __repr__(self) -> str:
        return f"ArchiveSite({self.url!r}, {len(self.builder.files)} generated files)"
