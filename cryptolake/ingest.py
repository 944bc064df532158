"""The ingest pipeline: plan -> fetch + verify -> bronze -> parse -> merge -> silver partitions.

Work is done symbol by symbol (bounded memory); inside a symbol, files are fetched, stored
and parsed concurrently (zlib, hashlib and pyarrow's CSV reader release the GIL), then each
touched month partition is rebuilt once from every bronze file that feeds it.
"""
from __future__ import annotations

import difflib
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from tqdm.auto import tqdm

from . import config, schema
from .layout import parse_archive_key
from .layers import silver
from .layers.bronze import QUARANTINED, STORED, Bronze
from .report import FILE_COLUMNS, IngestReport
from .sources.parse import ParseError, parse_file


class _Outcome:
    __slots__ = ("remote", "row", "table", "status", "reason")

    def __init__(self, remote, row=None, table=None, status="failed", reason=""):
        self.remote, self.row, self.table, self.status, self.reason = remote, row, table, status, reason


def _fetch_store_parse(archive, bronze: Bronze, table_name: str, remote) -> _Outcome:
    fetched = archive.fetch(remote)
    if fetched.data is None:
        return _Outcome(remote, status="failed", reason=fetched.reason or "download failed")
    row = bronze.store(fetched, table_name)   # verified -> bronze; anything else -> quarantine
    if row["status"] == QUARANTINED:
        return _Outcome(remote, row, status="quarantined", reason=row["reason"])
    try:
        parsed = parse_file(fetched.data, remote.key)
    except ParseError as e:
        row = bronze.quarantine(row, f"does not parse: {e}")
        return _Outcome(remote, row, status="quarantined", reason=row["reason"])
    return _Outcome(remote, row, parsed, status="downloaded")


def _check_symbols(archive, req, symbols) -> list[str] | None:
    """Named symbols, upper-cased and checked against the listing; None means every symbol."""
    if symbols is None:
        return None
    wanted = [symbols] if isinstance(symbols, str) else list(symbols)
    wanted = [s.upper() for s in wanted]
    listed = archive.symbols(req.market, req.data_type)   # one listing, not one per symbol
    known = set(listed)
    for s in wanted:
        if s not in known:
            close = difflib.get_close_matches(s, listed, n=5)
            raise ValueError(f"symbol {s!r} is not in the archive for {req.table}"
                             f"{'; close matches: ' + ', '.join(close) if close else ''} "
                             f"(list them with lake.archive.symbols({req.market!r}, {req.data_type!r}))")
    return wanted


