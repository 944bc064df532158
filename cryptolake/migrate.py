"""`lake.migrate()`: convert a lake written by the pre-Delta layout, in place.

The old layout: `silver/<table>/symbol=X/month=Y/part-0.parquet` (plain Hive partitions) and
`bronze/_manifest/<table>.parquet` (one Parquet manifest per table). Migration:

1. the Parquet manifests become rows of the Delta manifest `bronze/_manifest` (marked not yet
   in silver), then the old files are removed;
2. each old table directory is moved aside to `<layer>/.legacy-<table>`; a table that bronze
   feeds is rebuilt from its bronze files (a partition is a pure function of them); a table
   with no manifest rows (gold, or bronze lost) is converted from its old Parquet files;
3. the moved-aside directories are removed once their table is a Delta table.

Re-running it after an interruption finishes the job.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import schema
from .layers import silver
from .layers.bronze import MANIFEST_REL, MANIFEST_SCHEMA, legacy_manifests


def _old_tables(storage, layer: str) -> list[tuple[str, str]]:
    """(table, rel dir) of old-layout tables in `layer`, including moved-aside ones."""
    out = []
    for p in storage.ls(layer):
        name = p.rstrip("/").rsplit("/", 1)[-1]
        rel = f"{layer}/{name}"
        table = name[len(".legacy-"):] if name.startswith(".legacy-") else name
        if name.startswith(".") and not name.startswith(".legacy-"):
            continue
        try:
            schema.parse_table_name(table)
        except ValueError:
            continue
        if name.startswith(".legacy-") or not storage.is_delta(rel):
            if any(q.rstrip("/").rsplit("/", 1)[-1].startswith("symbol=") for q in storage.ls(rel)):
                out.append((table, rel))
    return out


def _convert_files(lake, layer: str, table: str, rel: str) -> int:
    """Copy an old table's Parquet partitions into its Delta table (no bronze to rebuild from)."""
    st = lake.storage
    market, data_type, interval = schema.parse_table_name(table)
    sch = schema.silver_schema(market, data_type)
    part = ds.partitioning(pa.schema([("symbol", pa.string()), ("month", pa.string())]), flavor="hive")
    data = ds.dataset(st.path(rel), format="parquet", filesystem=st.fs, partitioning=part).to_table()
    parts = {}
    for sym in sorted(set(data["symbol"].to_pylist())):
        d = data.filter(ds.field("symbol") == sym)
        for month in sorted(set(d["month"].to_pylist())):
            parts[(sym, month)] = d.filter(ds.field("month") == month).select(sch.names)
    rows, _ = silver.write_partitions(st, layer, table, sch, schema.time_column(data_type), interval,
                                      parts, note=f"migrate {layer}.{table} from the old Parquet layout")
    return rows


def migrate(lake, progress: bool = True) -> dict[str, int]:
    from .ingest import rebuild_table
    st = lake.storage
    old_manifests = legacy_manifests(st)
    if old_manifests:
        rows = []
        for name in old_manifests:
            with st.fs.open(st.path(f"{MANIFEST_REL}/{name}"), "rb") as f:
                t = pq.read_table(f)
            rows += [{**r, "in_silver": False} for r in
                     t.select([c for c in MANIFEST_SCHEMA.names if c in t.column_names]).to_pylist()]
        lake.bronze._merge(rows, note="migrate the Parquet manifests")   # no read of the old layout
        for name in old_manifests:
            st.remove(f"{MANIFEST_REL}/{name}")
    lake.bronze._rows.clear()
    done: dict[str, int] = {}
    for layer in ("silver", "gold"):
        for table, rel in _old_tables(st, layer):
            aside = f"{layer}/.legacy-{table}"
            if rel != aside:
                st.fs.mv(st.path(rel), st.path(aside), recursive=True)
            fed = lake.bronze.symbol_rows_all(table) if layer == "silver" else []
            if fed:
                done[f"{layer}.{table}"] = rebuild_table(lake, table, progress=progress)
            else:
                done[f"{layer}.{table}"] = _convert_files(lake, layer, table, aside)
            st.remove(aside, recursive=True)
    return done
