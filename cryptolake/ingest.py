"""The ingest pipeline: plan -> fetch + verify -> bronze -> parse -> merge -> silver partitions.

Work is done symbol by symbol (bounded memory): the pool fetches, verifies, stores and
inflates one symbol's files while two parser threads read the symbols before it (a symbol's
CSVs together, `parse_batch`); symbols gather into a batch whose touched month partitions are
each rebuilt once, from every bronze file that feeds them, in one commit on the writer thread
(see docs/design.md, "Data flow of one ingest").
"""
from __future__ import annotations

import datetime as dt
import difflib
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from . import config, grid, schema, topup
from .layout import parse_archive_key
from .layers import conflicts, silver
from .layers.bronze import MISSING, QUARANTINED, STORED, Bronze
from .report import FILE_COLUMNS, IngestReport
from .sources.archive import DEFAULT_URL
from .sources.parse import ParseError, parse_file, read_zip, row_span, source_of
from .sources.parse_batch import TOGETHER_MAX_BYTES, parse_csvs, parse_zips
from .sources.stream import STREAMED_TYPES, Unsorted, iter_parse, merge_sorted
from .faults import checkpoint

_DAY_US = 86_400_000_000
PARSERS = 2            # symbols parsed at once (see run_ingest)


class _Outcome:
    __slots__ = ("remote", "row", "table", "status", "reason", "csv")

    def __init__(self, remote, row=None, table=None, status="failed", reason="", csv=None):
        self.remote, self.row, self.table, self.status, self.reason = remote, row, table, status, reason
        self.csv = csv       # the inflated CSV of a stored file, until `_parse` turns it into `table`


def _fetch_store_parse(archive, bronze: Bronze, table_name: str, remote) -> _Outcome:
    """Fetch one file, keep it in bronze (or quarantine it) and inflate it; the CSV is parsed
    with the rest of its symbol's files by `_parse`."""
    if remote.key.data_type in STREAMED_TYPES:
        return _fetch_store_stream(archive, bronze, table_name, remote)
    fetched = archive.fetch(remote)
    checkpoint("fetch")
    if fetched.data is None:
        return _Outcome(remote, status="failed", reason=fetched.reason or "download failed")
    row = bronze.store(fetched, table_name)   # verified -> bronze; anything else -> quarantine
    if row["status"] == QUARANTINED:
        return _Outcome(remote, row, status="quarantined", reason=row["reason"])
    try:
        csv = read_zip(fetched.data)
    except ParseError as e:
        return _unparsed(bronze, _Outcome(remote, row), f"{remote.key.key}: {e}")
    return _Outcome(remote, row, status="downloaded", csv=csv)


def _unparsed(bronze: Bronze, o: _Outcome, why) -> _Outcome:
    o.row = bronze.quarantine(o.row, f"does not parse: {why}")
    o.status, o.reason, o.table, o.csv = "quarantined", o.row["reason"], None, None
    return o


def _parse(bronze: Bronze, outcomes: list[_Outcome]) -> None:
    """Parse the inflated files among `outcomes` together (`parse_batch.parse_csvs`): each
    gets its table and manifest row span, or is quarantined with the reason it does not parse."""
    todo = [o for o in outcomes if o.csv is not None]
    for o, t in zip(todo, parse_csvs([(o.csv, o.remote.key) for o in todo])):
        if isinstance(t, ParseError):
            _unparsed(bronze, o, t)
        else:
            o.table, o.csv = t, None
            o.row = {**o.row, **row_span(t, o.remote.key.data_type)}


def _fetch_store_stream(archive, bronze: Bronze, table_name: str, remote) -> _Outcome:
    """Big files: stream to bronze while hashing; parsed later, batch by batch, straight into
    the silver commit (`_stream_months`), so no whole file or table is ever held."""
    fetched, row = bronze.store_stream(archive, remote, table_name)
    if row is None:
        return _Outcome(remote, status="failed", reason=fetched.reason or "download failed")
    if row["status"] == QUARANTINED:
        return _Outcome(remote, row, status="quarantined", reason=row["reason"])
    return _Outcome(remote, row, None, status="downloaded")


