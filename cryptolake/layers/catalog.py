"""The lake's catalog: per-partition counts recorded at write time, so coverage reads no data.

A small Delta table `_catalog` at the lake root with rows (layer, table, symbol, month,
rows, on_grid, off_grid, zero_volume, first, last from `cryptolake.grid.partition_stats`,
`written_version`: the data table's version that wrote them, `recorded_at`). It is upserted
right after each data commit as a blind append (appends never conflict and cost a few ms,
where a MERGE costs ~100 ms): the row of a partition is its latest one (highest
written_version, then latest recorded_at). `compact()` (run by `lake.optimize()`) keeps only
those rows. Row counts, first and last also live in the data table's Delta log; where
the two disagree (a crash between the two commits), `Table.partition_stats()` recomputes that
partition from data and repairs the catalog.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import grid
from ..storage import Storage

CATALOG_REL = "_catalog"
TS = pa.timestamp("us", tz="UTC")
CATALOG_SCHEMA = pa.schema([
    ("layer", pa.string()), ("table", pa.string()), ("symbol", pa.string()), ("month", pa.string()),
    ("rows", pa.int64()), ("on_grid", pa.int64()), ("off_grid", pa.int64()),
    ("zero_volume", pa.int64()), ("first", TS), ("last", TS), ("written_version", pa.int64()),
    ("recorded_at", TS)])
STATS_COLUMNS = ["symbol", "month", "rows", "on_grid", "off_grid", "zero_volume", "first", "last"]


def partition_row(layer: str, table: str, symbol: str, month: str, data: pa.Table, time_col: str,
                  interval: str | None, version: int | None = None) -> dict:
    """The catalog row of one partition's data (`interval=None`: no bar grid)."""
    return stats_row(layer, table, symbol, month, table_stats(data, time_col, interval), version)


def table_stats(data: pa.Table, time_col: str, interval: str | None) -> dict:
    """`grid.partition_stats` of some rows (one batch of a streamed partition)."""
    times = data[time_col].to_numpy().astype("datetime64[us]").astype(np.int64) if data.num_rows \
        else np.empty(0, np.int64)
    vol = data["volume"].to_numpy() if "volume" in data.column_names and data.num_rows else None
    return grid.partition_stats(times, interval, vol)


def stats_row(layer: str, table: str, symbol: str, month: str, st: dict,
              version: int | None = None) -> dict:
    """The catalog row of one partition from its `grid.partition_stats` (combined per batch
    with `grid.combine_stats` when the partition was written from a stream)."""
    to_ts = (lambda us: None if us is None else pd.Timestamp(us, unit="us", tz="UTC").to_pydatetime())
    return {"layer": layer, "table": table, "symbol": symbol, "month": month,
            "rows": st["rows"], "on_grid": st["on_grid"], "off_grid": st["off_grid"],
            "zero_volume": st["zero_volume"], "first": to_ts(st["first"]), "last": to_ts(st["last"]),
            "written_version": version, "recorded_at": None}


def _ensure(storage: Storage) -> None:
    storage.ensure_table(CATALOG_REL, CATALOG_SCHEMA, what="create the lake catalog")


def upsert(storage: Storage, rows: list[dict]) -> None:
    """Record catalog rows (the latest row of a partition wins): one append commit."""
    if not rows:
        return
    from deltalake import CommitProperties, write_deltalake
    _ensure(storage)
    now = dt.datetime.now(dt.timezone.utc)
    src = pa.Table.from_pylist([{**r, "recorded_at": now} for r in rows], schema=CATALOG_SCHEMA)
    props = CommitProperties(custom_metadata={"cryptolake_note": "catalog upsert"})
    storage.commit(lambda: write_deltalake(storage.table_uri(CATALOG_REL), src, mode="append",
                                           storage_options=storage.delta_storage_options or None,
                                           commit_properties=props),
                   f"catalog upsert of {len(rows)} partitions")


def _latest(data: pa.Table) -> pd.DataFrame:
    df = data.to_pandas()
    df = df.sort_values(["written_version", "recorded_at"], ascending=False, na_position="last", kind="stable")
    return df.drop_duplicates(["layer", "table", "symbol", "month"]).reset_index(drop=True)


def _read_all(storage: Storage) -> pa.Table:
    t = storage.open_table(CATALOG_REL)
    return t.to_pyarrow_dataset().to_table().select(CATALOG_SCHEMA.names).cast(CATALOG_SCHEMA)


def read(storage: Storage, layer: str, table: str) -> pd.DataFrame:
    """The current catalog row of every recorded partition of one table."""
    if not storage.is_delta(CATALOG_REL):
        return CATALOG_SCHEMA.empty_table().to_pandas()
    data = _read_all(storage)
    data = data.filter(pc.and_(pc.equal(data["layer"], layer), pc.equal(data["table"], table)))
    return _latest(data)


def compact(storage: Storage) -> int:
    """Rewrite the catalog keeping only each partition's current row (one overwrite commit,
    retried if a writer appends meanwhile). Returns rows kept."""
    if not storage.is_delta(CATALOG_REL):
        return 0
    from deltalake import write_deltalake
    out = {}

    def attempt():
        d = storage.open_table(CATALOG_REL)
        keep = pa.Table.from_pandas(_latest(d.to_pyarrow_dataset().to_table().select(CATALOG_SCHEMA.names)
                                            .cast(CATALOG_SCHEMA)), schema=CATALOG_SCHEMA, preserve_index=False)
        write_deltalake(d, keep, mode="overwrite")
        out["rows"] = keep.num_rows
    storage.commit(attempt, "compact the lake catalog")
    return out["rows"]
