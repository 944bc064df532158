"""What the archive holds and how silver stores it: markets, data types, intervals, table names,
Arrow schemas, and validation of a user's request. A leaf module (imports pyarrow only).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pyarrow as pa

MARKETS = ("spot", "um", "cm")

# Per market: data type -> cadences the archive publishes ("d" daily, "m" monthly). See
# docs/binance-archive.md §2.2 (fundingRate is monthly only; metrics/bookDepth daily only).
DATA_TYPES: dict[str, dict[str, str]] = {
    "spot": {"klines": "dm", "aggTrades": "dm", "trades": "dm"},
    "um": {
        "klines": "dm", "aggTrades": "dm", "trades": "dm", "markPriceKlines": "dm",
        "indexPriceKlines": "dm", "premiumIndexKlines": "dm", "fundingRate": "m",
        "metrics": "d", "bookDepth": "d", "bookTicker": "dm",
    },
    "cm": {
        "klines": "dm", "aggTrades": "dm", "trades": "dm", "markPriceKlines": "dm",
        "indexPriceKlines": "dm", "premiumIndexKlines": "dm", "fundingRate": "m",
        "metrics": "d", "bookDepth": "d", "bookTicker": "dm", "liquidationSnapshot": "d",
    },
}
ALL_DATA_TYPES = tuple(dict.fromkeys(t for types in DATA_TYPES.values() for t in types))
KLINE_TYPES = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
INGESTIBLE = ALL_DATA_TYPES          # every type the archive publishes parses into silver

INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
             "1d", "3d", "1w", "1mo")
DAILY_INTERVALS = INTERVALS[:13]          # 3d, 1w and 1mo exist only as monthly files
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

SOURCES = ("archive_monthly", "archive_daily", "rest")   # merge priority, best first


def interval_ms(interval: str) -> int | None:
    """Bar length in milliseconds; None for `1mo` (months have no fixed length)."""
    if interval == "1mo":
        return None
    return int(interval[:-1]) * _UNIT_MS[interval[-1]]


def snake(name: str) -> str:
    """`markPriceKlines` -> `mark_price_klines`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def table_name(market: str, data_type: str, interval: str | None = None) -> str:
    """`("um", "fundingRate")` -> `um_funding_rate`; `("spot", "klines", "1m")` -> `spot_klines_1m`."""
    base = f"{market}_{snake(data_type)}"
    return f"{base}_{interval}" if data_type in KLINE_TYPES else base


_TABLE_RE = re.compile(r"^(spot|um|cm)_([a-z_]+?)(?:_(\d+(?:s|m|h|d|w|mo)))?$")


def parse_table_name(name: str) -> tuple[str, str, str | None]:
    """Inverse of `table_name`: `um_mark_price_klines_1h` -> `("um", "markPriceKlines", "1h")`."""
    m = _TABLE_RE.match(name)
    by_snake = {snake(t): t for t in ALL_DATA_TYPES}
    if not m or m.group(2) not in by_snake:
        raise ValueError(f"{name!r} is not a table name like 'spot_klines_1m' or 'um_funding_rate'")
    return m.group(1), by_snake[m.group(2)], m.group(3)


# ---------------------------------------------------------------- silver schemas
TS = pa.timestamp("us", tz="UTC")
_F = pa.float64()


def kline_schema(market: str) -> pa.Schema:
    """Silver schema of a kline-class table. COIN-M names its volumes for what they hold."""
    if market == "cm":
        vols = [("volume", _F), ("close_time", TS), ("base_volume", _F), ("trades", pa.int64()),
                ("taker_buy_volume", _F), ("taker_buy_base_volume", _F)]
    else:
        vols = [("volume", _F), ("close_time", TS), ("quote_volume", _F), ("trades", pa.int64()),
                ("taker_buy_volume", _F), ("taker_buy_quote_volume", _F)]
    fields = [("open_time", TS), ("open", _F), ("high", _F), ("low", _F), ("close", _F), *vols,
              ("source", pa.string())]
    return pa.schema(fields)


FUNDING_SCHEMA = pa.schema([
    ("funding_time", TS), ("funding_rate", _F), ("funding_interval_hours", pa.int64()),
    ("mark_price", _F), ("source", pa.string()),
])


_B = pa.bool_()
_I = pa.int64()
_S = pa.string()


def agg_trades_schema(market: str) -> pa.Schema:
    """aggTrades: the futures header's names; spot adds ``is_best_match`` (its 8th column)."""
    fields = [("agg_trade_id", _I), ("price", _F), ("quantity", _F), ("first_trade_id", _I),
              ("last_trade_id", _I), ("transact_time", TS), ("is_buyer_maker", _B)]
    if market == "spot":
        fields.append(("is_best_match", _B))
    return pa.schema(fields + [("source", _S)])


