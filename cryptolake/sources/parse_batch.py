"""Many archive CSVs of one data type -> silver tables, parsed together.

A month of 1m klines for one symbol is 30 daily files of 1,440 rows. Parsed one by one, each
file pays the CSV reader's fixed costs and a per-file pass over its columns; parsed as ONE
concatenated CSV, Polars' reader (multi-threaded, about twice pyarrow's speed on these numeric
columns) and one `finish` do the work, and the table is cut back into files by their line
counts. The result is the same as `parse.parse_csv` file by file, because anything unusual
takes that careful path instead:

* only data types whose columns are all int64/float64 (klines of every kind, fundingRate) go
  together, and only while the batch is big enough to gain (`TOGETHER_MIN_BYTES`);
* a file goes together only when its line count is certain: no quotes, no carriage returns,
  no blank lines, a header (if any) that `parse.has_header` recognises;
* the joint parse is kept only when its row count is the sum of the files' lines, every value
  is present, the column types are the planned ones and `finish` (times to UTC µs, finite
  floats) accepts it; otherwise every file of the group is parsed alone, so a malformed file
  fails with the same `ParseError` as before and its neighbours still parse.

Float text is read by both readers with correctly rounded conversions (pyarrow and Polars both
use the fast_float algorithm); `tests/sources/test_parse_batch.py` checks the two agree bit for
bit on hypothesis-generated decimals.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from cryptolake.layout import ArchiveKey

from .parse import (ParseError, _NONSPACE, _Plan, _plan, dedupe_sort, finish, has_header,
                    parse_csv, read_zip, source_of)

__all__ = ["parse_csvs", "parse_zips", "TOGETHER_MIN_BYTES", "TOGETHER_MAX_BYTES"]

TOGETHER_MIN_BYTES = 1 << 20
"""A group of files is parsed together from this many CSV bytes (below it pyarrow's per-file
read is as fast, and Polars is not worth starting)."""

TOGETHER_MAX_BYTES = 64 << 20
"""...and in runs of at most this many CSV bytes (a file bigger than that goes alone): the
CSVs, their concatenation and the parsed rows are held at once, so this bounds the memory."""

_NUMERIC = (pa.int64(), pa.float64())


def parse_zips(items: list[tuple[bytes, ArchiveKey]]) -> list[pa.Table | ParseError]:
    """`parse_csvs` of archive zips: each is inflated first (a corrupt zip is that file's
    ParseError), and parsed once about `TOGETHER_MAX_BYTES` of CSV are waiting, so the
    inflated CSVs are never all held at once."""
    out: list = [None] * len(items)
    waiting: list[tuple[int, bytes, ArchiveKey]] = []
    held = 0

    def parse_waiting():
        for (i, _, _), t in zip(waiting, parse_csvs([(c, k) for _, c, k in waiting])):
            out[i] = t
        waiting.clear()

    for i, (data, key) in enumerate(items):
        try:
            csv = read_zip(data)
        except ParseError as e:
            out[i] = ParseError(f"{key.key}: {e}")
            continue
        waiting.append((i, csv, key))
        held += len(csv)
        if held >= TOGETHER_MAX_BYTES:
            parse_waiting()
            held = 0
    parse_waiting()
    return out


def parse_csvs(items: list[tuple[bytes, ArchiveKey]]) -> list[pa.Table | ParseError]:
    """One silver table per (CSV bytes, key) — exactly what `parse.parse_file` gives for the
    file — or the file's ParseError (prefixed with its key, as `parse_file` raises it).
    Files of the same market, data type and cadence are parsed together where that is safe
    (see the module docstring)."""
    out: list = [None] * len(items)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (_, key) in enumerate(items):
        try:
            groups[(key.market, key.data_type, source_of(key))].append(i)
            _plan(key.market, key.data_type)
        except ParseError as e:
            out[i] = ParseError(f"{key.key}: {e}")
    for (market, data_type, source), idx in groups.items():
        idx = [i for i in idx if out[i] is None]
        if not idx:
            continue
        plan = _plan(market, data_type)
        done: dict[int, pa.Table] = {}
        run: list[tuple[int, bytes]] = []
        size = 0
        for i in idx + [None]:                   # runs of at most TOGETHER_MAX_BYTES
            n = 0 if i is None else len(items[i][0])
            if run and (i is None or size + n > TOGETHER_MAX_BYTES):
                done.update(_together(plan, source, run))
                run, size = [], 0
            if i is not None:
                run.append((i, items[i][0]))
                size += n
        for i in idx:
            if i in done:
                out[i] = done[i]
                continue
            csv, key = items[i]
            try:
                out[i] = parse_csv(csv, market, data_type, source, key.symbol)
            except ParseError as e:
                out[i] = ParseError(f"{key.key}: {e}")
    return out


def _body(csv: bytes, plan: _Plan) -> tuple[memoryview, int] | None:
    """(the data lines, how many) of a file whose line count is certain, else None (parse it
    alone). A blank line is counted as a line: the joint parse then holds a row of nulls and
    is dropped."""
    if b'"' in csv or b"\r" in csv or not _NONSPACE.search(csv):
        return None
    end = csv.find(b"\n")
    try:
        header = has_header(csv[:end if end >= 0 else len(csv)], plan.columns, plan.where)
    except ParseError:
        return None
    if header and end < 0:                   # a header alone
        return None
    body = memoryview(csv)[end + 1 if header else 0:]
    if not len(body):
        return None
    # numpy counts newlines ~3x faster than bytes.count
    n = int(np.count_nonzero(np.frombuffer(body, np.uint8) == 10)) + (body[-1] != 10)
    return body, n


def _polars_schema(plan: _Plan):
    import polars as pl
    kinds = {pa.int64(): pl.Int64, pa.float64(): pl.Float64}
    types = plan.convert.column_types
    return {c: kinds[types[c]] if c in types else pl.String for c in plan.columns}


def _together(plan: _Plan, source: str, files: list[tuple[int, bytes]]) -> dict[int, pa.Table]:
    """{item index: table} of the files parsed as one CSV; empty when the group is not
    eligible or the joint parse is not certainly the files' own (then each is parsed alone)."""
    types = plan.convert.column_types
    if plan.dates or plan.nullable or any(types[c] not in _NUMERIC for c in plan.renames):
        return {}
    bodies = [(i, b) for i, b in ((i, _body(csv, plan)) for i, csv in files) if b is not None]
    if sum(len(b) for _, (b, _) in bodies) < TOGETHER_MIN_BYTES:
        return {}
    try:
        import polars as pl
    except ImportError:      # pragma: no cover - a declared dependency; pyarrow does the same
        return {}
    counts = [n for _, (_, n) in bodies]
    data = b"".join(p for _, (b, _) in bodies for p in ((b,) if b[-1] == 10 else (b, b"\n")))
    try:
        df = pl.read_csv(data, has_header=False, new_columns=list(plan.columns),
                         schema=_polars_schema(plan))
    except Exception:        # noqa: BLE001 - any refusal: the careful path says what is wrong
        return {}
    if df.height != sum(counts) or sum(df.null_count().row(0)):
        return {}
    raw = df.select(list(plan.renames)).to_arrow()
    if any(raw.schema.field(c).type != types[c] for c in plan.renames):
        return {}
    try:
        table = finish(raw, plan, source)
    except (ParseError, pa.ArrowInvalid):
        return {}
    out, start = {}, 0
    for (i, _), n in zip(bodies, counts):
        part, _ = dedupe_sort(table.slice(start, n), plan.data_type)
        if part.schema != plan.target:           # a bug here, not bad input
            raise AssertionError(f"parse produced {part.schema}, expected {plan.target}")
        out[i] = part
        start += n
    return out
