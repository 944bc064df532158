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


def _resolve_symbols(archive, req, symbols) -> list[str]:
    listed = archive.symbols(req.market, req.data_type, req.interval)
    if symbols is None:
        return list(listed)
    wanted = [symbols] if isinstance(symbols, str) else list(symbols)
    wanted = [s.upper() for s in wanted]
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
    syms = _resolve_symbols(archive, req, symbols)
    remotes = archive.plan(req.market, req.data_type, syms, req.interval, req.start, req.end,
                           today=today)
    by_symbol = defaultdict(list)
    for r in remotes:
        by_symbol[r.key.symbol].append(r)
    sch, tcol = schema.silver_schema(req.market, req.data_type), schema.time_column(req.data_type)
    file_rows, written = [], 0
    bar = tqdm(total=len(remotes), unit="file", desc=req.table, disable=not progress)
    with ThreadPoolExecutor(config.max_workers()) as pool:
        for symbol in sorted(by_symbol):
            group = by_symbol[symbol]
            unchanged = [r for r in group if bronze.is_unchanged(r)]
            skip = {r.key.key for r in unchanged}
            todo = [r for r in group if r.key.key not in skip]
            outcomes = []
            for out in pool.map(lambda r: _fetch_store_parse(archive, bronze, req.table, r), todo):
                outcomes.append(out)
                bar.update(1)
            bar.update(len(unchanged))
            bronze.upsert([o.row for o in outcomes if o.row is not None])
            written += _rebuild(pool, storage, bronze, req.table, symbol, outcomes, sch, tcol)
            m = bronze.manifest().set_index("key")
            for r in unchanged:
                prev = m.loc[r.key.key]
                note = "" if prev["status"] == STORED else f"still quarantined: {prev['reason']}"
                file_rows.append(_file_row(r, "unchanged", prev["bytes"], prev["sha256"], note))
            for o in outcomes:
                file_rows.append(_file_row(o.remote, o.status,
                                           o.row["bytes"] if o.row else None,
                                           o.row["sha256"] if o.row else None, o.reason))
                if o.status != "downloaded":
                    report.errors.append(f"{o.remote.key.key}: {o.status}: {o.reason}")
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


def _rebuild(pool, storage, bronze: Bronze, table: str, symbol: str, outcomes, sch, tcol) -> int:
    """Rebuild every month partition of `symbol` touched by a new file or left unfinished by an
    earlier run, from all the bronze files that feed it. Returns rows written."""
    fresh = {o.remote.key.key: o.table for o in outcomes if o.table is not None}
    m = bronze.files(table=table, symbol=symbol, status=STORED)
    months = set(m.loc[m["key"].isin(fresh) | ~m["in_silver"].fillna(False).astype(bool), "month"])
    if not months:
        return 0
    feeds = m[m["month"].isin(months)]

    def load(row):
        if row.key in fresh:
            return row.month, fresh[row.key]
        return row.month, parse_file(bronze.read(row.key), parse_archive_key(row.key))

    parts = defaultdict(list)
    for month, t in pool.map(load, list(feeds.itertuples(index=False))):
        parts[month].append(t)
    written = 0
    for month in sorted(months):
        written += silver.write_partition(storage, table, symbol, month,
                                          silver.merge(parts[month], tcol, sch))
    done = feeds.assign(in_silver=True).to_dict("records")
    bronze.upsert(done)
    return written


def _gaps(lake, req, syms) -> pd.DataFrame:
    if req.data_type not in schema.KLINE_TYPES or req.interval == "1mo" or req.table not in lake.silver:
        return IngestReport(req.table).gaps
    t = lake.silver[req.table]
    present = [s for s in syms if s in set(t.symbols)]
    if not present:
        return IngestReport(req.table).gaps
    return t.gaps(present, req.start, req.end)
