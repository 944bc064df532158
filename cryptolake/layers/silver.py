"""Silver (and gold): typed, deduplicated rows, archive and REST merged, in Delta tables
partitioned by `symbol` then `month`.

A partition is a pure function of the bronze files that feed it: rebuilding it re-merges all
of them, so a re-run duplicates nothing and a republished file simply replaces its rows.
Where sources overlap, one row wins per instant by the ingest's merge strategy (default
archive_first: archive_monthly > archive_daily > rest); archive/REST disagreements are listed.
"""
from __future__ import annotations

from typing import Callable

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import grid, layout
from ..schema import SOURCES
from ..storage import Storage
from . import catalog
from ..faults import checkpoint

PARTITIONS = ("symbol", "month")

_PRIORITY = {s: i for i, s in enumerate(SOURCES)}


STRATEGIES = ("archive_first", "rest_first", "latest", "fail")
_ARCHIVE = ("archive_monthly", "archive_daily")


class MergeConflict(ValueError):
    """merge="fail" met rows that archive and REST disagree on; `.conflicts` lists them."""

    def __init__(self, conflicts: list[dict]):
        self.conflicts = conflicts
        first = conflicts[0]
        where = " ".join(str(first[k]) for k in ("table", "symbol") if k in first)
        super().__init__(f"{len(conflicts)} archive/REST conflict(s), e.g. {where} "
                         f"{first['key']} {first['column']}: archive "
                         f"{first['archive_value']!r} vs REST {first['rest_value']!r}; re-run with "
                         f"merge='archive_first', 'rest_first' or 'latest'")


