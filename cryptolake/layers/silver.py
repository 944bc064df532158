"""Silver (and gold): typed, deduplicated rows, archive and REST merged, in Delta tables
partitioned by `symbol` then `month`.

A partition is a pure function of the bronze files that feed it: rebuilding it re-merges all
of them, so a re-run duplicates nothing and a republished file simply replaces its rows.
Where sources overlap, the better one wins per instant: archive_monthly > archive_daily > rest.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..schema import SOURCES
from ..storage import TABLE_CONFIG, Storage
from . import catalog
from ..faults import checkpoint

PARTITIONS = ("symbol", "month")

_PRIORITY = {s: i for i, s in enumerate(SOURCES)}


def merge(tables: list[pa.Table], time_col: str, schema: pa.Schema) -> pa.Table:
    """Concatenate, keep the best source per instant, sort by time."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return schema.empty_table()
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if len(tables) == 1 and _strictly_increasing(t[time_col]):
        return t
    prio = pc.index_in(t["source"], value_set=pa.array(SOURCES))
    order = pc.sort_indices(t.append_column("_p", prio), [(time_col, "ascending"), ("_p", "ascending")])
    t = t.take(order)
    times = t[time_col].to_numpy()
    keep = np.ones(len(times), dtype=bool)
    keep[1:] = times[1:] != times[:-1]
    return t if keep.all() else t.filter(pa.array(keep))


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
    from deltalake import DeltaTable
    rel = layout.table_dir(layer, table)

    def create():
        if not storage.is_delta(rel):
            DeltaTable.create(storage.table_uri(rel), data_schema(schema), partition_by=list(PARTITIONS),
                              mode="ignore", configuration=TABLE_CONFIG,
                              storage_options=storage.delta_storage_options or None)
    storage.commit(create, f"create {layer}.{table}")


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


def commit_partitions(storage: Storage, layer: str, table: str, schema: pa.Schema, time_col: str,
                      interval: str | None, build: Callable[[], dict[tuple[str, str], pa.Table]],
                      note: str = "") -> tuple[int, int | None]:
    """The one write path of layer tables: a predicate overwrite of exactly the (symbol, month)
    partitions `build()` returns, retried on fresh state on conflicts, then the catalog upsert."""
    from deltalake import CommitProperties, write_deltalake
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
        datas = [parts[k].select(schema.names).cast(schema)
                 .append_column("symbol", pa.array([k[0]] * parts[k].num_rows, pa.string()))
                 .append_column("month", pa.array([k[1]] * parts[k].num_rows, pa.string())) for k in keys]
        data = pa.concat_tables(datas) if datas else full.empty_table()
        by_sym: dict[str, list[str]] = {}
        for sym, month in keys:
            by_sym.setdefault(sym, []).append(month)
        acts = pa.table(dt.get_add_actions(flatten=True))
        removed = 0
        if acts.num_rows:
            pk = pc.binary_join_element_wise(acts["partition.symbol"], acts["partition.month"], "\x00")
            hit = pc.is_in(pk, pa.array([f"{s}\x00{m}" for s, m in keys]))
            removed = int(pc.sum(acts.filter(hit)["num_records"]).as_py() or 0)
        if data.num_rows == 0 and removed == 0:
            return
        pred = " OR ".join(f"(symbol = {_sql(sym)} AND month IN ({', '.join(map(_sql, ms))}))"
                           for sym, ms in sorted(by_sym.items()))
        meta = {"cryptolake_note": note or f"write {layer}.{table}",
                "cryptolake_rows_removed": str(removed)}
        checkpoint("silver_commit")
        write_deltalake(dt, data, mode="overwrite", predicate=pred, partition_by=list(PARTITIONS),
                        commit_properties=CommitProperties(custom_metadata=meta))
        out.update(rows=data.num_rows, version=dt.version())

    storage.commit(attempt, f"{layer}.{table}")
    checkpoint("silver_committed")
    if out["version"] is not None:
        catalog.upsert(storage, [catalog.partition_row(layer, table, sym, m, t, time_col, interval,
                                                       out["version"]) for (sym, m), t in out["parts"].items()])
    return out["rows"], out["version"]
