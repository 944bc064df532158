"""Pure path grammar: archive keys and lake partition paths. A leaf module (stdlib only)."""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass

_MARKET_DIR = {"spot": "data/spot", "um": "data/futures/um", "cm": "data/futures/cm"}
_DIR_MARKET = {v: k for k, v in _MARKET_DIR.items()}
KLINE_TYPES = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")


def market_dir(market: str) -> str:
    return _MARKET_DIR[market]


def type_dir(market: str, cadence: str, data_type: str) -> str:
    """`data/futures/um/daily/klines` — the directory that lists symbols."""
    return f"{_MARKET_DIR[market]}/{cadence}/{data_type}"


def symbol_dir(market: str, cadence: str, data_type: str, symbol: str, interval: str | None) -> str:
    """Directory holding one symbol's files (kline-class types have an interval level)."""
    d = f"{type_dir(market, cadence, data_type)}/{symbol}"
    return f"{d}/{interval}" if data_type in KLINE_TYPES else d


@dataclass(frozen=True, order=True)
class ArchiveKey:
    """One archive file, e.g. data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip."""
    market: str
    cadence: str          # "daily" | "monthly"
    data_type: str
    symbol: str
    interval: str | None
    period: str           # "YYYY-MM-DD" (daily) or "YYYY-MM" (monthly)

    @property
    def filename(self) -> str:
        middle = self.interval if self.data_type in KLINE_TYPES else self.data_type
        return f"{self.symbol}-{middle}-{self.period}.zip"

    @functools.cached_property
    def key(self) -> str:        # asked for ~13 times per file by an ingest: built once
        return f"{symbol_dir(self.market, self.cadence, self.data_type, self.symbol, self.interval)}/{self.filename}"

    @property
    def checksum_key(self) -> str:
        return self.key + ".CHECKSUM"

    @property
    def first_day(self) -> dt.date:
        if self.cadence == "daily":
            return dt.date.fromisoformat(self.period)
        return dt.date.fromisoformat(self.period + "-01")

    @property
    def last_day(self) -> dt.date:
        if self.cadence == "daily":
            return self.first_day
        y, m = int(self.period[:4]), int(self.period[5:7])
        return dt.date(y, m, calendar.monthrange(y, m)[1])

    @property
    def month(self) -> str:
        return self.period[:7]


_KEY_RE = re.compile(
    r"^(?P<mdir>data/spot|data/futures/um|data/futures/cm)/(?P<cadence>daily|monthly)/"
    r"(?P<dtype>[A-Za-z]+)/(?P<symbol>[A-Z0-9_]+)/(?:(?P<idir>[0-9]+[a-z]+)/)?"
    r"(?P<fsym>[A-Z0-9_]+)-(?P<mid>[A-Za-z0-9]+)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.zip$"
)


def parse_archive_key(key: str) -> ArchiveKey | None:
    """Parse an archive object key; None for anything that is not a well-formed archive file
    (Spark leftovers like `part-00000-….zip`, unpadded months, `.CHECKSUM`s, wrong cadence)."""
    m = _KEY_RE.match(key.lstrip("/"))
    if not m:
        return None
    cadence, dtype, symbol, period = m["cadence"], m["dtype"], m["symbol"], m["period"]
    is_kline = dtype in KLINE_TYPES
    interval = m["idir"]
    if m["fsym"] != symbol or (is_kline != (interval is not None)):
        return None
    if (m["mid"] != interval) if is_kline else (m["mid"] != dtype):
        return None
    if len(period) != (10 if cadence == "daily" else 7):
        return None
    try:
        dt.date.fromisoformat(period if cadence == "daily" else period + "-01")
    except ValueError:
        return None
    return ArchiveKey(_DIR_MARKET[m["mdir"]], cadence, dtype, symbol, interval, period)


def months_between(start: dt.date, end: dt.date) -> list[str]:
    """Every `YYYY-MM` from start's month to end's month, inclusive."""
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# ---------------------------------------------------------------- lake paths
def bronze_path(key: str) -> str:
    """Where a source file lives in the lake: bronze/ + its archive key, byte for byte."""
    return f"bronze/{key}"


def quarantine_path(key: str) -> str:
    return f"bronze/_quarantine/{key}"


MANIFEST_DIR = "bronze/_manifest"


def manifest_path(table: str) -> str:
    """One manifest per table, so ingests of different tables never overwrite each other's."""
    return f"{MANIFEST_DIR}/{table}.parquet"


def table_dir(layer: str, table: str) -> str:
    return f"{layer}/{table}"


def partition_dir(layer: str, table: str, symbol: str, month: str) -> str:
    """Hive partition, `symbol` first: silver/um_klines_1m/symbol=BTCUSDT/month=2024-01."""
    return f"{layer}/{table}/symbol={symbol}/month={month}"


PART_FILE = "part-0.parquet"
