"""Archive CSV bytes -> Arrow table in the canonical silver schema.

The fast path is pyarrow's C++ CSV reader with explicit column types (no inference, no Python
row loops); zlib and the CSV reader both release the GIL, so files parse well in threads.

What this module normalises (see docs/binance-archive.md §3-§5, §10):

* headers are sniffed per file by comparing the first line's fields with the known column names;
* timestamps in milliseconds and the spot archive's microseconds (files dated 2025-01-01+) are
  told apart per value by magnitude (``>= 10**14`` is µs) and land on the same instants as
  ``timestamp[us, UTC]``;
* columns are renamed to silver names (``count`` -> ``trades``; COIN-M ``quote_volume`` ->
  ``base_volume`` and ``taker_buy_quote_volume`` -> ``taker_buy_base_volume``; ``ignore``
  dropped; funding ``calc_time`` -> ``funding_time``, ``last_funding_rate`` -> ``funding_rate``,
  ``mark_price`` null);
* rows are deduplicated on the time column (the first row of each instant, in file order,
  wins) and sorted by it.

Anything malformed raises :class:`ParseError` (a ``ValueError``) saying what was wrong.
"""
from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cryptolake import schema
from cryptolake.layout import ArchiveKey

__all__ = ["ParseError", "read_zip", "parse_csv", "parse_file", "archive_columns",
           "US_THRESHOLD"]

US_THRESHOLD = 10**14
"""Epoch values at or above this are microseconds, below it milliseconds (10**14 ms is year 5138;
10**14 µs is 1973)."""

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                 "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")

_SOURCE_BY_CADENCE = {"monthly": "archive_monthly", "daily": "archive_daily"}


class ParseError(ValueError):
    """An archive file that cannot be turned into silver rows (corrupt zip, malformed CSV)."""


# ---------------------------------------------------------------- column maps
def archive_columns(data_type: str) -> tuple[str, ...]:
    """The CSV columns of a data type, in file order, as headered files name them."""
    if data_type in schema.KLINE_TYPES:
        return KLINE_COLUMNS
    if data_type == "fundingRate":
        return FUNDING_COLUMNS
    raise ParseError(f"cannot parse data type {data_type!r} yet; "
                     f"parseable: {', '.join(schema.INGESTIBLE)}")


def _renames(market: str, data_type: str) -> dict[str, str]:
    """archive column -> silver column, for the columns silver keeps."""
    if data_type == "fundingRate":
        return {"calc_time": "funding_time", "funding_interval_hours": "funding_interval_hours",
                "last_funding_rate": "funding_rate"}
    out = {c: c for c in KLINE_COLUMNS if c != "ignore"}
    out["count"] = "trades"
    if market == "cm":
        out["quote_volume"] = "base_volume"
        out["taker_buy_quote_volume"] = "taker_buy_base_volume"
    return out


def _time_columns(data_type: str) -> tuple[str, ...]:
    return ("calc_time",) if data_type == "fundingRate" else ("open_time", "close_time")


_PLAN_CACHE: dict[tuple[str, str], tuple] = {}


def _plan(market: str, data_type: str):
    """(archive columns, renames, ConvertOptions, target schema), cached per (market, type)."""
    k = (market, data_type)
    if k not in _PLAN_CACHE:
        cols = archive_columns(data_type)
        ren = _renames(market, data_type)
        target = schema.silver_schema(market, data_type)
        times = _time_columns(data_type)
        types = {}
        for a, s in ren.items():
            types[a] = pa.int64() if a in times else target.field(s).type
        conv = pacsv.ConvertOptions(column_types=types, include_columns=list(ren),
                                    null_values=[], strings_can_be_null=False,
                                    quoted_strings_can_be_null=False)
        _PLAN_CACHE[k] = (cols, ren, conv, target)
    return _PLAN_CACHE[k]


# ---------------------------------------------------------------- zip
def read_zip(data: bytes) -> bytes:
    """The single CSV member of an archive zip.

    Raises ParseError for bytes that are not a zip, a damaged member (bad CRC, bad deflate
    stream), or a zip with zero or several members.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                names = ", ".join(i.filename for i in members) or "none"
                raise ParseError(f"archive zip must hold exactly one CSV member, found "
                                 f"{len(members)} ({names})")
            return _read_member(zf, members[0])
    except ParseError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            ValueError) as exc:
        raise ParseError(f"corrupt zip ({len(data)} bytes): {exc}") from exc


MAX_MEMBER_BYTES = 4 << 30
"""An archive CSV inflating past this is refused (the largest real kline file is ~100 MiB)."""
MAX_RATIO = 100
"""...and so is one inflating more than this many times its compressed size when it is over
1 MiB (real CSVs deflate 3-10x; a zip bomb of zeros ~1000x)."""


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, refusing names with a path and zip bombs (checked on the declared
    sizes first, then on the bytes actually inflated, which a forged header cannot hide)."""
    name = info.filename
    if "/" in name or "\\" in name or ".." in name or ":" in name or name.startswith(".") \
            or not name:
        raise ParseError(f"zip member name {name!r} is not a plain file name (no directories, "
                         f"'..', drive letters or absolute paths)")
    limit = min(MAX_MEMBER_BYTES, max(1 << 20, MAX_RATIO * max(info.compress_size, 1)))
    if info.file_size > limit:
        raise ParseError(f"zip member {name!r} inflates to {info.file_size} bytes from "
                         f"{info.compress_size} (over {limit}): refused as a zip bomb")
    out = bytearray()
    with zf.open(info) as f:
        while chunk := f.read(1 << 20):
            out += chunk
            if len(out) > limit:
                raise ParseError(f"zip member {name!r} inflates past {limit} bytes from "
                                 f"{info.compress_size}: refused as a zip bomb")
    return bytes(out)


