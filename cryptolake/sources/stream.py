"""Big archive files in bounded memory: zip member stream -> CSV record batches -> silver batches.

A day of BTCUSDT trades runs to tens of millions of rows and a monthly file to gigabytes, so
:func:`iter_parse` never holds the whole CSV: it reads the zip member as a stream
(``zipfile`` decompresses incrementally), feeds it to pyarrow's streaming CSV reader
(``pyarrow.csv.open_csv``) in blocks sized for about ``batch_rows`` rows, and converts each
block exactly as :func:`cryptolake.sources.parse.parse_csv` would. Peak memory is bounded by
the batch, not the file (``benchmarks/bench_parse.py`` measures it: a few hundred MiB
above the interpreter at the default 250,000 rows, the same for a 5M- and a 20M-row file).

Deduplication across batches, for the id-keyed types (``aggTrades``, ``trades``,
``bookTicker``, whose ids increase through a file): every id already emitted is dropped.
Emitted ids are remembered as runs of consecutive integers (:class:`IdRuns`), so a file whose
ids are contiguous costs two integers of memory, and one with holes a pair per hole. A row
whose id is below one emitted earlier but is new (the archive's interleaved monthly files) is
kept and counted in ``out_of_order``; each batch is sorted by ``(time, id)``, the stream as a
whole is sorted only when ``out_of_order == 0``.

The other types are small (a daily metrics file is 288 rows, a monthly 1s kline file 2.7M)
and are parsed whole with ``parse_csv`` and then yielded in slices.

Hashing while streaming is the fetch side's job; :func:`sha256_stream` copies a stream to a
destination while hashing it, in fixed-size chunks.
"""
from __future__ import annotations

import ctypes
import hashlib
import io
import os
import zipfile
import zlib
from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cryptolake import schema
from cryptolake.layout import ArchiveKey
from cryptolake.sources.parse import (ParseError, _plan, dedupe_sort, finish, has_header,
                                      parse_csv, single_member, source_of)

__all__ = ["iter_parse", "ParseStream", "IdRuns", "sha256_stream", "merge_sorted", "STREAMED_TYPES"]

STREAMED_TYPES = ("aggTrades", "trades", "bookTicker")
"""Types read batch by batch (their single integer key increases through a file)."""

_HEAD_BYTES = 1 << 16
_POOL = pa.default_memory_pool()
try:                                                   # glibc: hand freed heap pages back
    _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):                      # not glibc (macOS, musl): skip
    _TRIM = None


def _release_memory() -> None:
    """Return freed memory to the OS between batches. Without it RSS creeps up with the file
    (retained allocator pages, glibc's heap fragmentation from numpy's per-batch arrays), so
    peak memory would not stay bounded by the batch."""
    _POOL.release_unused()
    if _TRIM is not None:
        _TRIM(0)
_MAX_BLOCK = 256 << 20


class IdRuns:
    """A set of int64 ids stored as sorted, disjoint, non-adjacent inclusive runs."""

    def __init__(self):
        self.starts = np.empty(0, dtype=np.int64)
        self.ends = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        """Number of runs (not ids)."""
        return len(self.starts)

    @property
    def max(self) -> int | None:
        return int(self.ends[-1]) if len(self.ends) else None

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``ids`` are in the set."""
        if not len(self.starts):
            return np.zeros(len(ids), dtype=bool)
        i = np.searchsorted(self.starts, ids, side="right") - 1
        ok = i >= 0
        out = np.zeros(len(ids), dtype=bool)
        out[ok] = ids[ok] <= self.ends[i[ok]]
        return out

    def add(self, ids: np.ndarray) -> None:
        """Add ids (any order, repeats allowed)."""
        if not len(ids):
            return
        u = np.sort(np.asarray(ids, dtype=np.int64), kind="stable")     # timsort: ids come nearly sorted
        u = u[np.r_[True, u[1:] != u[:-1]]]
        brk = np.flatnonzero(np.diff(u) != 1) + 1
        starts = np.concatenate([self.starts, u[np.r_[0, brk]]])
        ends = np.concatenate([self.ends, u[np.r_[brk - 1, len(u) - 1]]])
        o = np.argsort(starts, kind="stable")
        starts, ends = starts[o], np.maximum.accumulate(ends[o])
        new = np.ones(len(starts), dtype=bool)
        new[1:] = starts[1:] > ends[:-1] + 1
        first = np.flatnonzero(new)
        last = np.r_[first[1:] - 1, len(starts) - 1]
        self.starts, self.ends = starts[first], ends[last]


class _Prefixed(io.RawIOBase):
    """A readable stream: ``head`` bytes, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream):
        self._head, self._stream = memoryview(head), stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = 0
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
        if n < len(b):
            data = self._stream.read(len(b) - n)
            b[n: n + len(data)] = data
            n += len(data)
        return n


_STREAM_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                  pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


