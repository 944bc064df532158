"""Archive CSV bytes -> Arrow table in the canonical silver schema, for every data type.

The fast path is pyarrow's C++ CSV reader with explicit column types (no inference, no Python
row loops); zlib and the CSV reader both release the GIL, so files parse well in threads.
Big files (a day of trades runs to tens of millions of rows) stream through
:mod:`cryptolake.sources.stream` (``iter_parse``) in bounded memory.

What this module normalises (see docs/binance-archive.md §3-§5, §10):

* headers are sniffed per file by comparing the first line's fields with the known column
  names (never "is the first field numeric": metrics/bookDepth rows start with a date);
* epoch times in milliseconds and the spot archive's microseconds (files dated 2025-01-01+)
  are told apart per value by magnitude (``>= 10**14`` is µs) and land on the same instants
  as ``timestamp[us, UTC]``; date-string times (``2024-01-01 00:05:00``, metrics/bookDepth)
  are read as UTC;
* booleans in either case (spot ``True``/``False``, futures ``true``/``false``);
* empty strings in the metrics ratio columns become nulls (never 0);
* columns are renamed to silver names (klines: ``count`` -> ``trades``; COIN-M
  ``quote_volume`` -> ``base_volume`` and ``taker_buy_quote_volume`` ->
  ``taker_buy_base_volume``; ``ignore`` dropped; funding ``calc_time`` -> ``funding_time``,
  ``last_funding_rate`` -> ``funding_rate``, ``mark_price`` null; metrics' ``symbol`` is
  checked against the file's symbol and dropped); other types keep the header's names;
* rows are deduplicated on ``schema.natural_key`` (the first row of each key, in file order,
  wins) and sorted by ``(schema.time_column, *natural_key)``.

Anything malformed raises :class:`ParseError` (a ``ValueError``) saying what was wrong.
"""
from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cryptolake import schema
from cryptolake.layout import ArchiveKey

try:        # ISA-L inflates these CSVs ~1.8x faster than zlib-ng and ~3x faster than zlib
    from isal import isal_zlib as _zlib
except ImportError:     # pragma: no cover - the same bytes, slower
    try:
        from zlib_ng import zlib_ng as _zlib
    except ImportError:
        _zlib = zlib

__all__ = ["ParseError", "read_zip", "parse_csv", "parse_file", "archive_columns",
           "dedupe_sort", "iter_parse", "sha256_stream", "US_THRESHOLD", "PARSEABLE"]

US_THRESHOLD = 10**14
"""Epoch values at or above this are microseconds, below it milliseconds (10**14 ms is year 5138;
10**14 µs is 1973)."""
_MIN_US = 946_684_800_000_000          # 2000-01-01: nothing in the archive is older
_MAX_US = 4_102_444_800_000_000        # 2100-01-01

PARSEABLE = schema.ALL_DATA_TYPES
"""Every data type the archive publishes for spot/um/cm has a parser."""

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                 "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
METRICS_COLUMNS = ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                   "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
                   "count_long_short_ratio", "sum_taker_long_short_vol_ratio")

# epoch integer columns (ms or µs per value) and date-string columns, per data type
_EPOCH_COLUMNS = {"fundingRate": ("calc_time",), "aggTrades": ("transact_time",),
                  "trades": ("time",), "bookTicker": ("transaction_time", "event_time"),
                  "liquidationSnapshot": ("time",)}
_DATE_COLUMNS = {"metrics": ("create_time",), "bookDepth": ("timestamp",)}
_NULLABLE = {"metrics": frozenset(METRICS_COLUMNS[2:])}
_TRUE, _FALSE = ["true", "True", "TRUE"], ["false", "False", "FALSE"]

_THREADED_FROM = 32 << 20     # CSVs above this parse on pyarrow's threads (ingest's pool covers the rest)
_SOURCE_BY_CADENCE = {"monthly": "archive_monthly", "daily": "archive_daily"}


class ParseError(ValueError):
    """An archive file that cannot be turned into silver rows (corrupt zip, malformed CSV)."""


