"""The ingest pipeline: plan -> fetch + verify -> bronze -> parse -> merge -> silver partitions.

Work is done symbol by symbol (bounded memory); inside a symbol, files are fetched, stored
and parsed concurrently (zlib, hashlib and pyarrow's CSV reader release the GIL), then each
touched month partition is rebuilt once from every bronze file that feeds it.
"""
from __future__ import annotations

import datetime as dt
import difflib
import time
import uuid
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
    lake._check_writable()                                                    # pinned or old layout
    archive, bronze, storage = lake.archive, lake.bronze, lake.storage
    wanted = _check_symbols(archive, req, symbols)
    remotes = archive.plan(req.market, req.data_type, wanted, req.interval, req.start, req.end,
                           today=today)
    syms = wanted if wanted is not None else sorted({r.key.symbol for r in remotes})
    by_symbol = defaultdict(list)
    for r in remotes:
        by_symbol[r.key.symbol].append(r)
    file_rows, written = [], 0
    bar = tqdm(total=len(remotes), unit="file", desc=req.table, disable=not progress)
    pending = None   # the previous symbol's commits, overlapping this symbol's fetches
    note = (f"ingest {req.table} {req.start or 'first file'}..{req.end or 'today'} "
            f"{uuid.uuid4().hex[:8]} at {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}")

    def finish(job):
        nonlocal written
        written += job.result()

    with ThreadPoolExecutor(config.max_workers()) as pool, ThreadPoolExecutor(1) as writer:
        try:
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
                    pending = None
                pending = writer.submit(commit_symbol, pool, storage, bronze, req, symbol,
                                        outcomes, note)
                for r in unchanged:
                    prev = bronze.lookup(req.table, r)
                    msg = "" if prev["status"] == STORED else f"still quarantined: {prev['reason']}"
                    file_rows.append(_file_row(r, "unchanged", prev["bytes"], prev["sha256"], msg))
                for o in outcomes:
                    file_rows.append(_file_row(o.remote, o.status,
                                               o.row["bytes"] if o.row else None,
                                               o.row["sha256"] if o.row else None, o.reason))
                    if o.status != "downloaded":
                        report.errors.append(f"{o.remote.key.key}: {o.status}: {o.reason}")
        finally:
            if pending is not None:
                finish(pending)
            bronze.save([req.table], note=note)
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


def commit_symbol(pool, storage, bronze: Bronze, req, symbol: str, outcomes, note: str = "") -> int:
    """Commit one symbol's work: (1) its new manifest rows, (2) ONE silver commit replacing
    every month partition they touch (or an earlier run left unfinished), rebuilt from all of
    that month's stored bronze files, (3) the catalog counts, (4) the rows marked in silver
    (committed with the next symbol's manifest rows, or by the caller's final `save`).

    New files reach the manifest before silver reads it, and the silver snapshot is taken
    before the manifest is re-read, so a concurrent writer's files are either seen here or
    make our commit conflict and be redone on fresh state. Returns rows written."""
    table = req.table
    sch, tcol = schema.silver_schema(req.market, req.data_type), schema.time_column(req.data_type)
    # one MERGE: this symbol's new files + the previous symbol's "in silver" marks
    bronze.upsert([o.row for o in outcomes if o.row is not None], write=False)
    bronze.save([table], note=note)
    fresh = {o.remote.key.key: (o.row["sha256"], o.table) for o in outcomes if o.table is not None}
    fed: list[dict] = []

    def build():
        rows = bronze.refresh(table, symbol)
        stored = [r for r in rows if r["status"] == STORED]
        months = {r["month"] for r in stored if r["key"] in fresh or not r["in_silver"]}
        feeds = [r for r in stored if r["month"] in months]
        fed[:] = feeds
        return _load_months(pool, bronze, feeds, fresh, tcol, sch)

    written, _ = silver.replace_partitions(storage, "silver", table, symbol, sch, tcol, req.interval,
                                           build, note)
    if fed:      # committed with the next symbol's rows, or at the end of the run
        bronze.upsert([{**r, "in_silver": True} for r in fed], write=False)
    return written


def _load_months(pool, bronze: Bronze, feeds, fresh, tcol, sch) -> dict:
    """{month: merged rows} of every month `feeds` (manifest rows) cover, parsed from bronze
    (or taken from this run's freshly parsed files)."""
    def load(row):
        got = fresh.get(row["key"])
        if got is not None and got[0] == row["sha256"]:
            return row["month"], got[1]
        return row["month"], parse_file(bronze.read(row["key"]), parse_archive_key(row["key"]))

    parts = defaultdict(list)
    for month, t in pool.map(load, feeds):
        parts[month].append(t)
    return {m: silver.merge(ts, tcol, sch) for m, ts in sorted(parts.items())}


def rebuild_table(lake, table: str, progress: bool = True) -> int:
    """Rebuild every partition of a silver table from bronze (migration, repair)."""
    market, data_type, interval = schema.parse_table_name(table)
    req = schema.validate_request(market, data_type, interval)
    rows = lake.bronze.symbol_rows_all(table)
    lake.bronze.upsert([{**r, "in_silver": False} for r in rows], write=False)
    written = 0
    with ThreadPoolExecutor(config.max_workers()) as pool:
        for symbol in tqdm(sorted({r["symbol"] for r in rows}), desc=f"rebuild {table}",
                           disable=not progress):
            written += commit_symbol(pool, lake.storage, lake.bronze, req, symbol, [],
                                     note=f"rebuild {table} from bronze")
    lake.bronze.save([table], note=f"rebuild {table} from bronze")
    return written


def _gaps(lake, req, syms) -> pd.DataFrame:
    if req.data_type not in schema.KLINE_TYPES or req.interval == "1mo" or req.table not in lake.silver:
        return IngestReport(req.table).gaps
    t = lake.silver[req.table]
    present = [s for s in syms if s in set(t.symbols)]
    if not present:
        return IngestReport(req.table).gaps
    return t.gaps(present, req.start, req.end)