class ParseStream:
    """Iterator of silver tables (schema ``schema.silver_schema(market, data_type)``) from one
    archive zip. Counters, final once the iterator is exhausted: ``rows_read`` (data rows in
    the file), ``rows`` (rows yielded), ``duplicates`` (rows dropped as repeats of a key),
    ``out_of_order`` (new rows whose key is below one yielded in an earlier batch),
    ``batches``."""

    def __init__(self, src, key: ArchiveKey, batch_rows: int = 250_000):
        if not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive int, got {batch_rows!r}")
        self.key, self.batch_rows = key, batch_rows
        self.rows_read = self.rows = self.duplicates = self.out_of_order = self.batches = 0
        self._gen = self._run(src)

    def __iter__(self) -> Iterator[pa.Table]:
        return self

    def __next__(self) -> pa.Table:
        return next(self._gen)

    def __repr__(self) -> str:
        return (f"<ParseStream {self.key.key}: {self.rows:,} rows in {self.batches} batches, "
                f"{self.duplicates:,} duplicates, {self.out_of_order:,} out of order>")

    # -- internals
    def _emit(self, table: pa.Table) -> pa.Table:
        self.rows += table.num_rows
        self.batches += 1
        return table

    def _run(self, src) -> Iterator[pa.Table]:
        key = self.key
        source = source_of(key)
        try:
            plan = _plan(key.market, key.data_type)
            fh, owned = _open(src)
            try:
                with zipfile.ZipFile(fh) as zf, zf.open(single_member(zf)) as member:
                    if key.data_type in STREAMED_TYPES:
                        yield from self._stream(member, plan, source)
                    else:
                        yield from self._whole(member.read(), source)
            finally:
                if owned:
                    fh.close()
        except ParseError as exc:
            raise ParseError(f"{key.key}: {exc}") from exc
        except _STREAM_ERRORS as exc:
            raise ParseError(f"{key.key}: corrupt zip or malformed CSV: {exc}") from exc

    def _whole(self, csv: bytes, source: str) -> Iterator[pa.Table]:
        k = self.key
        t = parse_csv(csv, k.market, k.data_type, source, k.symbol)
        self.rows_read = _data_rows(csv, _plan(k.market, k.data_type))
        self.duplicates = self.rows_read - t.num_rows
        for i in range(0, t.num_rows, self.batch_rows):
            yield self._emit(t.slice(i, self.batch_rows))

    def _stream(self, member, plan, source: str) -> Iterator[pa.Table]:
        head = member.read(_HEAD_BYTES)
        while b"\n" not in head:                     # a first line longer than 64 KiB
            more = member.read(_HEAD_BYTES)
            if not more:
                break
            head += more
        first = head.split(b"\n", 1)[0]
        if not head.strip():
            return
        header = has_header(first, plan.columns, plan.where)
        body = head[len(first) + 1:] if header else head
        lines = body.split(b"\n")
        row_bytes = max(len(body) // max(len(lines) - 1, 1), 16)
        longest = max(len(x) for x in lines) + 1
        # about batch_rows rows per block, never so small that a row could straddle two
        block = int(min(max(row_bytes * self.batch_rows, 8 * longest, 4096), _MAX_BLOCK))
        ropts = pacsv.ReadOptions(column_names=list(plan.columns), skip_rows=1 if header else 0,
                                  use_threads=True, block_size=block)
        reader = pacsv.open_csv(_Prefixed(head, member), read_options=ropts,
                                convert_options=plan.convert)
        id_col = schema.natural_key(plan.data_type)[0]
        seen = IdRuns()
        for rb in reader:
            if rb.num_rows == 0:
                continue
            self.rows_read += rb.num_rows
            t = finish(pa.Table.from_batches([rb]), plan, source)
            ids = t.column(id_col).to_numpy()
            known = seen.contains(ids)
            if known.any():
                t, ids = t.filter(pa.array(~known)), ids[~known]
            t, dropped = dedupe_sort(t, plan.data_type)
            self.duplicates += int(known.sum()) + dropped
            if t.num_rows == 0:
                continue
            ids = t.column(id_col).to_numpy()
            hi = seen.max
            if hi is not None:
                self.out_of_order += int((ids < hi).sum())
            seen.add(ids)
            yield self._emit(t)
            del t
            _release_memory()


def _data_rows(csv: bytes, plan) -> int:
    """Data lines of a CSV (header and blank lines, which the reader skips, not counted)."""
    if not csv.strip():
        return 0
    lines = csv.count(b"\n") + (0 if csv.endswith(b"\n") else 1)
    header = has_header(csv.split(b"\n", 1)[0], plan.columns, plan.where)
    return lines - header - csv.count(b"\n\n")


def _open(src) -> tuple[BinaryIO, bool]:
    """(seekable binary file, whether we opened it) for bytes, a path or a file object."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return io.BytesIO(src), True
    if isinstance(src, (str, os.PathLike)):
        return open(src, "rb"), True
    if hasattr(src, "read") and hasattr(src, "seek"):
        return src, False
    raise TypeError(f"iter_parse needs zip bytes, a path or a seekable binary file, "
                    f"got {type(src).__name__}")


def iter_parse(data_or_fileobj, key: ArchiveKey, batch_rows: int = 250_000) -> ParseStream:
    """Stream one archive zip (bytes, a path, or a seekable binary file such as an fsspec
    file) as silver tables of about ``batch_rows`` rows each, in bounded memory.

    Every table has ``schema.silver_schema(key.market, key.data_type)``; together they hold
    exactly the rows ``parse_file`` returns (the same dedup on the natural key, first row in
    file order wins). Read ``.duplicates`` / ``.out_of_order`` on the returned
    :class:`ParseStream` after iterating. Raises ParseError (naming the file) as it goes,
    possibly after some tables were yielded: a writer must treat a file that fails part-way
    as failed as a whole (write nothing of it, or roll back).
    """
    return ParseStream(data_or_fileobj, key, batch_rows)


def sha256_stream(src: BinaryIO, dst: BinaryIO | None = None,
                  chunk_size: int = 1 << 20) -> tuple[str, int]:
    """Read ``src`` to its end in ``chunk_size`` pieces, hashing (and copying to ``dst`` if
    given); returns ``(sha256 hex digest, bytes read)``. Memory stays at one chunk."""
    h, n = hashlib.sha256(), 0
    while True:
        chunk = src.read(chunk_size)
        if not chunk:
            return h.hexdigest(), n
        h.update(chunk)
        n += len(chunk)
        if dst is not None:
            dst.write(chunk)


class Unsorted(ValueError):
    """A stream handed to :func:`merge_sorted` went back in time between two batches."""


def _times(t: pa.Table, time_col: str) -> np.ndarray:
    return t.column(time_col).cast(pa.int64()).to_numpy()


def merge_sorted(streams: list, time_col: str, key: tuple[str, ...]) -> Iterator[pa.Table]:
    """Merge several streams of tables, each sorted by ``(time, *key)`` across its batches,
    into one sorted stream with one row per ``(time, *key)``: where streams share a row, the
    one listed first in ``streams`` wins (order them by priority). Memory: about two batches
    per stream. Emits everything below a watermark (the smallest last time any unfinished
    stream has shown), so no row can be matched by a later one. Raises :class:`Unsorted`
    (naming the stream's index in ``.args[1]``) when a stream goes back in time.
    """
    n = len(streams)
    its = [iter(s) for s in streams]
    cols = [time_col] + [c for c in key if c != time_col]
    if n == 1:                                    # one source: sorted and unique already
        last = None
        for t in its[0]:
            if not t.num_rows:
                continue
            tt = _times(t, time_col)
            if last is not None and tt[0] < last:
                raise Unsorted(f"stream 0 goes back in time at {tt[0]}", 0)
            last = int(tt[-1])
            yield t
        return
    bufs: list[pa.Table | None] = [None] * n
    done = [False] * n
    seen_last = [None] * n

    def refill(i):
        for t in its[i]:
            if not t.num_rows:
                continue
            tt = _times(t, time_col)
            if seen_last[i] is not None and tt[0] < seen_last[i]:
                raise Unsorted(f"stream {i} goes back in time at {tt[0]}", i)
            seen_last[i] = int(tt[-1])
            t = t.append_column("_prio", pa.array(np.full(t.num_rows, i, np.int32)))
            b = bufs[i]
            bufs[i] = t if b is None or not b.num_rows else pa.concat_tables([b, t])
            return
        done[i] = True

    for i in range(n):
        refill(i)
    while True:
        live = [i for i in range(n) if not done[i]]
        wm = min(int(_times(bufs[i].slice(bufs[i].num_rows - 1), time_col)[0]) for i in live) \
            if live else None
        parts = []
        for i in range(n):
            b = bufs[i]
            if b is None or not b.num_rows:
                continue
            cut = b.num_rows if wm is None else int(np.searchsorted(_times(b, time_col), wm, "left"))
            if cut:
                parts.append(b.slice(0, cut))
                bufs[i] = b.slice(cut)
        if parts:
            yield _merge_parts(parts, cols)
        if not live:
            return
        for i in live:
            b = bufs[i]
            if not b.num_rows or int(_times(b.slice(b.num_rows - 1), time_col)[0]) == wm:
                refill(i)
        _release_memory()


def _merge_parts(parts: list[pa.Table], cols: list[str]) -> pa.Table:
    """Concatenate, sort by ``cols`` then stream priority, keep the first row of each key."""
    t = pa.concat_tables(parts).combine_chunks()
    order = pc.sort_indices(t, [(c, "ascending") for c in cols] + [("_prio", "ascending")])
    t = t.take(order)
    n = t.num_rows
    same = np.ones(max(n - 1, 0), dtype=bool)
    for c in cols:
        v = t.column(c)
        v = (v.cast(pa.int64()) if pa.types.is_timestamp(v.type) else v).to_numpy()
        same &= v[1:] == v[:-1]
    t = t.drop_columns(["_prio"])
    if same.any():
        keep = np.ones(n, dtype=bool)
        keep[1:] = ~same
        t = t.filter(pa.array(keep))
    return t