def source_ranks(strategy: str) -> dict[str, int]:
    """Which source wins an instant two sources share (lower rank wins)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown merge strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    if strategy == "rest_first":
        return {"rest": 0, "archive_monthly": 1, "archive_daily": 2}
    return {s: i for i, s in enumerate(SOURCES)}      # archive_first, fail; latest ranks by time


def merge(tables: list[pa.Table], time_col: str, schema: pa.Schema, strategy: str = "archive_first",
          fetched: list | None = None, conflicts: list | None = None,
          key: tuple[str, ...] | None = None) -> pa.Table:
    """Concatenate, keep one row per instant, sort by time.

    Which row wins where sources share an instant: `archive_first` (archive_monthly >
    archive_daily > rest), `rest_first` (rest first), `latest` (the most recently fetched file,
    `fetched[i]` being when `tables[i]` was fetched), `fail` (as archive_first, and raise
    `MergeConflict` if archive and REST rows differ). Rows that archive and REST disagree on are
    appended to `conflicts` as dicts (key, column, archive_value, rest_value). `key`: the
    columns that identify a row (`schema.natural_key`; default the time column alone).
    """
    cols = [time_col] + [c for c in (key or ()) if c != time_col]
    keep_idx = [i for i, t in enumerate(tables) if t.num_rows]
    tables = [tables[i] for i in keep_idx]
    if not tables:
        return schema.empty_table()
    if len(tables) > 1:
        # files that do not overlap (daily files of one month): in the order of their first
        # rows, strictly increasing times mean no instant is shared, so nothing to choose
        order = sorted(range(len(tables)), key=lambda i: _first(tables[i][time_col]))
        t = pa.concat_tables([tables[i] for i in order])
    else:
        t = tables[0]
    if _strictly_increasing(t[time_col]):
        return t
    if len(tables) > 1:
        t = pa.concat_tables(tables)
    if strategy == "latest" and fetched is not None:
        order_of = sorted(range(len(tables)), key=lambda i: fetched[keep_idx[i]] or 0, reverse=True)
        rank_of_table = {i: r for r, i in enumerate(order_of)}
        prio = pa.array(np.repeat([rank_of_table[i] for i in range(len(tables))],
                                  [x.num_rows for x in tables]).astype(np.int32))
    else:
        ranks = source_ranks(strategy)
        prio = pc.index_in(t["source"], value_set=pa.array(sorted(ranks, key=ranks.get)))
    order = pc.sort_indices(t.append_column("_p", prio),
                            [(c, "ascending") for c in cols] + [("_p", "ascending")])
    t = t.take(order)
    times = t[time_col].to_numpy()
    same = np.ones(max(len(times) - 1, 0), dtype=bool)
    for c in cols:
        v = times if c == time_col else t[c].to_numpy(zero_copy_only=False)
        same &= v[1:] == v[:-1]
    keep = np.ones(len(times), dtype=bool)
    keep[1:] = ~same
    if keep.all():
        return t
    if conflicts is not None or strategy == "fail":
        found = _conflicts(t, times, keep, cols)
        if conflicts is not None:
            conflicts.extend(found)
        if strategy == "fail" and found:
            raise MergeConflict(found)
    return t.filter(pa.array(keep))


def _conflicts(t: pa.Table, times: np.ndarray, keep: np.ndarray, key_cols: list[str]) -> list[dict]:
    """Archive and REST rows on the same instant whose values differ, column by column."""
    src = t["source"].to_numpy(zero_copy_only=False)
    winners = np.flatnonzero(keep)
    group = np.cumsum(keep) - 1                      # which kept row each row shares its instant with
    cols = [c for c in t.column_names if c not in (*key_cols, "source")]
    data = {c: t[c].to_numpy(zero_copy_only=False) for c in cols}
    out = []
    for i in np.flatnonzero(~keep):
        w = winners[group[i]]
        a, b = (w, i) if src[w] in _ARCHIVE else (i, w)
        if (src[a] in _ARCHIVE) == (src[b] in _ARCHIVE):
            continue                                    # archive vs archive: not a REST conflict
        for c in cols:
            va, vb = data[c][a], data[c][b]
            same = (va == vb) or (isinstance(va, float) and isinstance(vb, float) and np.isnan(va) and np.isnan(vb))
            if not same:
                out.append({"key": times[i], "column": c, "archive_value": _py(va), "rest_value": _py(vb)})
    return out


def _py(v):
    return v.item() if hasattr(v, "item") else v


def _first(col: pa.ChunkedArray) -> int:
    """The first value of a (non-empty) integer or timestamp column, as an int."""
    return col.slice(0, 1).cast(pa.int64())[0].as_py()


def _strictly_increasing(col: pa.ChunkedArray) -> bool:
    a = col.to_numpy()
    return bool(np.all(a[1:] > a[:-1])) if len(a) > 1 else True


def data_schema(schema: pa.Schema) -> pa.Schema:
    """A layer table's Delta schema: the table's columns plus the `symbol`, `month` partitions."""
    return schema.append(pa.field("symbol", pa.string())).append(pa.field("month", pa.string()))


def _sql(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def ensure_table(storage: Storage, layer: str, table: str, schema: pa.Schema) -> None:
    """Create the (empty) Delta table of `layer.table` unless it exists (race-safe)."""
    storage.ensure_table(layout.table_dir(layer, table), data_schema(schema), list(PARTITIONS),
                         f"create {layer}.{table}")


def replace_partitions(storage: Storage, layer: str, table: str, symbol: str, schema: pa.Schema,
                       time_col: str, interval: str | None,
                       build: Callable[[], dict[str, pa.Table]], note: str = "") -> tuple[int, int | None]:
    """Replace some month partitions of one symbol in ONE Delta commit, then record their
    counts in the catalog. Returns (rows written, table version; None when nothing changed).

    `build()` returns {month: rows} (an empty table removes that month). It runs inside every
    commit attempt, after the table snapshot is taken, and must re-read whatever it depends
    on (the manifest): when another writer commits these partitions first, the attempt fails
    on the conflict and is retried on fresh state, so no writer's rows are lost.
    """
    return commit_partitions(storage, layer, table, schema, time_col, interval,
                             lambda: {(symbol, m): t for m, t in build().items()}, note)


def write_partitions(storage: Storage, layer: str, table: str, schema: pa.Schema, time_col: str,
                     interval: str | None, parts: dict[tuple[str, str], pa.Table],
                     note: str = "") -> tuple[int, int | None]:
    """Replace the given (symbol, month) partitions (any number of symbols) in ONE commit,
    with their catalog counts: the bulk writer for gold builds and generated lakes."""
    return commit_partitions(storage, layer, table, schema, time_col, interval, lambda: parts, note)


def _rows_in(dt, keys: list[tuple[str, str]]) -> int:
    """Rows the table holds now in the (symbol, month) partitions `keys` (from the Delta log)."""
    acts = pa.table(dt.get_add_actions(flatten=True))
    if not acts.num_rows:
        return 0
    pk = pc.binary_join_element_wise(acts["partition.symbol"], acts["partition.month"], "\x00")
    hit = pc.is_in(pk, pa.array([f"{s}\x00{m}" for s, m in keys]))
    return int(pc.sum(acts.filter(hit)["num_records"]).as_py() or 0)


def _few_chunks(t: pa.Table, rows: int = 65_536) -> pa.Table:
    """`t` in chunks of `rows` or more: a month merged from 30 daily files comes in 30 chunks,
    and Delta's writer pays per batch (1,440-row batches cost it ~15% more CPU and ~40% more
    time than one batch a month)."""
    if t.num_rows and t.column(0).num_chunks > max(1, t.num_rows // rows):
        return t.combine_chunks()
    return t


def _with_partition(t: pa.Table, symbol: str, month: str) -> pa.Table:
    """`t` with its partition columns `symbol` and `month` appended."""
    n = t.num_rows
    return (t.append_column("symbol", pa.repeat(pa.scalar(symbol, pa.string()), n))
            .append_column("month", pa.repeat(pa.scalar(month, pa.string()), n)))


def _predicate(keys: list[tuple[str, str]]) -> str:
    """SQL naming exactly the (symbol, month) partitions `keys`; symbols that share their set of
    months share one term."""
    by_sym: dict[str, list[str]] = {}
    for sym, month in keys:
        by_sym.setdefault(sym, []).append(month)
    by_months: dict[tuple[str, ...], list[str]] = {}
    for sym, ms in sorted(by_sym.items()):
        by_months.setdefault(tuple(sorted(set(ms))), []).append(sym)
    return " OR ".join(
        f"(symbol {'= ' + _sql(syms[0]) if len(syms) == 1 else 'IN (' + ', '.join(map(_sql, syms)) + ')'}"
        f" AND month IN ({', '.join(map(_sql, ms))}))" for ms, syms in sorted(by_months.items()))


def _overwrite(dt, data, keys: list[tuple[str, str]], removed: int, layer: str, table: str,
               note: str) -> None:
    """ONE predicate-overwrite commit of exactly the (symbol, month) partitions `keys` with
    `data` (a table or a RecordBatchReader)."""
    from deltalake import CommitProperties, write_deltalake
    pred = _predicate(keys)
    meta = {"cryptolake_note": note or f"write {layer}.{table}",
            "cryptolake_rows_removed": str(removed)}
    checkpoint("silver_commit")
    write_deltalake(dt, data, mode="overwrite", predicate=pred, partition_by=list(PARTITIONS),
                    commit_properties=CommitProperties(custom_metadata=meta),
                    writer_properties=writer_properties(data.schema))


_NEAR_UNIQUE = ("volume", "qty", "quantity", "open_interest")


def writer_properties(schema: pa.Schema):
    """Parquet settings of layer tables: snappy, and no dictionary for the columns whose
    values hardly repeat (times, ids, counts, volumes, quantities). A dictionary there is
    built and then abandoned: it costs ~40% of the write's CPU and makes files bigger."""
    from deltalake import ColumnProperties, WriterProperties
    plain = ColumnProperties(dictionary_enabled=False)
    cols = {f.name: plain for f in schema
            if pa.types.is_timestamp(f.type) or pa.types.is_integer(f.type)
            or (pa.types.is_floating(f.type) and any(w in f.name for w in _NEAR_UNIQUE))}
    return WriterProperties(compression="SNAPPY", column_properties=cols or None)