def trades_schema(market: str) -> pa.Schema:
    """trades: spot adds ``is_best_match``; COIN-M has ``base_qty`` (coin) where the others
    have ``quote_qty``, and its ``qty`` is in contracts."""
    value = ("base_qty", _F) if market == "cm" else ("quote_qty", _F)
    fields = [("id", _I), ("price", _F), ("qty", _F), value, ("time", TS), ("is_buyer_maker", _B)]
    if market == "spot":
        fields.append(("is_best_match", _B))
    return pa.schema(fields + [("source", _S)])


# metrics' own `symbol` column is not kept: every silver table is partitioned by `symbol`.
# Its ratio columns are null where the archive wrote an empty string.
METRICS_SCHEMA = pa.schema([
    ("create_time", TS), ("sum_open_interest", _F), ("sum_open_interest_value", _F),
    ("count_toptrader_long_short_ratio", _F), ("sum_toptrader_long_short_ratio", _F),
    ("count_long_short_ratio", _F), ("sum_taker_long_short_vol_ratio", _F), ("source", _S),
])
BOOK_DEPTH_SCHEMA = pa.schema([
    ("timestamp", TS), ("percentage", _F), ("depth", _F), ("notional", _F), ("source", _S),
])
BOOK_TICKER_SCHEMA = pa.schema([
    ("update_id", _I), ("best_bid_price", _F), ("best_bid_qty", _F), ("best_ask_price", _F),
    ("best_ask_qty", _F), ("transaction_time", TS), ("event_time", TS), ("source", _S),
])
LIQUIDATION_SNAPSHOT_SCHEMA = pa.schema([
    ("time", TS), ("side", _S), ("order_type", _S), ("time_in_force", _S),
    ("original_quantity", _F), ("price", _F), ("average_price", _F), ("order_status", _S),
    ("last_fill_quantity", _F), ("accumulated_fill_quantity", _F), ("source", _S),
])
_FIXED_SCHEMAS = {"fundingRate": FUNDING_SCHEMA, "metrics": METRICS_SCHEMA,
                  "bookDepth": BOOK_DEPTH_SCHEMA, "bookTicker": BOOK_TICKER_SCHEMA,
                  "liquidationSnapshot": LIQUIDATION_SNAPSHOT_SCHEMA}


def check_market_type(market: str, data_type: str) -> None:
    """ValueError naming the allowed values unless the archive has `data_type` for `market`."""
    if market not in MARKETS:
        raise ValueError(f"unknown market {market!r}; allowed: {', '.join(MARKETS)}")
    if data_type not in ALL_DATA_TYPES:
        raise ValueError(f"unknown data type {data_type!r}; allowed: {', '.join(ALL_DATA_TYPES)}")
    if data_type not in DATA_TYPES[market]:
        raise ValueError(f"market {market!r} has no {data_type!r} in the archive; "
                         f"{market} has: {', '.join(DATA_TYPES[market])}")


def silver_schema(market: str, data_type: str) -> pa.Schema:
    """The silver Arrow schema of ``(market, data_type)``; every time column is
    ``timestamp[us, UTC]`` and every table ends with ``source``."""
    check_market_type(market, data_type)
    if data_type in KLINE_TYPES:
        return kline_schema(market)
    if data_type == "aggTrades":
        return agg_trades_schema(market)
    if data_type == "trades":
        return trades_schema(market)
    return _FIXED_SCHEMAS[data_type]


_TIME_COLUMNS = {"fundingRate": "funding_time", "aggTrades": "transact_time", "trades": "time",
                 "metrics": "create_time", "bookDepth": "timestamp",
                 "bookTicker": "transaction_time", "liquidationSnapshot": "time"}


def time_column(data_type: str) -> str:
    """The column a table is indexed and sorted by (``open_time`` for kline-class tables)."""
    if data_type in KLINE_TYPES:
        return "open_time"
    try:
        return _TIME_COLUMNS[data_type]
    except KeyError:
        raise ValueError(f"unknown data type {data_type!r}; allowed: {', '.join(ALL_DATA_TYPES)}") from None


_NATURAL_KEYS = {
    "aggTrades": ("agg_trade_id",), "trades": ("id",), "bookTicker": ("update_id",),
    "fundingRate": ("funding_time",), "metrics": ("create_time",),
    "bookDepth": ("timestamp", "percentage"),
    # no id: a liquidation is the whole row (doubled rows are exact copies)
    "liquidationSnapshot": tuple(n for n in LIQUIDATION_SNAPSHOT_SCHEMA.names if n != "source"),
}