# ---------------------------------------------------------------- column maps
def archive_columns(data_type: str, market: str = "um") -> tuple[str, ...]:
    """The CSV columns of a data type in ``market``, in file order, as headered files name
    them (spot aggTrades/trades files never have a header; their names follow the futures
    header, plus ``is_best_match``)."""
    if data_type in schema.KLINE_TYPES:
        return KLINE_COLUMNS
    if data_type == "fundingRate":
        return FUNDING_COLUMNS
    if data_type == "metrics":
        return METRICS_COLUMNS
    if data_type in PARSEABLE and data_type in schema.DATA_TYPES.get(market, {}):
        return tuple(n for n in schema.silver_schema(market, data_type).names if n != "source")
    raise ParseError(f"cannot parse data type {data_type!r} for market {market!r}; "
                     f"parseable: {', '.join(PARSEABLE)} (each where the market has it)")


def _renames(market: str, data_type: str) -> dict[str, str]:
    """archive column -> silver column, for the columns silver keeps."""
    if data_type == "fundingRate":
        return {"calc_time": "funding_time", "funding_interval_hours": "funding_interval_hours",
                "last_funding_rate": "funding_rate"}
    if data_type in schema.KLINE_TYPES:
        out = {c: c for c in KLINE_COLUMNS if c != "ignore"}
        out["count"] = "trades"
        if market == "cm":
            out["quote_volume"] = "base_volume"
            out["taker_buy_quote_volume"] = "taker_buy_base_volume"
        return out
    return {c: c for c in archive_columns(data_type, market) if c != "symbol"}


def _epoch_columns(data_type: str) -> tuple[str, ...]:
    if data_type in schema.KLINE_TYPES:
        return ("open_time", "close_time")
    return _EPOCH_COLUMNS.get(data_type, ())


_PLAN_CACHE: dict[tuple[str, str], "_Plan"] = {}


class _Plan:
    """How one (market, data type) is read: archive columns, renames, types, target schema."""

    def __init__(self, market: str, data_type: str):
        self.market, self.data_type = market, data_type
        self.columns = archive_columns(data_type, market)
        self.renames = _renames(market, data_type)
        self.target = schema.silver_schema(market, data_type)
        self.epochs = _epoch_columns(data_type)
        self.dates = _DATE_COLUMNS.get(data_type, ())
        self.nullable = _NULLABLE.get(data_type, frozenset())
        types = {}
        for a, s in self.renames.items():
            if a in self.epochs:
                types[a] = pa.int64()
            elif a in self.dates:
                types[a] = pa.timestamp("us")
            else:
                types[a] = self.target.field(s).type
        include = list(self.renames)
        if data_type == "metrics":
            types["symbol"] = pa.string()
            include.append("symbol")
        self.convert = pacsv.ConvertOptions(
            column_types=types, include_columns=include, null_values=[""] if self.nullable else [],
            strings_can_be_null=False, quoted_strings_can_be_null=bool(self.nullable),
            true_values=_TRUE, false_values=_FALSE)
        self.where = f"{market} {data_type}"


def _plan(market: str, data_type: str) -> _Plan:
    """The read plan, cached per (market, type); raises ParseError for unknown pairs."""
    k = (market, data_type)
    if k not in _PLAN_CACHE:
        if market not in schema.MARKETS:
            raise ParseError(f"unknown market {market!r}; allowed: {', '.join(schema.MARKETS)}")
        try:
            _PLAN_CACHE[k] = _Plan(market, data_type)
        except ParseError:
            raise
        except ValueError as exc:
            raise ParseError(str(exc)) from None
    return _PLAN_CACHE[k]


# ---------------------------------------------------------------- zip
def read_zip(data: bytes) -> bytes:
    """The single CSV member of an archive zip.

    Raises ParseError for bytes that are not a zip, a damaged member (bad CRC, bad deflate
    stream), or a zip with zero or several members.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = single_member(zf)
            out = _inflate(data, info)
            return out if out is not None else _read_member(zf, info)
    except ParseError:
        raise
    except (zipfile.BadZipFile, zlib.error, _zlib.error, EOFError, OSError, NotImplementedError,
            ValueError) as exc:
        raise ParseError(f"corrupt zip ({len(data)} bytes): {exc}") from exc


def single_member(zf: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The one file member of an archive zip, else ParseError naming what is there."""
    members = [i for i in zf.infolist() if not i.is_dir()]
    if len(members) != 1:
        names = ", ".join(i.filename for i in members) or "none"
        raise ParseError(f"archive zip must hold exactly one CSV member, found "
                         f"{len(members)} ({names})")
    return members[0]


MAX_MEMBER_BYTES = 4 << 30
"""An archive CSV inflating past this is refused (the largest real kline file is ~100 MiB)."""
MAX_RATIO = 100
"""...and so is one inflating more than this many times its compressed size when it is over
1 MiB (real CSVs deflate 3-10x; a zip bomb of zeros ~1000x)."""