def commit_partitions(storage: Storage, layer: str, table: str, schema: pa.Schema, time_col: str,
                      interval: str | None, build: Callable[[], dict[tuple[str, str], pa.Table]],
                      note: str = "") -> tuple[int, int | None]:
    """The one write path of layer tables: a predicate overwrite of exactly the (symbol, month)
    partitions `build()` returns, retried on fresh state on conflicts, then the catalog upsert."""
    ensure_table(storage, layer, table, schema)
    rel = layout.table_dir(layer, table)
    full = data_schema(schema)
    out: dict = {}

    def attempt():
        dt = storage.open_table(rel)                  # the snapshot our commit is checked against
        parts = build()
        out.update(rows=0, version=None, parts=parts)
        if not parts:
            return
        keys = sorted(parts)
        datas = [_with_partition(_few_chunks(parts[k].select(schema.names).cast(schema)), *k) for k in keys]
        data = pa.concat_tables(datas) if datas else full.empty_table()
        removed = _rows_in(dt, keys)
        if data.num_rows == 0 and removed == 0:
            return
        _overwrite(dt, data, keys, removed, layer, table, note)
        out.update(rows=data.num_rows, version=dt.version())

    storage.commit(attempt, f"{layer}.{table}")
    checkpoint("silver_committed")
    if out["version"] is not None:
        catalog.upsert(storage, [catalog.partition_row(layer, table, sym, m, t, time_col, interval,
                                                       out["version"]) for (sym, m), t in out["parts"].items()])
    return out["rows"], out["version"]


