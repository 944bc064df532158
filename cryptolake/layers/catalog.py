"""The lake's catalog: per-partition counts recorded at write time, so coverage reads no data.

A small Delta table `_catalog` at the lake root, one row per (layer, table, symbol, month):
rows, on_grid, off_grid, zero_volume, first, last (from `cryptolake.grid.partition_stats`)
and `written_version` (the data table's version that wrote them). It is upserted right after
each data commit. Row counts, first and last also live in the data table's Delta log; where
the two disagree (a crash between the two commits), `Table.partition_stats()` recomputes that
partition from data and repairs the catalog.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import grid
from ..storage import TABLE_CONFIG, Storage

CATALOG_REL = "_catalog"
TS = pa.timestamp("us", tz="UTC")
CATALOG_SCHEMA = pa.schema([
    ("layer", pa.string()), ("table", pa.string()), ("symbol", pa.string()), ("month", pa.string()),
    ("rows", pa.int64()), ("on_grid", pa.int64()), ("off_grid", pa.int64()),
    ("zero_volume", pa.int64()), ("first", TS), ("last", TS), ("written_version", pa.int64())])
STATS_COLUMNS = ["symbol", "month", "rows", "on_grid", "off_grid", "zero_volume", "first", "last"]


def partition_row(layer: str, table: str, symbol: str, month: str, data: pa.Table, time_col: str,
                  interval: str | None, version: int | None = None) -> dict:
    """The catalog row of one partition's data (`interval=None`: no bar grid)."""
    times = data[time_col].to_numpy().astype("datetime64[us]").astype(np.int64) if data.num_rows \
        else np.empty(0, np.int64)
    vol = data["volume"].to_numpy() if "volume" in data.column_names and data.num_rows else None
    st = grid.partition_stats(times, interval, vol)
    to_ts = (lambda us: None if us is None else pd.Timestamp(us, unit="us", tz="UTC").to_pydatetime())
    return {"layer": layer, "table": table, "symbol": symbol, "month": month,
            "rows": st["rows"], "on_grid": st["on_grid"], "off_grid": st["off_grid"],
            "zero_volume": st["zero_volume"], "first": to_ts(st["first"]), "last": to_ts(st["last"]),
            "written_version": version}


def _sql(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def upsert(storage: Storage, rows: list[dict]) -> None:
    """Insert or replace catalog rows by (layer, table, symbol, month): one MERGE commit."""
    if not rows:
        return
    from deltalake import CommitProperties, DeltaTable
    uri = storage.table_uri(CATALOG_REL)

    def create():
        if not storage.is_delta(CATALOG_REL):
            DeltaTable.create(uri, CATALOG_SCHEMA, mode="ignore", configuration=TABLE_CONFIG,
                              storage_options=storage.delta_storage_options or None)
    storage.commit(create, "create the lake catalog")
    src = pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
    names = sorted({r["table"] for r in rows})
    scope = " AND t.table IN (" + ", ".join(map(_sql, names)) + ")"

    def merge():
        t = storage.open_table(CATALOG_REL)
        (t.merge(src, predicate="t.layer = s.layer AND t.table = s.table AND t.symbol = s.symbol "
                                "AND t.month = s.month" + scope,
                 source_alias="s", target_alias="t",
                 commit_properties=CommitProperties(custom_metadata={"cryptolake": "catalog upsert"},
                                                    max_commit_retries=5))
         .when_matched_update_all().when_not_matched_insert_all().execute())
    storage.commit(merge, f"catalog upsert of {len(rows)} partitions")


def read(storage: Storage, layer: str, table: str) -> pd.DataFrame:
    """Catalog rows of one table (empty frame when nothing was recorded)."""
    if not storage.is_delta(CATALOG_REL):
        return CATALOG_SCHEMA.empty_table().to_pandas()
    t = storage.open_table(CATALOG_REL)
    data = t.to_pyarrow_dataset().to_table().select(CATALOG_SCHEMA.names).cast(CATALOG_SCHEMA)
    keep = pc.and_(pc.equal(data["layer"], layer), pc.equal(data["table"], table))   # after the cast:
    return data.filter(keep).to_pandas()                                              # MERGE writes string_view