def _member_limit(info: zipfile.ZipInfo) -> int:
    """How many bytes the member may inflate to; refuses names with a path, and zip bombs by
    their declared sizes."""
    name = info.filename
    if "/" in name or "\\" in name or ".." in name or ":" in name or name.startswith(".") \
            or not name:
        raise ParseError(f"zip member name {name!r} is not a plain file name (no directories, "
                         f"'..', drive letters or absolute paths)")
    limit = min(MAX_MEMBER_BYTES, max(1 << 20, MAX_RATIO * max(info.compress_size, 1)))
    if info.file_size > limit:
        raise ParseError(f"zip member {name!r} inflates to {info.file_size} bytes from "
                         f"{info.compress_size} (over {limit}): refused as a zip bomb")
    return limit


def _inflate(data: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """The member's bytes inflated in one call (the common case: a deflated or stored,
    unencrypted member), with the same refusals as `_read_member` and its CRC-32 and size
    checked; None for anything else (then zipfile reads it)."""
    limit = _member_limit(info)
    if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED) or info.flag_bits & 0x1:
        return None
    off = info.header_offset
    head = data[off:off + 30]
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return None
    start = off + 30 + sum(struct.unpack("<HH", head[26:30]))
    raw = memoryview(data)[start:start + info.compress_size]
    if len(raw) != info.compress_size:
        return None
    name = info.filename
    if info.compress_type == zipfile.ZIP_STORED:
        out = bytes(raw)
    else:
        d = _zlib.decompressobj(-15)
        out = d.decompress(raw, limit + 1)
        if len(out) > limit:
            raise ParseError(f"zip member {name!r} inflates past {limit} bytes from "
                             f"{info.compress_size}: refused as a zip bomb")
        if not d.eof:
            raise ParseError(f"corrupt zip ({len(data)} bytes): the deflate stream of {name!r} "
                             f"ends early")
    if len(out) != info.file_size or _zlib.crc32(out) != info.CRC:
        raise ParseError(f"corrupt zip ({len(data)} bytes): bad CRC-32 or size for {name!r}")
    return out


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, refusing names with a path and zip bombs (checked on the declared
    sizes first, then on the bytes actually inflated, which a forged header cannot hide)."""
    name = info.filename
    limit = _member_limit(info)
    out = bytearray()
    with zf.open(info) as f:
        while chunk := f.read(1 << 20):
            out += chunk
            if len(out) > limit:
                raise ParseError(f"zip member {name!r} inflates past {limit} bytes from "
                                 f"{info.compress_size}: refused as a zip bomb")
    return bytes(out)


# ---------------------------------------------------------------- CSV
_NONSPACE = re.compile(rb"\S")


def _first_line(csv: bytes) -> bytes:
    end = csv.find(b"\n", 0, 4096)
    return csv[: end if end >= 0 else 4096]


def has_header(first_line: bytes, columns: tuple[str, ...], where: str) -> bool:
    """True when the first line names the known columns; False when it is a data row.

    Decided by the names themselves (not by "is the first field numeric"): a first line whose
    fields are all known column names is a header; one naming none of them is data; anything
    in between is an unexpected header and raises.
    """
    fields = [f.strip().strip('"').strip().lower()
              for f in first_line.decode("utf-8", "replace").rstrip("\r").split(",")]
    known = set(columns)
    hits = sum(f in known for f in fields)
    if hits == 0:
        return False
    if tuple(fields) == columns:
        return True
    raise ParseError(f"unexpected {where} header {fields}; expected {list(columns)}")


def _check_range(us: pa.ChunkedArray, name: str) -> None:
    if len(us) == 0:
        return
    mm = pc.min_max(us.cast(pa.int64()))
    _range_ok(mm["min"].as_py(), mm["max"].as_py(), name)


def _range_ok(lo: int, hi: int, name: str) -> None:
    """Raise unless every time (µs after the epoch, min `lo`, max `hi`) is in 2000..2100."""
    if lo < _MIN_US or hi >= _MAX_US:
        bad = lo if lo < _MIN_US else hi
        raise ParseError(f"column {name!r} has a time outside 2000-01-01..2100-01-01 "
                         f"({bad} µs after the epoch)")



def _to_us(arr: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Epoch ms or µs (decided per value by magnitude) -> timestamp[us, UTC]."""
    if arr.null_count:
        raise ParseError(f"column {name!r} has {arr.null_count} empty values")
    if len(arr) == 0:
        return arr.cast(schema.TS)
    mm = pc.min_max(arr)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo < 0:
        raise ParseError(f"column {name!r} has a negative epoch value {lo}")
    if lo >= US_THRESHOLD:                       # all µs: reinterpret
        us = arr
        _range_ok(lo, hi, name)
    elif hi < US_THRESHOLD:                      # all ms
        us = pc.multiply_checked(arr, 1000)
        _range_ok(lo * 1000, hi * 1000, name)
    else:                                        # mixed units within one file
        us = pc.if_else(pc.greater_equal(arr, US_THRESHOLD), arr, pc.multiply_checked(arr, 1000))
        _check_range(us, name)
    return us.cast(schema.TS)


