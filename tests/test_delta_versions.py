"""Versions and reproducible reads: t.version, t.history(), read(version=/as_of=),
lake.versions(), lake.at(...) (read-only), on a local lake and on S3 (moto in its own process)."""
from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "lake"), None
    site = request.getfixturevalue("s3_lake")
    return site.url, site.storage_options


@pytest.fixture
def builder(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    return ArchiveBuilder(root.as_uri())


def ingest(lake, start="2024-05-01", end="2024-05-02"):
    r = lake.ingest("um", "klines", interval="1h", start=start, end=end, progress=False, today=TODAY)
    assert r.ok, r.errors
    return r


def test_pinned_lake_returns_the_old_frames_after_a_republish_and_reingest(where, builder):
    url, opts = where
    old_keys = [builder.klines("um", s, "1h", "2024-05-01", seed=1) for s in ("BTCUSDT", "ETHUSDT")]
    lake = cl.Lake(url, storage_options=opts, archive=cl.BinanceArchive(builder.url))
    ingest(lake, end="2024-05-01")
    saved = lake.versions()
    assert set(saved) >= {"silver.um_klines_1h", "bronze.manifest"}
    old_btc = builder.frame(old_keys[0]).set_index("open_time")

    new_key = builder.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=77)   # Binance republishes
    builder.klines("um", "BTCUSDT", "1h", "2024-05-02", seed=3)                # and a new day appears
    ingest(lake)
    new_btc = builder.frame(new_key).set_index("open_time")
    assert not np.array_equal(old_btc["close"].to_numpy(), new_btc["close"].to_numpy())

    now = lake.silver.um_klines_1h["BTCUSDT"]
    assert len(now) == 48
    np.testing.assert_array_equal(now.loc[:"2024-05-01 23:00", "close"].to_numpy(), new_btc["close"].to_numpy())

    pinned = lake.at(saved)
    then = pinned.silver.um_klines_1h["BTCUSDT"]
    assert list(then.index) == list(old_btc.index)
    np.testing.assert_array_equal(then["close"].to_numpy(), old_btc["close"].to_numpy())
    assert pinned.versions() == saved
    assert pinned.silver.um_klines_1h.version == saved["silver.um_klines_1h"] < lake.silver.um_klines_1h.version
    # the pinned manifest shows the old file, and SQL reads the pinned version too
    old_sha = pinned.bronze.files(key=new_key.key)["sha256"].item()
    assert old_sha != lake.bronze.files(key=new_key.key)["sha256"].item()
    n = pinned.sql("select count(*) n from silver.um_klines_1h where symbol = 'BTCUSDT'")["n"].item()
    assert n == 24
    # and the same version read through the table API
    t = lake.silver.um_klines_1h
    np.testing.assert_array_equal(t.read("BTCUSDT", version=saved["silver.um_klines_1h"])["close"].to_numpy(),
                                  old_btc["close"].to_numpy())


def test_pinned_lake_refuses_every_write(tmp_path, builder):
    builder.klines("um", "BTCUSDT", "1h", "2024-05-01")
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    ingest(lake, end="2024-05-01")
    pinned = lake.at(lake.versions())
    for call in (lambda: pinned.ingest("um", "klines", interval="1h", progress=False, today=TODAY),
                 lambda: pinned.optimize(), lambda: pinned.vacuum("30D"), lambda: pinned.migrate(),
                 lambda: pinned.bronze.upsert(lake.bronze.files().to_dict("records"))):
        with pytest.raises(PermissionError, match="read-only|pinned"):
            call()
    assert "read-only" in repr(pinned)


def test_history_names_the_ingest_and_counts_rows(tmp_path, builder):
    builder.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=1)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    ingest(lake, end="2024-05-01")
    builder.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=2)               # republished: 24 replaced
    ingest(lake, end="2024-05-01")
    t = lake.silver.um_klines_1h
    h = t.history()
    assert list(h.columns) == ["version", "timestamp", "operation", "rows_added", "rows_removed", "note"]
    assert h["version"].tolist() == sorted(h["version"], reverse=True) and h["version"].iloc[0] == t.version
    writes = h[h["operation"] == "WRITE"]
    assert writes["rows_added"].tolist() == [24, 24] and writes["rows_removed"].tolist() == [24, 0]
    assert writes["note"].str.contains("ingest um_klines_1h").all()
    assert str(h["timestamp"].dtype) == "datetime64[ns, UTC]" or "UTC" in str(h["timestamp"].dtype)


def test_read_as_of_a_timestamp_and_lake_at_a_timestamp(tmp_path, builder):
    builder.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=1)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    ingest(lake, end="2024-05-01")
    time.sleep(0.05)
    between = pd.Timestamp.now(tz="UTC")
    time.sleep(0.05)
    builder.klines("um", "BTCUSDT", "1h", "2024-05-02", seed=1)
    ingest(lake)
    t = lake.silver.um_klines_1h
    assert len(t.read("BTCUSDT", as_of=between)) == 24 and len(t.read("BTCUSDT")) == 48
    assert len(lake.at(between).silver.um_klines_1h["BTCUSDT"]) == 24
    before_any = lake.silver.um_klines_1h.history()["timestamp"].min() - pd.Timedelta(seconds=1)
    assert lake.at(before_any).silver.tables == [] and lake.at(before_any).versions() == {}
    assert len(lake.at({"silver.um_klines_1h": 1}).silver.um_klines_1h["BTCUSDT"]) == 24
    with pytest.raises(ValueError, match="version"):
        t.read(version=999)
    with pytest.raises(ValueError):
        lake.at({"um_klines_1h": 1})
    with pytest.raises(ValueError, match="not both"):
        t.read(version=1, as_of=between)


def test_lake_at_a_run_record(tmp_path, builder):
    builder.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=1)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    ingest(lake, end="2024-05-01")
    record = {"pipeline": "daily", "versions": {"before": {}, "after": lake.versions()}}
    builder.klines("um", "BTCUSDT", "1h", "2024-05-02", seed=1)
    ingest(lake)
    assert len(lake.at(record).silver.um_klines_1h["BTCUSDT"]) == 24
    path = tmp_path / "lake" / "_runs" / "daily" / "t0" / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    assert len(lake.at(str(path)).silver.um_klines_1h["BTCUSDT"]) == 24
    assert len(lake.silver.um_klines_1h["BTCUSDT"]) == 48