def _short_side(parsed, key) -> tuple[bool, bool]:
    """(starts late, stops early): a kline file whose rows do not reach its period's first or
    last bar."""
    if key.data_type not in schema.KLINE_TYPES or not key.interval or grid.is_calendar(key.interval):
        return False, False
    lo = int(pd.Timestamp(key.first_day, tz="UTC").value // 1000)
    hi = int(pd.Timestamp(key.last_day, tz="UTC").value // 1000) + _DAY_US - grid.step_us(key.interval)
    if not parsed.num_rows:
        return True, True
    t = parsed[schema.time_column(key.data_type)].to_numpy().astype("datetime64[us]").astype(np.int64)
    return bool(t.min() > lo), bool(t.max() < hi)


def _supplements(archive, req, symbol, outcomes, have: set, today) -> tuple[list, list[str]]:
    """Files that fill what a short file leaves out: the daily files of the days a monthly
    file does not reach, or the monthly file of a month whose daily file stops early. Returns
    (remote files to fetch, notes naming each short file as partial_file)."""
    listing: dict[str, list] = {}

    def listed(cadence):
        if cadence not in listing:
            listing[cadence] = archive.files(req.market, req.data_type, symbol, req.interval,
                                             cadence=cadence)
        return listing[cadence]

    extra, notes = {}, []
    for o in outcomes:
        if o.table is None:
            continue
        k = o.remote.key
        late, early = _short_side(o.table, k)
        if not (late or early):
            continue
        span = row_span(o.table, k.data_type)
        notes.append(f"{k.key}: partial_file (rows {span['first_time']} … {span['last_time']} "
                     f"of {k.first_day} … {k.last_day})")
        if k.cadence == "monthly":
            first = span["first_time"].date() if span["first_time"] else k.last_day
            last = span["last_time"].date() if span["last_time"] else k.first_day
            for f in listed("daily"):
                d = f.key.first_day
                if k.first_day <= d <= k.last_day and (d <= first or d >= last) \
                        and (req.start is None or d >= req.start) and (req.end is None or d <= req.end):
                    extra.setdefault(f.key.key, f)
        else:
            for f in listed("monthly"):
                if f.key.period == k.month and f.key.last_day < today:
                    extra.setdefault(f.key.key, f)
    return [f for key, f in sorted(extra.items()) if key not in have], notes


def _rest_source(lake, req, top_up: bool, report: IngestReport):
    """The REST source to top up from, or None (with a note saying why)."""
    if not top_up:
        return None
    if req.data_type not in topup.REST_TYPES:
        report.notes.append(f"REST top-up covers klines and funding only, not {req.data_type}")
        return None
    if lake.rest is not None:
        return lake.rest
    if getattr(lake.archive, "url", None) == DEFAULT_URL and not lake.archive.storage_options.get("endpoint_url"):
        from .sources.rest import BinanceREST
        return BinanceREST()                   # the live archive: top up from the live API
    report.notes.append("no REST source: pass rest=cl.BinanceREST(...) to cl.Lake to fill the "
                        "days this archive lacks")
    return None


def _check_symbols(archive, req, symbols, allow_unlisted: bool = False) -> list[str] | None:
    """Named symbols, upper-cased and checked against the listing; None means every symbol.
    With a REST source a symbol the archive does not list yet is allowed (REST may know it)."""
    if symbols is None:
        return None
    wanted = [symbols] if isinstance(symbols, str) else list(symbols)
    wanted = [s.upper() for s in wanted]
    listed = archive.symbols(req.market, req.data_type)   # one listing, not one per symbol
    known = set(listed)
    for s in wanted:
        if s not in known and not allow_unlisted:
            close = difflib.get_close_matches(s, listed, n=5)
            raise ValueError(f"symbol {s!r} is not in the archive for {req.table}"
                             f"{'; close matches: ' + ', '.join(close) if close else ''} "
                             f"(list them with lake.archive.symbols({req.market!r}, {req.data_type!r}))")
    return wanted


def run_ingest(lake, market, data_type, symbols=None, interval=None, start=None, end=None,
               top_up=True, merge="archive_first", progress=True, today=None) -> IngestReport:
    t0 = time.perf_counter()
    req = schema.validate_request(market, data_type, interval, start, end)   # before any I/O
    silver.source_ranks(merge)                                                # a known strategy
    report = IngestReport(req.table)
    lake._check_writable()                                                    # pinned or old layout
    archive, bronze, storage = lake.archive, lake.bronze, lake.storage
    rest = _rest_source(lake, req, top_up, report)
    wanted = _check_symbols(archive, req, symbols, allow_unlisted=rest is not None)
    plan = archive.plan_detail(req.market, req.data_type, wanted, req.interval, req.start, req.end,
                               today=today)
    remotes = plan.files
    today = schema._as_date(today, "today") or dt.datetime.now(dt.timezone.utc).date()
    syms = wanted if wanted is not None else sorted({r.key.symbol for r in remotes} | set(plan.holes))
    _record_holes(bronze, req.table, plan.holes, report)
    by_symbol = defaultdict(list)
    for r in remotes:
        by_symbol[r.key.symbol].append(r)
    if rest is not None:
        for sym in syms:
            by_symbol.setdefault(sym, [])
    found_conflicts: list[dict] = []
    entries, written = [], 0      # file rows (dicts) and outcomes (read once their commit ran)
    bar = tqdm(total=len(remotes), unit="file", desc=req.table, disable=not progress)
    pending = None   # the previous batch's commits, overlapping this batch's fetches
    batch: list[tuple[str, list]] = []    # symbols fetched, not yet handed to the writer
    batch_rows, cap = 0, commit_rows()
    ahead = None     # the next symbol's fetches, started before this symbol's are collected
    note = (f"ingest {req.table} {req.start or 'first file'}..{req.end or 'today'} "
            f"{uuid.uuid4().hex[:8]} at {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}")

    def finish(job):
        nonlocal written
        written += job.result()

    def launch(symbol):
        """Start fetching one symbol's changed files: (its files, the unchanged ones, futures)."""
        group = by_symbol[symbol]
        unchanged = [r for r in group if bronze.is_unchanged(r, req.table)
                     and not _checksum_corrected(archive, bronze, req.table, r)]
        skip = {r.key.key for r in unchanged}
        jobs = [pool.submit(_fetch_store_parse, archive, bronze, req.table, r)
                for r in group if r.key.key not in skip]
        return group, unchanged, jobs

    def flush():
        """Hand the batch to the writer (after the previous batch's commits finished)."""
        nonlocal pending, batch, batch_rows
        if not batch:
            return
        if pending is not None:
            job, pending = pending, None
            finish(job)
        pending = writer.submit(commit_symbols, pool, storage, bronze, req, batch, note, merge,
                                found_conflicts)
        batch, batch_rows = [], 0

    def collect(jobs) -> tuple[list, bool]:
        """One symbol's fetched files, in order, and whether it is a long history (parsed as
        it comes, TOGETHER_MAX_BYTES of CSV at a time)."""
        outcomes, held, long = [], 0, False
        for job in jobs:
            out = job.result()
            outcomes.append(out)
            bar.update(1)
            held += len(out.csv) if out.csv is not None else 0
            if held >= TOGETHER_MAX_BYTES:
                _parse(bronze, outcomes)
                held, long = 0, True
        return outcomes, long

    def settle(symbol, group, unchanged, outcomes, parsing):
        """A parsed symbol's supplements and REST days, then into the batch."""
        nonlocal batch_rows
        parsing.result()
        have = {r.key.key for r in group} | {k for k, r in bronze.rows(req.table).get(symbol, {}).items()
                                             if r["status"] == STORED}
        more, notes = _supplements(archive, req, symbol, outcomes, have, today)
        report.notes += notes
        if more:
            bar.total += len(more)
            for out in pool.map(lambda r: _fetch_store_parse(archive, bronze, req.table, r), more):
                outcomes.append(out)
                bar.update(1)
            _parse(bronze, outcomes)          # the supplements (the rest are parsed)
        if rest is not None:
            days = topup.days_to_fetch(req, plan, symbol, today, bronze.rows(req.table).get(symbol, {}))
            if days:
                got, errs, rejected = topup.fetch(rest, bronze, req, symbol, days, _Outcome)
                outcomes += got
                report.errors += errs
                report.rejected += rejected
                report.errors += [f"REST {r['page']} row {r['index']}: {r['reason']}" for r in rejected]
        batch.append((symbol, outcomes))
        batch_rows += _rows_to_write(bronze, req.table, symbol, outcomes)
        # streamed types: one symbol a commit; the others when the batch is full (and
        # at the end). Each commit has a fixed cost (manifest, Delta log, catalog) of
        # ~0.05-0.1 s of CPU: committing whenever the writer fell idle made 3 commits
        # of the month x 10 symbols ingest and cost it ~10% more than one.
        if req.data_type in STREAMED_TYPES or batch_rows >= cap:
            flush()
        for r in unchanged:
            prev = bronze.lookup(req.table, r)
            msg = "" if prev["status"] == STORED else f"still quarantined: {prev['reason']}"
            entries.append(_file_row(r, "unchanged", prev["bytes"], prev["sha256"], msg))
        entries.extend(outcomes)  # a streamed file found not to parse is quarantined by its commit

    local = storage.is_local and getattr(archive, "is_local", False)
    inflight: deque = deque()     # symbols fetched and parsing (two at once), not yet settled
    with ThreadPoolExecutor(config.max_workers(local)) as pool, ThreadPoolExecutor(1) as writer, \
            ThreadPoolExecutor(PARSERS) as parser:
        try:
            order = sorted(by_symbol)
            ahead = launch(order[0]) if order else None
            for i, symbol in enumerate(order):
                group, unchanged, jobs = ahead
                # the next symbol's files queue behind this one's: no thread idles at its tail
                ahead = launch(order[i + 1]) if i + 1 < len(order) else None
                outcomes, long = collect(jobs)
                bar.update(len(unchanged))
                # parsed while the next symbol's files arrive and the symbol before parses:
                # one symbol's Python steps run beside the other's Polars read. A long
                # history is settled at once: memory holds one such symbol, as before
                inflight.append((symbol, group, unchanged, outcomes,
                                 parser.submit(_parse, bronze, outcomes)))
                while inflight and (len(inflight) >= PARSERS or long):
                    settle(*inflight.popleft())
            while inflight:
                settle(*inflight.popleft())
            flush()
            if pending is not None:
                job, pending = pending, None
                finish(job)
            # the gap report reads silver and the manifest rows in memory, not the "in silver"
            # marks: it runs while the last manifest commit below writes them
            gaps = writer.submit(_gaps, lake, req, syms)
        finally:
            for job in (ahead[2] if ahead else ()):
                job.cancel()                 # interrupted: do not start the next symbol's files
            if pending is not None:
                finish(pending)
            for job in (x[4] for x in inflight):
                job.cancel()
            for outcomes in [o for _, o in batch] + [x[3] for x in inflight]:
                # interrupted before its commit: the stored files are kept in the manifest and
                # the next run finishes them
                bronze.upsert([o.row for o in outcomes if o.row is not None], write=False)
            bronze.save([req.table], note=note)      # last marks, and holes of symbols with no files
    bar.close()
    file_rows = []
    for o in entries:
        if isinstance(o, dict):
            file_rows.append(o)
            continue
        file_rows.append(_file_row(o.remote, o.status, o.row["bytes"] if o.row else None,
                                   o.row["sha256"] if o.row else None, o.reason))
        if o.status != "downloaded":
            report.errors.append(f"{o.remote.key.key}: {o.status}: {o.reason}")
    report.files = pd.DataFrame(file_rows, columns=FILE_COLUMNS)
    report.rows = {req.table: written}
    report.conflicts = conflicts.frame(found_conflicts)
    if not remotes:
        report.notes.append(f"the archive lists no {req.table} files for {syms} in "
                            f"{req.start or 'the beginning'} … {req.end or 'today'}")
    report.gaps = gaps.result()
    report.seconds = time.perf_counter() - t0
    return report


def _checksum_corrected(archive, bronze: Bronze, table: str, remote) -> bool:
    """A file quarantined because its .CHECKSUM disagreed whose .CHECKSUM now states the
    stored bytes' hash (Binance corrected the .CHECKSUM, not the zip): fetch it again."""
    row = bronze.lookup(table, remote)
    if row["status"] != QUARANTINED or not row["sha256"] or not (
            row["reason"] or "").startswith(("sha256 mismatch", "malformed .CHECKSUM", ".CHECKSUM names")):
        return False
    return archive.published_sha256(remote) == row["sha256"]


def _record_holes(bronze: Bronze, table: str, holes: dict, report: IngestReport) -> None:
    """Manifest rows for files the archive should have but does not list (a stored or
    quarantined row for the same key is kept: the file may have been withdrawn since)."""
    rows = []
    for sym, keys in holes.items():
        known = bronze.rows(table).get(sym, {})
        rows += [Bronze.missing_row(k, table) for k in keys
                 if k.key not in known or known[k.key]["status"] == MISSING]
    if rows:
        bronze.upsert(rows, write=False)
        n = sum(len(v) for v in holes.values())
        report.notes.append(f"the archive lists no file for {n} period(s) inside the symbols' "
                            f"listed life and the range; their bars are reported as missing_file gaps")


def _file_row(remote, status, nbytes, sha, reason) -> dict:
    k = remote.key
    return {"key": k.key, "symbol": k.symbol, "period": k.period, "cadence": k.cadence,
            "status": status, "bytes": nbytes, "sha256": sha, "reason": reason or ""}


def commit_rows() -> int:
    """Rows one ingest commit writes at most (several symbols share a commit up to this):
    4 x `config.batch_rows()`, 1,000,000 by default."""
    return 4 * config.batch_rows()


def _rows_to_write(bronze: Bronze, table: str, symbol: str, outcomes) -> int:
    """About how many rows committing `outcomes` rewrites: the new files' rows plus those of
    the stored files that share their months (from the manifest; size / 10 when unknown)."""
    fresh = {o.remote.key.key: o.table.num_rows for o in outcomes if o.table is not None}
    known = bronze.rows(table).get(symbol, {})
    months = {o.row["month"] for o in outcomes if o.table is not None and o.row is not None}
    months |= {r["month"] for r in known.values() if r["status"] == STORED and not r["in_silver"]}
    n = sum(fresh.values())
    for k, r in known.items():
        if k not in fresh and r["status"] == STORED and r["month"] in months:
            n += r["rows"] if r.get("rows") is not None else (r.get("bytes") or 0) // 10
    return n


def commit_symbol(pool, storage, bronze: Bronze, req, symbol: str, outcomes, note: str = "",
                  merge: str = "archive_first", found: list | None = None) -> int:
    """`commit_symbols` of one symbol."""
    return commit_symbols(pool, storage, bronze, req, [(symbol, outcomes)], note, merge, found)


def commit_symbols(pool, storage, bronze: Bronze, req, batch: list[tuple[str, list]],
                   note: str = "", merge: str = "archive_first", found: list | None = None) -> int:
    """Commit the work of a batch of symbols (`batch`: (symbol, outcomes) pairs): (1) their new
    manifest rows in ONE manifest commit, (2) ONE silver commit replacing every month
    partition they touch (or an earlier run left unfinished), each rebuilt from all of that
    month's stored bronze files and streamed symbol by symbol into the commit, (3) ONE
    catalog append, (4) the rows marked in silver (committed with the next batch's manifest
    rows, or by the caller's final `save`). Streamed types (one symbol a batch) commit month
    by month batch by batch (`_commit_streamed`).

    New files reach the manifest before silver reads it, and the silver snapshot is taken
    before the manifest is re-read, so a concurrent writer's files are either seen here or
    make our commit conflict and be redone on fresh state. A crash before (2) commits leaves
    the batch's files in bronze and the manifest (not in silver): the next run rebuilds their
    months without fetching them again. Returns rows written."""
    table = req.table
    sch, tcol = schema.silver_schema(req.market, req.data_type), schema.time_column(req.data_type)
    outcomes = [o for _, outs in batch for o in outs]
    # one manifest commit: the batch's new files + the previous batch's "in silver" marks
    bronze.upsert([o.row for o in outcomes if o.row is not None], write=False)
    bronze.save([table], note=note)
    fresh = {o.remote.key.key: (o.row["sha256"], o.table) for o in outcomes if o.table is not None}
    if req.data_type in STREAMED_TYPES:
        written = 0
        for symbol, outs in batch:
            fed: list[dict] = []
            written += _commit_streamed(storage, bronze, req, symbol, outs, fresh, note, merge, fed)
            if fed:
                bronze.upsert([{**r, "in_silver": True} for r in fed], write=False)
        return written

    symbols = [s for s, _ in batch]
    fed: list[dict] = []
    seen: dict[str, list[dict]] = {}

    def build():
        now = bronze.refresh_symbols(table, symbols)
        plan = []
        for symbol in symbols:
            stored = [r for r in now[symbol] if r["status"] == STORED]
            months = {r["month"] for r in stored if r["key"] in fresh or not r["in_silver"]}
            if months:
                plan.append((symbol, sorted(months), [r for r in stored if r["month"] in months]))
        fed[:] = [r for _, _, feeds in plan for r in feeds]
        seen.clear()                       # a retried attempt finds them again

        def parts():
            for symbol, _, feeds in plan:  # one symbol's months held at a time
                got = _load_months(pool, bronze, feeds, fresh, tcol, sch, req, merge,
                                   seen.setdefault(symbol, []))
                for month, t in got.items():
                    yield (symbol, month), t
        return [(symbol, m) for symbol, months, _ in plan for m in months], parts()

    written, _ = silver.stream_keys(storage, "silver", table, sch, tcol, req.interval, build, note)
    rows = [{"table": table, "symbol": symbol, **c} for symbol, cs in seen.items() for c in cs]
    if rows:
        conflicts.record(storage, rows, merge)
        if found is not None:
            found.extend(rows)
    if fed:      # committed with the next batch's rows, or at the end of the run
        bronze.upsert([{**r, "in_silver": True} for r in fed], write=False)
    return written


def _load_months(pool, bronze: Bronze, feeds, fresh, tcol, sch, req, merge="archive_first",
                 found: list | None = None) -> dict:
    """{month: merged rows} of every month `feeds` (manifest rows) cover, parsed from bronze
    (or taken from this run's freshly parsed files), merged by the strategy `merge`. Under
    archive_first and fail, a REST day an archive file now covers keeps only what the archive
    says (its rows still count for conflicts)."""
    from .sources.rest import parse_pages

    def load(row):
        got = fresh.get(row["key"])
        if got is not None and got[0] == row["sha256"]:
            return row, got[1]
        data = bronze.read(row["key"])
        if row["cadence"] == "rest":
            return row, parse_pages(req.market, req.data_type, [(row["key"], data)],
                                    now=row["fetched_at"])
        return row, data           # archive zip bytes: parsed below, together

    loaded = list(pool.map(load, feeds))
    zips = [(i, row) for i, (row, t) in enumerate(loaded) if isinstance(t, (bytes, bytearray))]
    for (i, row), t in zip(zips, parse_zips([(loaded[i][1], parse_archive_key(row["key"]))
                                             for i, row in zips])):
        if isinstance(t, ParseError):
            raise t
        loaded[i] = (row, t)
    parts = defaultdict(list)
    for row, t in loaded:
        parts[row["month"]].append((row, t))
    out = {}
    for month, items in sorted(parts.items()):
        tables = [t for _, t in items]
        fetched = [r["fetched_at"] for r, _ in items]
        merged = silver.merge(tables, tcol, sch, merge, fetched, found, schema.natural_key(req.data_type))
        if merge in ("archive_first", "fail"):
            merged = _drop_superseded_rest(merged, [r for r, _ in items], tcol)
        out[month] = merged
    return out


class _BadFile(Exception):
    """A stored file that fails to parse part-way through a streamed commit."""

    def __init__(self, row: dict, reason: str):
        super().__init__(reason)
        self.row, self.reason = row, reason


def _commit_streamed(storage, bronze: Bronze, req, symbol: str, outcomes, fresh, note: str,
                     merge: str, fed: list) -> int:
    """`commit_symbol` for the big types (aggTrades, trades, bookTicker): each touched month
    is streamed from its bronze files (batches of `config.batch_rows()`), merged across files
    on (time, id) by the strategy, into ONE Delta commit; nothing whole is held. A file that
    does not parse is quarantined and the commit redone without it; a file whose rows go back
    in time across batches (gotcha 9 at scale) has its month merged in memory instead."""
    table = req.table
    sch, tcol = schema.silver_schema(req.market, req.data_type), schema.time_column(req.data_type)
    spans: dict[str, dict] = {}
    whole: set[str] = set()

    def build():
        rows = bronze.refresh(table, symbol)
        stored = [r for r in rows if r["status"] == STORED]
        months = sorted({r["month"] for r in stored if r["key"] in fresh or not r["in_silver"]})
        feeds = [r for r in stored if r["month"] in months]
        fed[:] = feeds
        spans.clear()
        return months, _stream_months(bronze, feeds, months, tcol, req, merge, spans, whole)

    while True:
        try:
            written, _ = silver.stream_partitions(storage, "silver", table, symbol, sch, tcol,
                                                  req.interval, build, note)
            break
        except _BadFile as bad:
            q = bronze.quarantine(bad.row, f"does not parse: {bad.reason}")
            bronze.upsert([q], write=False)
            for o in outcomes:
                if o.remote.key.key == q["key"]:
                    o.row, o.status, o.reason = q, "quarantined", q["reason"]
        except Unsorted as e:
            whole.add(e.args[2])
    fed[:] = [{**r, **spans[r["key"]]} if r["key"] in spans else r for r in fed]
    return written


def _stream_months(bronze: Bronze, feeds, months, tcol, req, merge, spans, whole):
    """(month, rows) batches of every month in `months`, each sorted and deduplicated."""
    key_cols = schema.natural_key(req.data_type)
    by_month = defaultdict(list)
    for r in feeds:
        by_month[r["month"]].append(r)
    for month in months:
        items = by_month.get(month, [])
        if month in whole:
            yield from _whole_month(bronze, month, items, tcol, req, merge)
            continue
        if merge == "latest":
            items = sorted(items, key=lambda r: r["fetched_at"] or dt.datetime.min.replace(tzinfo=dt.timezone.utc),
                           reverse=True)
        else:
            ranks = silver.source_ranks(merge)
            items = sorted(items, key=lambda r: ranks[source_of(parse_archive_key(r["key"]))])
        try:
            for t in merge_sorted([_file_stream(bronze, r, tcol, spans) for r in items], tcol, key_cols):
                yield month, t
        except Unsorted as e:
            raise Unsorted(str(e), e.args[1], month) from None


def _file_stream(bronze: Bronze, row: dict, tcol: str, spans: dict):
    """One stored file's batches (its rows, first and last time noted in `spans`)."""
    key = parse_archive_key(row["key"])
    rows, lo, hi = 0, None, None
    try:
        with bronze.open(row["key"]) as fh:
            for t in iter_parse(fh, key, config.batch_rows()):
                if t.num_rows:
                    mm = pc.min_max(t[tcol])
                    a, b = mm["min"].as_py(), mm["max"].as_py()
                    lo, hi = (a if lo is None else min(lo, a)), (b if hi is None else max(hi, b))
                    rows += t.num_rows
                yield t
    except ParseError as e:
        raise _BadFile(row, str(e)) from None
    spans[row["key"]] = {"rows": rows, "first_time": lo, "last_time": hi}


def _whole_month(bronze: Bronze, month, items, tcol, req, merge):
    """A month whose files go back in time across batches: merged in memory (as small types)."""
    tables, fetched = [], []
    for r in items:
        try:
            tables.append(parse_file(bronze.read(r["key"]), parse_archive_key(r["key"])))
        except ParseError as e:
            raise _BadFile(r, str(e)) from None
        fetched.append(r["fetched_at"])
    sch = schema.silver_schema(req.market, req.data_type)
    merged = silver.merge(tables, tcol, sch, merge, fetched, None, schema.natural_key(req.data_type))
    for i in range(0, merged.num_rows, config.batch_rows()):
        yield month, merged.slice(i, config.batch_rows())


def _drop_superseded_rest(t, rows, tcol):
    """REST rows on days an archive file covers (the archive published the day since)."""
    if not t.num_rows or not pc.any(pc.equal(t["source"], "rest")).as_py():
        return t                  # no REST row (the usual case): no per-row work at all
    covered = set()
    for r in rows:
        k = parse_archive_key(r["key"]) if r["cadence"] != "rest" else None
        if k is not None:
            covered.update(range((k.first_day - dt.date(1970, 1, 1)).days,
                                 (k.last_day - dt.date(1970, 1, 1)).days + 1))
    if not covered or not t.num_rows:
        return t
    day = t[tcol].to_numpy().astype("datetime64[D]").astype(np.int64)
    rest_rows = (t["source"].to_numpy(zero_copy_only=False) == "rest") & np.isin(day, list(covered))
    return t.filter(pa.array(~rest_rows)) if rest_rows.any() else t


def rebuild_table(lake, table: str, progress: bool = True) -> int:
    """Rebuild every partition of a silver table from bronze (migration, repair)."""
    market, data_type, interval = schema.parse_table_name(table)
    req = schema.validate_request(market, data_type, interval)
    rows = lake.bronze.symbol_rows_all(table)
    lake.bronze.upsert([{**r, "in_silver": False} for r in rows], write=False)
    written = 0
    with ThreadPoolExecutor(config.max_workers(lake.storage.is_local)) as pool:
        for symbol in tqdm(sorted({r["symbol"] for r in rows}), desc=f"rebuild {table}",
                           disable=not progress):
            written += commit_symbols(pool, lake.storage, lake.bronze, req, [(symbol, [])],
                                      note=f"rebuild {table} from bronze")
    lake.bronze.save([table], note=f"rebuild {table} from bronze")
    return written


def _gaps(lake, req, syms) -> pd.DataFrame:
    """The gaps of the ingested symbols inside the asked range, as `Table.gaps` sees them."""
    if not syms:
        return IngestReport(req.table).gaps
    from .query import Table     # the table may hold no rows at all: gaps come from the spans
    return Table(lake.storage, "silver", req.table, lake._file_spans).gaps(syms, req.start, req.end)
