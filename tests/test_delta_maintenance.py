"""Maintenance: optimize compacts small files, vacuum drops unneeded files but refuses a
retention shorter than a pinned run record, checkpoints keep the log short."""
from __future__ import annotations

import datetime as dt
import json

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)


def lake_with_many_small_files(tmp_path) -> tuple[cl.Lake, ArchiveBuilder]:
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    for seed in range(3):                                   # a day republished twice: 3 versions
        b.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=seed)
        assert lake.ingest("um", "klines", interval="1h", progress=False, today=TODAY).ok
    return lake, b


def data_files(lake, table="um_klines_1h") -> list:
    return sorted(Path(lake.storage.local_path(f"silver/{table}")).rglob("*.parquet"))


def test_optimize_compacts_and_keeps_the_rows(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    b.klines("um", "BTCUSDT", "1h", "2024-05-01")
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    assert lake.ingest("um", "klines", interval="1h", progress=False, today=TODAY).ok
    t = lake.silver.um_klines_1h
    before = t.read("BTCUSDT")
    # the same rows as three small files in one partition (what many small commits leave)
    rows = t.read_arrow(["BTCUSDT"]).append_column("month", pa.array(["2024-05"] * 24))
    uri = lake.storage.table_uri("silver/um_klines_1h")
    write_deltalake(uri, rows.slice(0, 8), mode="overwrite", predicate="symbol = 'BTCUSDT' AND month = '2024-05'")
    write_deltalake(uri, rows.slice(8, 8), mode="append")
    write_deltalake(uri, rows.slice(16), mode="append")
    assert len(t._actions(t._dt())) == 3
    res = lake.optimize("um_klines_1h")
    assert res.to_dict("records") == [{"table": "silver.um_klines_1h", "files_added": 1, "files_removed": 3}]
    assert len(t._actions(t._dt())) == 1
    pd.testing.assert_frame_equal(t.read("BTCUSDT"), before)
    assert "silver.um_klines_1h" in lake.optimize()["table"].tolist()
    with pytest.raises(ValueError, match="um_klines_1h"):
        lake.optimize("um_klines_5m")


def test_vacuum_removes_unreferenced_files_and_old_versions_stop_reading(tmp_path):
    lake, b = lake_with_many_small_files(tmp_path)
    t = lake.silver.um_klines_1h
    n_before = len(data_files(lake))
    assert n_before == 3                                    # 1 live + 2 replaced files
    with pytest.raises(ValueError, match="duration"):
        lake.vacuum("a week")
    dry = lake.vacuum("0H", dry_run=True)
    assert dry.set_index("table").loc["silver.um_klines_1h", "files_deleted"] == 2
    assert len(data_files(lake)) == 3
    res = lake.vacuum("0H")
    assert res.set_index("table").loc["silver.um_klines_1h", "files_deleted"] == 2
    assert len(data_files(lake)) == 1
    assert len(t.read("BTCUSDT")) == 24                    # the current version still reads


def test_vacuum_refuses_a_retention_shorter_than_a_pinned_run(tmp_path):
    lake, _ = lake_with_many_small_files(tmp_path)
    run_dir = tmp_path / "lake" / "_runs" / "daily" / "20261101T000000Z"
    run_dir.mkdir(parents=True)
    started = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3)
    (run_dir / "record.json").write_text(json.dumps({"pipeline": "daily", "started": started.isoformat(),
                                                     "versions": {"before": {}, "after": lake.versions()}}))
    (tmp_path / "lake" / "_runs" / "other").mkdir()
    (tmp_path / "lake" / "_runs" / "other" / "record.json").write_text(json.dumps({"status": "failed"}))
    assert [r for r, _ in lake.pinned_runs()] == ["_runs/daily/20261101T000000Z/record.json"]
    with pytest.raises(ValueError, match="pinned run record.*record.json"):
        lake.vacuum("1D")
    assert len(data_files(lake)) == 3                       # nothing deleted
    res = lake.vacuum("7D")                                  # longer than the run's age: allowed
    assert res.set_index("table").loc["silver.um_klines_1h", "files_deleted"] == 0


def test_tables_checkpoint_every_100_commits(tmp_path):
    import pyarrow as pa
    from cryptolake import schema
    from cryptolake.layers import silver
    lake = cl.Lake(str(tmp_path / "lake"))
    sch = schema.silver_schema("um", "klines")
    silver.ensure_table(lake.storage, "silver", "um_klines_1h", sch)
    one = pa.table({c: pa.array([None], f.type) for c, f in zip(sch.names, sch)}, schema=sch)
    one = one.set_column(0, "open_time", pa.array([pd.Timestamp("2024-01-01", tz="UTC")], schema.TS))
    for i in range(101):
        silver.write_partitions(lake.storage, "silver", "um_klines_1h", sch, "open_time", "1h",
                                {("BTCUSDT", "2024-01"): one})
    log = tmp_path / "lake" / "silver" / "um_klines_1h" / "_delta_log"
    assert list(log.glob("*.checkpoint.parquet")), sorted(p.name for p in log.iterdir())[-5:]
    assert lake.silver.um_klines_1h.version == 101
    assert (log / f"{0:020d}.json").exists()               # old commits stay: lake.at() reaches them
    from deltalake import DeltaTable
    cfg = DeltaTable(lake.storage.table_uri("silver/um_klines_1h")).metadata().configuration
    assert cfg["delta.checkpointInterval"] == "100" and cfg["delta.enableExpiredLogCleanup"] == "false"
    assert lake.silver.um_klines_1h.partition_stats()["rows"].tolist() == [1]