def _date_to_utc(arr: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """A naive date-string time (already parsed by the CSV reader) -> timestamp[us, UTC]."""
    if arr.null_count:
        raise ParseError(f"column {name!r} has {arr.null_count} empty values")
    _check_range(arr, name)
    return arr.cast(schema.TS)


def _finite(col: pa.ChunkedArray) -> bool:
    """Every non-null value of a float column is finite."""
    if not col.null_count:
        # a finite sum means no NaN or infinity (they propagate); an overflowing sum of finite
        # values is checked value by value
        v = col.to_numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(v.sum()) or np.isfinite(v).all())
    return bool(pc.all(pc.is_finite(col)).as_py())


def finish(raw: pa.Table, plan: _Plan, source: str, symbol: str | None = None) -> pa.Table:
    """Typed CSV columns -> silver columns (times to UTC µs, renames, ``source``), unsorted."""
    arrays, names = [], []
    for a, s in plan.renames.items():
        col = raw.column(a)
        if a in plan.epochs:
            col = _to_us(col, a)
        elif a in plan.dates:
            col = _date_to_utc(col, a)
        elif col.null_count and a not in plan.nullable:
            raise ParseError(f"malformed {plan.where} CSV: column {a!r} has {col.null_count} "
                             f"empty values")
        elif pa.types.is_floating(col.type) and len(col) - col.null_count and not _finite(col):
            raise ParseError(f"malformed {plan.where} CSV: column {a!r} holds a value that is not a "
                             f"number (NaN or infinite)")
        arrays.append(col)
        names.append(s)
    n = raw.num_rows
    if plan.data_type == "metrics" and symbol is not None and n:
        others = pc.unique(raw.column("symbol")).to_pylist()
        if others != [symbol]:
            raise ParseError(f"metrics rows name symbol(s) {sorted(map(str, others))[:5]}, "
                             f"not the file's {symbol!r}")
    if plan.data_type == "fundingRate":
        arrays.append(pa.nulls(n, pa.float64()))
        names.append("mark_price")
    arrays.append(pa.repeat(pa.scalar(source, pa.string()), n))
    names.append("source")
    return pa.Table.from_arrays(arrays, names=names).select(plan.target.names)


# ---------------------------------------------------------------- dedupe + sort
def _codes(col: pa.ChunkedArray) -> np.ndarray:
    """A numpy array that sorts and compares like the column (strings/bools by dense rank)."""
    t = col.type
    if pa.types.is_timestamp(t):
        return col.cast(pa.int64()).to_numpy()
    if pa.types.is_integer(t):
        return col.to_numpy()
    if pa.types.is_floating(t):
        return col.fill_null(np.nan).to_numpy() + 0.0       # -0.0 == 0.0 already; nulls last
    return pc.rank(col.combine_chunks(), sort_keys="ascending", tiebreaker="dense").to_numpy()


def _strictly_increasing(cols: list[np.ndarray]) -> bool:
    """Rows strictly increase lexicographically over ``cols``."""
    if not cols or len(cols[0]) < 2:
        return True
    lt = np.zeros(len(cols[0]) - 1, dtype=bool)
    eq = np.ones(len(cols[0]) - 1, dtype=bool)
    for c in cols:
        lt |= eq & (c[1:] > c[:-1])
        eq &= c[1:] == c[:-1]
    return bool(lt.all())


