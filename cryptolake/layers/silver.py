"""Silver: typed, deduplicated rows, archive and REST merged, one Parquet file per
(table, symbol, month) Hive partition.

A partition is a pure function of the bronze files that feed it: rebuilding it re-merges all
of them, so a re-run duplicates nothing and a republished file simply replaces its rows.
Where sources overlap, the better one wins per instant: archive_monthly > archive_daily > rest.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..schema import SOURCES
from ..storage import Storage

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


def write_partition(storage: Storage, table: str, symbol: str, month: str, data: pa.Table) -> int:
    """Replace one partition atomically; an empty `data` removes it. Returns rows written."""
    rel = f"{layout.partition_dir('silver', table, symbol, month)}/{layout.PART_FILE}"
    if data.num_rows == 0:
        storage.remove(rel)
        return 0
    storage.write_table(rel, data)
    return data.num_rows
