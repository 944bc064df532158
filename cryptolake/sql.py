"""`lake.sql(query)`: read-only DuckDB over the lake's Delta tables.

Each silver/gold table is registered as the Arrow dataset of the version the lake reads
(`DeltaTable.to_pyarrow_dataset()`: the files its log lists), behind a view in schema
`silver`/`gold`; `bronze.files` is the manifest. DuckDB pushes filters and projections into
the Arrow scan, so a `WHERE symbol = 'X'` opens only that symbol's files. No DuckDB extension
is needed (the S3 reads go through delta-rs' filesystem). After registration the connection
gets `enable_external_access=false` and `lock_configuration=true`, and only SELECT-like
statements run: a query cannot read or write files, attach databases or install extensions.
"""
from __future__ import annotations

import re

import pandas as pd

_ALLOWED = ("SELECT", "EXPLAIN")


def _names(lake) -> list[str]:
    names = [f"{lay.layer}.{n}" for lay in (lake.silver, lake.gold) for n in lay.tables]
    return names + ["bronze.files", "silver.conflicts"]


_REF = re.compile(r'\b(silver|gold|bronze)\s*\.\s*"?(\w+)"?', re.I)


def connect(lake, query: str | None = None):
    """A locked DuckDB connection with the tables of `lake` registered (see module doc): only
    those `query` names when given (each registration opens a Delta table)."""
    import duckdb
    con = duckdb.connect(":memory:")
    wanted = None if query is None else {(a.lower(), b) for a, b in _REF.findall(query)}
    for layer in (lake.silver, lake.gold, None):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer.layer if layer else 'bronze'}")
    for layer in (lake.silver, lake.gold):
        for name in layer.tables:
            if wanted is not None and (layer.layer, name) not in wanted:
                continue
            handle = f"__{layer.layer}_{name}"
            con.register(handle, layer[name].dataset())
            con.execute(f'CREATE VIEW {layer.layer}."{name}" AS SELECT * FROM "{handle}"')
    if wanted is None or ("bronze", "files") in wanted:
        con.register("__bronze_files", lake.bronze.arrow())
        con.execute('CREATE VIEW bronze.files AS SELECT * FROM "__bronze_files"')
    if wanted is None or ("silver", "conflicts") in wanted:
        from .layers import conflicts
        found = conflicts.dataset(lake.storage) if lake._pins is None else None
        if found is not None:             # archive/REST disagreements (see layers/conflicts.py)
            con.register("__silver_conflicts", found)
            con.execute('CREATE VIEW silver.conflicts AS SELECT * FROM "__silver_conflicts"')
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def run_sql(lake, query: str) -> pd.DataFrame:
    """Run one read-only statement; ValueError for bad SQL, a write, or an unknown table
    (naming the tables that exist)."""
    import duckdb
    if not isinstance(query, str) or not query.strip():
        raise ValueError("lake.sql() needs a SQL query string, e.g. "
                         "\"SELECT symbol, count(*) FROM silver.um_klines_1m GROUP BY 1\"")
    con = connect(lake, query)
    try:
        try:
            stmts = con.extract_statements(query)
        except duckdb.Error as e:
            raise ValueError(f"bad SQL: {e}; tables: {', '.join(_names(lake))}") from None
        if len(stmts) != 1:
            raise ValueError(f"lake.sql() runs one statement at a time; got {len(stmts)}")
        kind = stmts[0].type.name
        if kind not in _ALLOWED:
            raise ValueError(f"lake.sql() is read-only: {kind} statements are not allowed "
                             f"(only {', '.join(_ALLOWED)}); write through lake.ingest()/build_gold()")
        try:
            return con.execute(query).df()
        except duckdb.CatalogException as e:
            raise ValueError(f"{e}; tables: {', '.join(_names(lake))}") from None
        except (duckdb.ParserException, duckdb.BinderException, duckdb.PermissionException,
                duckdb.InvalidInputException) as e:
            raise ValueError(f"{type(e).__name__}: {e}; tables: {', '.join(_names(lake))}") from None
    finally:
        con.close()