# ---------------------------------------------------------------- CSV
def _first_line(csv: bytes) -> bytes:
    end = csv.find(b"\n", 0, 4096)
    return csv[: end if end >= 0 else 4096]


def _has_header(csv: bytes, columns: tuple[str, ...], data_type: str) -> bool:
    """True when the first line names the known columns; False when it is a data row.

    Decided by the names themselves (not by "is the first field numeric"): a first line whose
    fields are all known column names is a header; one naming none of them is data; anything
    in between is an unexpected header and raises.
    """
    fields = [f.strip().strip('"').strip().lower()
              for f in _first_line(csv).decode("utf-8", "replace").rstrip("\r").split(",")]
    known = set(columns)
    hits = sum(f in known for f in fields)
    if hits == 0:
        return False
    if tuple(fields) == columns:
        return True
    raise ParseError(f"unexpected {data_type} header {fields}; expected {list(columns)}")


_MIN_US, _MAX_US = 946_684_800_000_000, 4_102_444_800_000_000     # 2000-01-01, 2100-01-01 UTC


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
    for v in (lo, hi):
        us_v = v if v >= US_THRESHOLD else v * 1000
        if not _MIN_US <= us_v < _MAX_US:
            raise ParseError(f"column {name!r} has an epoch value {v} out of range "
                             f"(allowed: 2000-01-01 to 2100-01-01, in ms or µs)")
    if lo >= US_THRESHOLD:                       # all µs: reinterpret
        us = arr
    elif hi < US_THRESHOLD:                      # all ms
        us = pc.multiply_checked(arr, 1000)
    else:                                        # mixed units within one file
        us = pc.if_else(pc.greater_equal(arr, US_THRESHOLD), arr, pc.multiply_checked(arr, 1000))
    return us.cast(schema.TS)


def _dedupe_sort(table: pa.Table, tcol: str) -> pa.Table:
    """Sort by the time column and keep the first row (in file order) of each instant."""
    t = table.column(tcol).cast(pa.int64()).to_numpy()
    if len(t) < 2 or bool(np.all(t[1:] > t[:-1])):
        return table
    order = np.argsort(t, kind="stable")
    ts = t[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = ts[1:] != ts[:-1]
    return table.take(pa.array(order[keep]))


def parse_csv(csv: bytes, market: str, data_type: str, source: str) -> pa.Table:
    """Parse one archive CSV into a table whose schema equals
    ``schema.silver_schema(market, data_type)``.

    ``data_type`` is a kline-class type (``klines``, ``markPriceKlines``, ``indexPriceKlines``,
    ``premiumIndexKlines``) or ``fundingRate``; ``source`` is one of ``schema.SOURCES``.
    An empty file (or a header alone) gives an empty table. Raises ParseError on malformed CSV.
    """
    if market not in schema.MARKETS:
        raise ParseError(f"unknown market {market!r}; allowed: {', '.join(schema.MARKETS)}")
    if source not in schema.SOURCES:
        raise ParseError(f"unknown source {source!r}; allowed: {', '.join(schema.SOURCES)}")
    cols, ren, conv, target = _plan(market, data_type)
    where = f"{market} {data_type}"
    header = _has_header(csv, cols, where) if csv.strip() else False
    if not csv.strip() or (header and not csv[len(_first_line(csv)) + 1:].strip()):
        return target.empty_table()
    ropts = pacsv.ReadOptions(column_names=list(cols), skip_rows=1 if header else 0,
                              use_threads=False, block_size=max(1 << 20, len(csv) + 1))
    try:
        raw = pacsv.read_csv(pa.BufferReader(csv), read_options=ropts, convert_options=conv)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ParseError(f"malformed {where} CSV: {exc}") from exc
    arrays = []
    times = _time_columns(data_type)
    for a in ren:
        col = raw.column(a)
        if a in times:
            col = _to_us(col, a)
        elif col.null_count:
            raise ParseError(f"malformed {where} CSV: column {a!r} has {col.null_count} empty values")
        elif pa.types.is_floating(col.type) and len(col) and \
                not pc.all(pc.is_finite(col)).as_py():
            raise ParseError(f"malformed {where} CSV: column {a!r} holds a value that is not a "
                             f"number (NaN or infinite)")
        arrays.append(col)
    names = list(ren.values())
    n = raw.num_rows
    if data_type == "fundingRate":
        arrays.append(pa.nulls(n, pa.float64()))
        names.append("mark_price")
    arrays.append(pa.repeat(pa.scalar(source, pa.string()), n))
    names.append("source")
    table = pa.Table.from_arrays(arrays, names=names)
    table = table.select(target.names)
    table = _dedupe_sort(table, schema.time_column(data_type))
    if table.schema != target:                   # a bug here, not bad input
        raise AssertionError(f"parse produced {table.schema}, expected {target}")
    return table


def parse_file(data: bytes, key: ArchiveKey) -> pa.Table:
    """Zip bytes of one archive file -> silver table; ``source`` follows ``key.cadence``."""
    source = _SOURCE_BY_CADENCE.get(key.cadence)
    if source is None:
        raise ParseError(f"unknown cadence {key.cadence!r} in {key.key}; allowed: daily, monthly")
    try:
        return parse_csv(read_zip(data), key.market, key.data_type, source)
    except ParseError as exc:
        raise ParseError(f"{key.key}: {exc}") from exc
