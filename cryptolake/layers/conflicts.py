"""Where archive and REST disagree: the lake's conflicts table (`silver/_conflicts`, Delta).

One row per (table, symbol, key, column) with both values, upserted on every rebuild that
sees the disagreement, so re-runs never duplicate it. `lake.sql("SELECT * FROM
silver.conflicts")` reads it; `IngestReport.conflicts` lists what one ingest found.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..storage import Storage

CONFLICTS_REL = "silver/_conflicts"
COLUMNS = ["table", "symbol", "key", "column", "archive_value", "rest_value"]
SCHEMA = pa.schema([("table", pa.string()), ("symbol", pa.string()),
                    ("key", pa.timestamp("us", tz="UTC")), ("column", pa.string()),
                    ("archive_value", pa.string()), ("rest_value", pa.string()),
                    ("strategy", pa.string()), ("found_at", pa.timestamp("us", tz="UTC"))])


def _sql(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def frame(rows: list[dict]) -> pd.DataFrame:
    """Conflict dicts as the report's DataFrame (values as found, keys as UTC Timestamps)."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["key"] = pd.to_datetime(df["key"], utc=True)
    return df


def record(storage: Storage, rows: list[dict], strategy: str) -> None:
    """Upsert conflicts by (table, symbol, key, column) in one MERGE commit."""
    if not rows:
        return
    from deltalake import CommitProperties
    storage.ensure_table(CONFLICTS_REL, SCHEMA, what="create the conflicts table")
    now = dt.datetime.now(dt.timezone.utc)
    src = pa.Table.from_pylist([{**{c: r[c] for c in ("table", "symbol", "column")},
                                 "key": pd.Timestamp(r["key"], tz="UTC").to_pydatetime(),
                                 "archive_value": None if r["archive_value"] is None else str(r["archive_value"]),
                                 "rest_value": None if r["rest_value"] is None else str(r["rest_value"]),
                                 "strategy": strategy, "found_at": now} for r in rows], schema=SCHEMA)
    scope = " AND t.table IN (" + ", ".join(map(_sql, sorted({r["table"] for r in rows}))) + ")"

    def merge():
        t = storage.open_table(CONFLICTS_REL)
        (t.merge(src, predicate="t.table = s.table AND t.symbol = s.symbol AND t.key = s.key "
                                "AND t.column = s.column" + scope,
                 source_alias="s", target_alias="t",
                 commit_properties=CommitProperties(custom_metadata={"cryptolake": "conflicts upsert"},
                                                    max_commit_retries=5))
         .when_matched_update_all().when_not_matched_insert_all().execute())
    storage.commit(merge, f"conflicts upsert of {len(rows)} rows")


def dataset(storage: Storage):
    """The conflicts table as an Arrow dataset (for SQL), or None before the first conflict."""
    if not storage.is_delta(CONFLICTS_REL):
        return None
    return storage.open_table(CONFLICTS_REL).to_pyarrow_dataset()


def read(storage: Storage, table: str | None = None) -> pd.DataFrame:
    """Every recorded conflict (of one table)."""
    ds = dataset(storage)
    if ds is None:
        return SCHEMA.empty_table().to_pandas()
    data = ds.to_table().cast(SCHEMA)
    if table is not None:
        data = data.filter(pc.equal(data["table"], table))
    return data.to_pandas()