def natural_key(data_type: str) -> tuple[str, ...]:
    """The columns that identify one row of a symbol's table: rows sharing them are duplicates
    (the first in file order is kept). An id where the archive has one, else the time plus
    the fields that tell rows of one instant apart. Rows are sorted by
    ``(time_column, *natural_key)``."""
    if data_type in KLINE_TYPES:
        return ("open_time",)
    try:
        return _NATURAL_KEYS[data_type]
    except KeyError:
        raise ValueError(f"unknown data type {data_type!r}; allowed: {', '.join(ALL_DATA_TYPES)}") from None


# ---------------------------------------------------------------- request validation
@dataclass(frozen=True)
class Request:
    """A validated ingest request."""
    market: str
    data_type: str
    interval: str | None
    start: dt.date | None
    end: dt.date | None

    @property
    def table(self) -> str:
        return table_name(self.market, self.data_type, self.interval)


def _as_date(value, name: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):   # pandas Timestamp
        return value.date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a date; use 'YYYY-MM-DD' or a date/Timestamp") from None


def validate_request(market, data_type, interval=None, start=None, end=None,
                     ingestible_only: bool = True) -> Request:
    """Check a request before anything is downloaded; every error names the allowed values."""
    check_market_type(market, data_type)
    if ingestible_only and data_type not in INGESTIBLE:
        raise ValueError(f"ingest of {data_type!r} is not supported yet; supported: {', '.join(INGESTIBLE)}")
    if data_type in KLINE_TYPES:
        if interval is None:
            raise ValueError(f"{data_type!r} needs an interval; allowed: {', '.join(INTERVALS)}")
        if interval == "1M":
            raise ValueError("interval '1M' is written '1mo' in the archive; use interval='1mo'")
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}; allowed: {', '.join(INTERVALS)}")
        if interval == "1s" and market != "spot":
            raise ValueError(f"interval '1s' exists only for spot, not {market!r}; "
                             f"allowed for {market}: {', '.join(INTERVALS[1:])}")
    elif interval is not None:
        raise ValueError(f"{data_type!r} has no interval (got {interval!r}); pass interval=None")
    s, e = _as_date(start, "start"), _as_date(end, "end")
    if s and e and s > e:
        raise ValueError(f"start {s} is after end {e}")
    return Request(market, data_type, interval, s, e)


# ---------------------------------------------------------------- gold table names
# Grammar (see README "Gold tables"):
#   <market>_bars_<rule>                 resampled klines           um_bars_1h, um_bars_w, um_bars_me
#   <market>_funding_bars_<rule>         klines + funding events    um_funding_bars_8h
#   <market>_trade_bars_<rule>           time bars from trades      spot_trade_bars_1m
#   <market>_trade_bars_<by>_<size>      tick/volume/dollar bars    um_trade_bars_dollar_1e7
#   <market>_features_<rule>             indicators on a bars table um_features_1h
# <rule> is a fixed rule in the archive's spelling ("1m", "15m", "1h", "4h", "1d"; "30s") or a
# calendar rule: "w" (pandas "W", weeks ending Sunday) or "me" (pandas "ME", calendar months).
GOLD_KINDS = ("bars", "funding_bars", "trade_bars", "features")
_RULE_TOKEN = r"(?:\d+(?:s|m|h|d)|w|me)"
_GOLD_RE = re.compile(rf"^(spot|um|cm)_(bars|funding_bars|trade_bars|features)_"
                      rf"({_RULE_TOKEN}|(?:tick|volume|dollar)_\d+(?:\.\d+)?(?:e\d+)?)$")


@dataclass(frozen=True)
class GoldName:
    """A parsed gold table name: market, kind, and its rule token or (by, size) for
    information-driven trade bars."""
    market: str
    kind: str
    token: str

    @property
    def info_bars(self) -> bool:
        return self.token.startswith(("tick_", "volume_", "dollar_"))

    @property
    def time_col(self) -> str:
        return "close_time" if self.info_bars else "open_time"


def parse_gold_name(name: str) -> GoldName:
    """`um_bars_1h` -> GoldName("um", "bars", "1h"); ValueError naming the grammar otherwise."""
    m = _GOLD_RE.match(name)
    if not m or (m.group(2) != "trade_bars" and m.group(3).startswith(("tick_", "volume_", "dollar_"))):
        raise ValueError(f"{name!r} is not a gold table name; use <market>_<kind>_<rule> with market "
                         f"{'/'.join(MARKETS)}, kind {'/'.join(GOLD_KINDS)} and a rule like 1m, 1h, 4h, "
                         "1d, w (weeks) or me (months), or <market>_trade_bars_<tick|volume|dollar>_<size> "
                         "(e.g. um_trade_bars_dollar_1e7)")
    return GoldName(m.group(1), m.group(2), m.group(3))


def size_token(size: float) -> str:
    """1e7 -> "1e7", 500 -> "500", 2.5e6 -> "2.5e6" (the size part of an info-bar table name)."""
    mant, _, exp = f"{float(size):g}".partition("e")
    return mant + (f"e{int(exp)}" if exp else "")