def dedupe_sort(table: pa.Table, data_type: str) -> tuple[pa.Table, int]:
    """Keep the first row (in file order) of each ``schema.natural_key``, sort the rest by
    ``(time_column, *natural_key)``; returns the table and how many duplicates were dropped."""
    n = table.num_rows
    if n < 2:
        return table, 0
    keys = schema.natural_key(data_type)
    tcol = schema.time_column(data_type)
    kc = [_codes(table.column(k)) for k in keys]
    sort_cols = kc if keys[0] == tcol else [_codes(table.column(tcol)), *kc]
    if _strictly_increasing(sort_cols) and (sort_cols is kc or _strictly_increasing(kc)):
        return table, 0
    # stable sorts keep file order within a key (timsort: near-linear on nearly sorted ids)
    by_key = np.argsort(kc[0], kind="stable") if len(kc) == 1 else np.lexsort(kc[::-1])
    first = np.ones(n, dtype=bool)
    same = np.ones(n - 1, dtype=bool)
    for c in kc:
        s = c[by_key]
        same &= s[1:] == s[:-1]
    first[1:] = ~same
    order = by_key[first]                           # first row of each key, in key order
    if sort_cols is not kc:                         # time leads the sort: reorder if needed
        t = sort_cols[0][order]
        if not bool(np.all(t[1:] >= t[:-1])):
            order = order[np.lexsort([c[order] for c in sort_cols[::-1]])]
    return table.take(pa.array(order)), n - len(order)


# ---------------------------------------------------------------- entry points
def _check_source(source: str) -> None:
    if source not in schema.SOURCES:
        raise ParseError(f"unknown source {source!r}; allowed: {', '.join(schema.SOURCES)}")


def parse_csv(csv: bytes, market: str, data_type: str, source: str,
              symbol: str | None = None) -> pa.Table:
    """Parse one archive CSV into a table whose schema equals
    ``schema.silver_schema(market, data_type)``.

    ``data_type`` is any archive data type the market has; ``source`` is one of
    ``schema.SOURCES``; ``symbol`` (optional) is checked against metrics' own symbol column.
    An empty file (or a header alone) gives an empty table. Raises ParseError on malformed CSV.
    """
    plan = _plan(market, data_type)
    _check_source(source)
    if not _NONSPACE.search(csv):                # empty, or blanks alone
        return plan.target.empty_table()
    first = _first_line(csv)
    header = has_header(first, plan.columns, plan.where)
    if header and not _NONSPACE.search(csv, len(first) + 1):
        return plan.target.empty_table()
    big = len(csv) > _THREADED_FROM             # one big file: let pyarrow split it in blocks
    ropts = pacsv.ReadOptions(column_names=list(plan.columns), skip_rows=1 if header else 0,
                              use_threads=big,
                              block_size=8 << 20 if big else max(1 << 20, len(csv) + 1))
    try:
        raw = pacsv.read_csv(pa.BufferReader(csv), read_options=ropts,
                             convert_options=plan.convert)
        table = finish(raw, plan, source, symbol)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ParseError(f"malformed {plan.where} CSV: {exc}") from exc
    table, _ = dedupe_sort(table, data_type)
    if table.schema != plan.target:              # a bug here, not bad input
        raise AssertionError(f"parse produced {table.schema}, expected {plan.target}")
    return table


def source_of(key: ArchiveKey) -> str:
    """``archive_monthly`` / ``archive_daily`` from the key's cadence."""
    source = _SOURCE_BY_CADENCE.get(key.cadence)
    if source is None:
        raise ParseError(f"unknown cadence {key.cadence!r} in {key.key}; allowed: daily, monthly")
    return source


def parse_file(data: bytes, key: ArchiveKey) -> pa.Table:
    """Zip bytes of one archive file -> silver table; ``source`` follows ``key.cadence``."""
    source = source_of(key)
    try:
        return parse_csv(read_zip(data), key.market, key.data_type, source, key.symbol)
    except ParseError as exc:
        raise ParseError(f"{key.key}: {exc}") from exc


def __getattr__(name: str):
    """``iter_parse``, ``ParseStream`` and ``sha256_stream`` live in
    :mod:`cryptolake.sources.stream`; importing them from here works too."""
    if name in ("iter_parse", "ParseStream", "sha256_stream", "IdRuns"):
        from cryptolake.sources import stream
        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def row_span(table: pa.Table, data_type: str) -> dict:
    """How many rows a parsed source file holds, and its first and last row time (the
    manifest keeps them: gap causes ask whether a file starts late or stops early)."""
    if not table.num_rows:
        return {"rows": 0, "first_time": None, "last_time": None}
    mm = pc.min_max(table[schema.time_column(data_type)])
    return {"rows": table.num_rows, "first_time": mm["min"].as_py(), "last_time": mm["max"].as_py()}
