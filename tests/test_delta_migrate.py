"""Migration from the pre-Delta layout: the old files are written here directly with pyarrow
(silver/<table>/symbol=X/month=Y/part-0.parquet and bronze/_manifest/<table>.parquet), the way
the old code laid them out; reads refuse until `lake.migrate()` / `cryptolake migrate URL`."""
from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cryptolake as cl
from cryptolake import schema
from cryptolake.layers.bronze import MANIFEST_SCHEMA
from cryptolake.storage import LegacyLayoutError
from cryptolake.testing.archive import ArchiveBuilder


def old_lake(tmp_path) -> tuple:
    """A lake in the old layout: bronze zips + a Parquet manifest + plain silver partitions,
    plus a gold table with no bronze behind it. Returns (root, builder, keys)."""
    arch = tmp_path / "archive"
    arch.mkdir()
    b = ArchiveBuilder(arch.as_uri())
    keys = [b.klines("um", s, "1h", d, seed=i) for i, (s, d) in enumerate(
        [("BTCUSDT", "2024-01-31"), ("BTCUSDT", "2024-02-01"), ("ETHUSDT", "2024-02-01")])]
    root = tmp_path / "lake"
    rows = []
    for k in keys:
        data = (arch / k.key).read_bytes()
        dst = root / "bronze" / k.key
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        rows.append({"key": k.key, "table": "um_klines_1h", "market": "um", "data_type": "klines",
                     "symbol": k.symbol, "interval": "1h", "cadence": "daily", "period": k.period,
                     "month": k.month, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                     "upstream_size": len(data), "etag": None, "last_modified": None,
                     "fetched_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "status": "stored",
                     "reason": "", "in_silver": True})
    (root / "bronze" / "_manifest").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA),
                   root / "bronze" / "_manifest" / "um_klines_1h.parquet")
    sch = schema.silver_schema("um", "klines")
    for k in keys:
        part = root / "silver" / "um_klines_1h" / f"symbol={k.symbol}" / f"month={k.month}"
        part.mkdir(parents=True, exist_ok=True)
        f = b.frame(k)
        old = pq.read_table(part / "part-0.parquet").to_pandas() if (part / "part-0.parquet").exists() else None
        f = pd.concat([old, f]) if old is not None else f
        pq.write_table(pa.Table.from_pandas(f[sch.names], schema=sch, preserve_index=False), part / "part-0.parquet")
    g = root / "gold" / "um_klines_4h" / "symbol=BTCUSDT" / "month=2024-01"
    g.mkdir(parents=True)
    f4 = b.frame(keys[0]).iloc[::4]
    pq.write_table(pa.Table.from_pandas(f4[sch.names], schema=sch, preserve_index=False), g / "part-0.parquet")
    return root, b, keys


def test_old_layout_is_detected_and_reads_say_to_migrate(tmp_path):
    root, _, _ = old_lake(tmp_path)
    lake = cl.Lake(str(root))
    assert lake.is_legacy()
    with pytest.raises(LegacyLayoutError, match="migrate"):
        lake.silver["um_klines_1h"]
    with pytest.raises(LegacyLayoutError, match="migrate"):
        lake.bronze.files()
    with pytest.raises(RuntimeError, match="migrate"):
        lake.ingest("um", "klines", interval="1h", progress=False)


def test_migrate_rebuilds_silver_from_bronze_and_converts_the_rest(tmp_path):
    root, b, keys = old_lake(tmp_path)
    lake = cl.Lake(str(root))
    done = lake.migrate(progress=False)
    assert done == {"silver.um_klines_1h": 72, "gold.um_klines_4h": 6}
    lake = cl.Lake(str(root))
    assert not lake.is_legacy()
    t = lake.silver.um_klines_1h
    want = pd.concat([b.frame(k) for k in keys[:2]]).set_index("open_time")
    got = t["BTCUSDT"]
    assert list(got.index) == list(want.index)
    np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
    assert len(t["ETHUSDT"]) == 24
    assert sorted(lake.bronze.files()["key"]) == sorted(k.key for k in keys)
    assert lake.bronze.files()["in_silver"].all()
    assert not list((root / "bronze" / "_manifest").glob("*.parquet"))
    assert not list((root / "silver" / "um_klines_1h").rglob("part-0.parquet"))
    assert len(lake.gold.um_klines_4h["BTCUSDT"]) == 6
    assert t.partition_stats()["rows"].sum() == 72
    assert lake.migrate(progress=False) == {}                 # nothing left to do


def test_cli_migrate(tmp_path):
    root, _, _ = old_lake(tmp_path)
    out = subprocess.run([sys.executable, "-m", "cryptolake.cli", "migrate", str(root), "--quiet"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "silver.um_klines_1h: 72 rows" in out.stdout
    assert len(cl.Lake(str(root)).silver.um_klines_1h.read()) == 72