def run_ingest(lake, market, data_type, symbols=None, interval=None, start=None, end=None,
               top_up=True, progress=True, today=None) -> IngestReport:
    t0 = time.perf_counter()
    req = schema.validate_request(market, data_type, interval, start, end)   # before any I/O
    report = IngestReport(req.table)
    archive, bronze, storage = lake.archive, lake.bronze, lake.storage
    wanted = _check_symbols(archive, req, symbols)
    remotes = archive.plan(req.market, req.data_type, wanted, req.interval, req.start, req.end,
                           today=today)
    syms = wanted if wanted is not None else sorted({r.key.symbol for r in remotes})
    by_symbol = defaultdict(list)
    for r in remotes:
        by_symbol[r.key.symbol].append(r)
    sch, tcol = schema.silver_schema(req.market, req.data_type), schema.time_column(req.data_type)
    file_rows, written, saved = [], 0, time.monotonic()
    bar = tqdm(total=len(remotes), unit="file", desc=req.table, disable=not progress)
    pending = None   # the previous symbol's partition rebuild, overlapping this symbol's fetches

    def finish(job):
        nonlocal written
        n, done = job.result()
        written += n
        bronze.upsert(done, write=False)

    try:
        with ThreadPoolExecutor(config.max_workers()) as pool, ThreadPoolExecutor(1) as writer:
            for symbol in sorted(by_symbol):
                group = by_symbol[symbol]
                unchanged = [r for r in group if bronze.is_unchanged(r, req.table)]
                skip = {r.key.key for r in unchanged}
                todo = [r for r in group if r.key.key not in skip]
                outcomes = []
                for out in pool.map(lambda r: _fetch_store_parse(archive, bronze, req.table, r), todo):
                    outcomes.append(out)
                    bar.update(1)
                bar.update(len(unchanged))
                if pending is not None:
                    finish(pending)
                bronze.upsert([o.row for o in outcomes if o.row is not None], write=False)
                feeds = _feeds(bronze, req.table, symbol, outcomes)
                pending = writer.submit(_rebuild, pool, storage, bronze, req.table, symbol,
                                        outcomes, feeds, sch, tcol)
                for r in unchanged:
                    prev = bronze.lookup(req.table, r)
                    note = "" if prev["status"] == STORED else f"still quarantined: {prev['reason']}"
                    file_rows.append(_file_row(r, "unchanged", prev["bytes"], prev["sha256"], note))
                for o in outcomes:
                    file_rows.append(_file_row(o.remote, o.status,
                                               o.row["bytes"] if o.row else None,
                                               o.row["sha256"] if o.row else None, o.reason))
                    if o.status != "downloaded":
                        report.errors.append(f"{o.remote.key.key}: {o.status}: {o.reason}")
                if time.monotonic() - saved > 5:     # bound what a crash can make us re-fetch
                    bronze.save([req.table])
                    saved = time.monotonic()
            if pending is not None:
                finish(pending)
    finally:
        bronze.save([req.table])
    bar.close()
    report.files = pd.DataFrame(file_rows, columns=FILE_COLUMNS)
    report.rows = {req.table: written}
    if not remotes:
        report.notes.append(f"the archive lists no {req.table} files for {syms} in "
                            f"{req.start or 'the beginning'} … {req.end or 'today'}")
    if top_up:
        report.notes.append("REST top-up is not available yet: only archive files were ingested "
                            "(days the archive lacks stay missing)")
    report.gaps = _gaps(lake, req, syms)
    report.seconds = time.perf_counter() - t0
    return report


def _file_row(remote, status, nbytes, sha, reason) -> dict:
    k = remote.key
    return {"key": k.key, "symbol": k.symbol, "period": k.period, "cadence": k.cadence,
            "status": status, "bytes": nbytes, "sha256": sha, "reason": reason or ""}


def _feeds(bronze: Bronze, table: str, symbol: str, outcomes) -> list[dict]:
    """Manifest rows of every stored file feeding a month partition of `symbol` that must be
    rebuilt: touched by a new file now, or left unfinished by an earlier run."""
    fresh = {o.remote.key.key for o in outcomes if o.table is not None}
    stored = [r for r in bronze.symbol_rows(table, symbol) if r["status"] == STORED]
    months = {r["month"] for r in stored if r["key"] in fresh or not r["in_silver"]}
    return [r for r in stored if r["month"] in months]


def _rebuild(pool, storage, bronze: Bronze, table: str, symbol: str, outcomes, feeds, sch,
             tcol) -> tuple[int, list[dict]]:
    """Rebuild the month partitions `feeds` touch from all their files; returns rows written
    and the manifest rows to mark as in silver."""
    fresh = {o.remote.key.key: o.table for o in outcomes if o.table is not None}

    def load(row):
        if row["key"] in fresh:
            return row["month"], fresh[row["key"]]
        return row["month"], parse_file(bronze.read(row["key"]), parse_archive_key(row["key"]))

    parts = defaultdict(list)
    for month, t in pool.map(load, feeds):
        parts[month].append(t)
    written = sum(silver.write_partition(storage, table, symbol, month, silver.merge(ts, tcol, sch))
                  for month, ts in sorted(parts.items()))
    return written, [{**r, "in_silver": True} for r in feeds]


def _gaps(lake, req, syms) -> pd.DataFrame:
    if req.data_type not in schema.KLINE_TYPES or req.interval == "1mo" or req.table not in lake.silver:
        return IngestReport(req.table).gaps
    t = lake.silver[req.table]
    present = [s for s in syms if s in set(t.symbols)]
    if not present:
        return IngestReport(req.table).gaps
    return t.gaps(present, req.start, req.end)
