"""Scale-out on Dask: read a lake table as a `dask.dataframe`, and run the per-symbol work of
`lake.ingest` and `lake.build_gold` on a `dask.distributed` cluster.

Each worker task rebuilds the `Lake` from its URL and storage_options (plain data, so it
pickles) and runs the same code as one machine does: one symbol's ingest or gold build,
committing through the same Delta write path with the same manifest, retries on conflict and
catalog. The driver validates the request first (bad input raises before any task runs) and
collects the reports.
"""
from __future__ import annotations

import time
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa


# ---------------------------------------------------------------- reads
def _read_file(arg) -> pd.DataFrame:
    """One Delta data file as pandas, with its partition values as columns (runs on a worker)."""
    import pyarrow.parquet as pq

    from .storage import Storage
    url, options, uri, parts, schema_bytes = arg
    sch = pa.ipc.read_schema(pa.py_buffer(schema_bytes))
    fs = Storage(url, options).fs
    t = pq.read_table(fs._strip_protocol(uri), filesystem=fs)
    for k, v in parts.items():
        if k not in t.column_names:
            t = t.append_column(k, pa.array([v] * t.num_rows, pa.string()))
    return t.select(sch.names).cast(sch).to_pandas()


def table_to_dask(table, d):
    """`dask.dataframe` over the DeltaTable `d` of `table` (see `Table.to_dask`)."""
    import dask.dataframe as dd
    acts = pa.table(d.get_add_actions(flatten=True)).to_pandas()
    sch = d.to_pyarrow_dataset().schema
    sch = pa.schema([sch.field(n) for n in sch.names])
    meta = sch.empty_table().to_pandas()
    blob = sch.serialize().to_pybytes()
    base = table.storage.table_uri(table._rel).rstrip("/")
    storage = table.storage
    pcols = [c for c in acts.columns if c.startswith("partition.")]
    args = []
    for _, r in acts.sort_values(["partition.symbol", "partition.month", "path"]).iterrows() if len(acts) else []:
        parts = {c.split(".", 1)[1]: r[c] for c in pcols}
        uri = r["path"] if "://" in r["path"] else f"{base}/{unquote(r['path'])}"
        args.append((storage.url, storage._options, uri, parts, blob))
    if not args:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(_read_file, args, meta=meta, enforce_metadata=False)


# ---------------------------------------------------------------- ingest
def _ingest_one(url, options, archive, rest, market, data_type, symbol, interval, start, end, top_up,
                merge, today):
    from .ingest import run_ingest
    from .lake import Lake
    lake = Lake(url, storage_options=options, archive=archive, rest=rest)
    return run_ingest(lake, market, data_type, [symbol], interval, start, end,
                      top_up=top_up, merge=merge, progress=False, today=today)


def ingest_on_client(lake, client, market, data_type, symbols=None, interval=None, start=None, end=None,
                     *, top_up=True, merge="archive_first", today=None):
    """`lake.ingest(..., client=client)`: one task per symbol on the cluster's workers, each
    a complete single-symbol ingest (fetch, bronze, manifest, one silver commit), then one
    IngestReport merged on the driver."""
    from . import schema
    from .report import FILE_COLUMNS, IngestReport
    t0 = time.perf_counter()
    req = schema.validate_request(market, data_type, interval, start, end)
    from .layers.silver import source_ranks
    source_ranks(merge)                               # a known strategy, before any task runs
    lake._check_writable()
    if symbols is None:
        syms = sorted(lake.archive.symbols(req.market, req.data_type))
    else:
        syms = [symbols] if isinstance(symbols, str) else sorted(symbols)
    futs = [client.submit(_ingest_one, lake.storage.url, lake.storage._options, lake.archive, lake.rest,
                          market, data_type, s, interval, start, end, top_up, merge, today, pure=False)
            for s in syms]
    reports = client.gather(futs)
    out = IngestReport(req.table)
    files = [r.files for r in reports if len(r.files)]
    out.files = pd.concat(files, ignore_index=True) if files else pd.DataFrame(columns=FILE_COLUMNS)
    out.rows = {req.table: sum(sum(r.rows.values()) for r in reports)}
    gaps = [r.gaps for r in reports if len(r.gaps)]
    out.gaps = pd.concat(gaps, ignore_index=True) if gaps else out.gaps
    out.errors = [e for r in reports for e in r.errors]
    out.rejected = [x for r in reports for x in r.rejected]
    conflicts = [r.conflicts for r in reports if len(r.conflicts)]
    out.conflicts = pd.concat(conflicts, ignore_index=True) if conflicts else out.conflicts
    out.notes = list(dict.fromkeys(n for r in reports for n in r.notes))
    out.notes.append(f"ingested on a Dask cluster: {len(syms)} symbol tasks")
    out.seconds = time.perf_counter() - t0
    return out