def _prefetch(it, depth: int = 2):
    """Iterate `it` on a helper thread, `depth` items ahead: the CSV parse (pyarrow, zlib: GIL
    released) runs while Delta encodes the previous batches. Exceptions arrive in order; when
    the consumer stops early the helper stops at its next item."""
    import queue
    import threading
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for x in it:
                if not put((True, x)):
                    return
            put((True, done))
        except BaseException as e:   # noqa: BLE001 - handed to the consumer
            put((False, e))

    th = threading.Thread(target=run, name="cryptolake-prefetch", daemon=True)
    th.start()
    try:
        while True:
            ok, x = q.get()
            if not ok:
                raise x
            if x is done:
                return
            yield x
    finally:
        stop.set()
        th.join()


def stream_partitions(storage: Storage, layer: str, table: str, symbol: str, schema: pa.Schema,
                      time_col: str, interval: str | None, build: Callable, note: str = ""
                      ) -> tuple[int, int | None]:
    """`replace_partitions` for partitions too big to hold: `build()` returns (months, batches),
    `batches` an iterable of (month, rows) that is consumed while Delta writes (one
    RecordBatchReader, one predicate-overwrite commit of exactly `months`); catalog counts are
    combined batch by batch. `build()` runs in every commit attempt and must re-open its
    sources (a retry streams them again). An exception raised while `batches` is consumed
    propagates as itself, and nothing is committed."""
    def keyed():
        months, batches = build()
        return ([(symbol, m) for m in months], (((symbol, m), t) for m, t in batches))
    return stream_keys(storage, layer, table, schema, time_col, interval, keyed, note)


def stream_keys(storage: Storage, layer: str, table: str, schema: pa.Schema, time_col: str,
                interval: str | None, build: Callable, note: str = "") -> tuple[int, int | None]:
    """The streamed write path of layer tables, for any number of symbols: `build()` returns
    (keys, batches), `keys` the (symbol, month) partitions to replace and `batches` an
    iterable of ((symbol, month), rows) consumed while Delta writes: ONE predicate-overwrite
    commit of exactly `keys` (a key no batch names is emptied), then ONE catalog append with
    each partition's counts combined batch by batch. Memory stays at what `batches` holds at
    a time. `build()` runs in every commit attempt and must re-read its sources (a conflict
    retries on fresh state). An exception raised while `batches` is consumed propagates as
    itself, and nothing is committed. Returns (rows written, table version; None when
    nothing changed)."""
    ensure_table(storage, layer, table, schema)
    rel = layout.table_dir(layer, table)
    full = data_schema(schema)
    out: dict = {}

    def attempt():
        dt = storage.open_table(rel)
        keys, batches = build()
        out.update(rows=0, version=None, stats={})
        if not keys:
            return
        keys = sorted(set(keys))
        wanted = set(keys)
        stats: dict[tuple[str, str], dict] = {}
        failed: list[BaseException] = []

        def gen():
            try:
                for key, t in batches:
                    if key not in wanted:
                        raise AssertionError(f"a batch for partition {key} outside {keys}")
                    if not t.num_rows:
                        continue
                    t = _few_chunks(t.select(schema.names).cast(schema))
                    stats[key] = grid.combine_stats(stats.get(key),
                                                    catalog.table_stats(t, time_col, interval))
                    yield from _with_partition(t, *key).to_batches()
            except BaseException as e:   # noqa: BLE001 - re-raised below as itself
                failed.append(e)
                raise

        stream = _prefetch(gen())
        first = next(stream, None)
        if failed:
            raise failed[0]
        removed = _rows_in(dt, keys)
        if first is None and removed == 0:
            return
        reader = pa.RecordBatchReader.from_batches(
            full, itertools.chain([] if first is None else [first], stream))
        try:
            _overwrite(dt, reader, keys, removed, layer, table, note)
        except Exception:
            if failed:
                raise failed[0] from None
            raise
        if failed:
            raise failed[0]
        empty = grid.partition_stats(np.empty(0, np.int64), interval)
        out.update(rows=sum(s["rows"] for s in stats.values()), version=dt.version(),
                   stats={k: stats.get(k, empty) for k in keys})

    storage.commit(attempt, f"{layer}.{table}")
    checkpoint("silver_committed")
    if out["version"] is not None:
        catalog.upsert(storage, [catalog.stats_row(layer, table, sym, m, st, out["version"])
                                 for (sym, m), st in out["stats"].items()])
    return out["rows"], out["version"]
