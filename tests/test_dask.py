"""Scale-out on Dask: a LocalCluster with two worker processes against moto S3 in its own
process. Ingest and gold builds run per symbol on the workers; reads go through to_dask()."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder
from tests.test_gold import AGG, pandas_bars

TODAY = dt.date(2026, 11, 26)
SYMS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1", memory_limit="2GiB") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def archive(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    for s in SYMS:
        for d in ("2024-03-30", "2024-03-31", "2024-04-01"):
            b.klines("um", s, "1m", d, missing=[slice(10, 20)] if (s, d) == ("ETHUSDT", "2024-03-31") else ())
    return b


def test_ingest_and_build_gold_on_cluster_then_read_through_to_dask(client, archive, s3_lake, tmp_path):
    arch = cl.BinanceArchive(archive.url)
    lake = cl.Lake(s3_lake.url, storage_options=s3_lake.storage_options, archive=arch)
    rep = lake.ingest("um", "klines", SYMS[:2], interval="1m", start="2024-03-30", end="2024-04-01",
                      progress=False, today=TODAY, client=client)
    assert rep.ok and rep.rows == {"um_klines_1m": 2 * 3 * 1440 - 10}
    v1 = lake.silver.um_klines_1m.version
    # a second run on the cluster: unchanged files, nothing doubled; then the third symbol
    again = lake.ingest("um", "klines", SYMS[:2], interval="1m", start="2024-03-30", end="2024-04-01",
                        progress=False, today=TODAY, client=client)
    assert again.counts()["unchanged"] == 6 and again.rows == {"um_klines_1m": 0}
    lake.ingest("um", "klines", ["SOLUSDT"], interval="1m", start="2024-03-30", end="2024-04-01",
                progress=False, today=TODAY, client=client)
    # the same ingest on one machine gives the same rows
    local = cl.Lake(str(tmp_path / "local"), archive=arch)
    local.ingest("um", "klines", SYMS, interval="1m", start="2024-03-30", end="2024-04-01",
                 progress=False, today=TODAY)
    t = lake.silver.um_klines_1m
    pd.testing.assert_frame_equal(t.read(SYMS), local.silver.um_klines_1m.read(SYMS))
    assert len(lake.bronze.manifest()) == len(local.bronze.manifest()) == 9

    ddf = t.to_dask()
    got = ddf.compute().sort_values(["symbol", "open_time"]).reset_index(drop=True)
    exp = t.read_arrow().to_pandas()
    assert ddf.npartitions >= 6
    pd.testing.assert_frame_equal(got[exp.columns.tolist()], exp, check_dtype=False)
    old = t.to_dask(version=v1).compute()
    assert sorted(old["symbol"].unique()) == SYMS[:2] and len(old) == 2 * 3 * 1440 - 10
    assert len(lake.at(lake.versions()).silver.um_klines_1m.to_dask().compute()) == len(exp)

    gold = lake.build_gold("bars", "um_klines_1m", rule="1h", phases=["0min", "30min"], client=client,
                           progress=False)
    assert sorted(gold["symbol"]) == SYMS
    src = local.silver.um_klines_1m.read("ETHUSDT").reset_index()
    exp = pandas_bars(src, "1h", offset=pd.Timedelta("30min"), full=60)
    got = lake.gold.um_bars_1h.read("ETHUSDT", phase="30min")[list(AGG)]
    pd.testing.assert_frame_equal(got, exp, check_freq=False, check_names=False, check_index_type=False)
    assert lake.gold.stale().empty
    g = lake.gold.um_bars_1h.to_dask().compute()
    assert len(g) == len(lake.gold.um_bars_1h.read_arrow())


def test_bad_request_on_cluster_raises_before_any_task(client, s3_lake):
    lake = cl.Lake(s3_lake.url, storage_options=s3_lake.storage_options)
    with pytest.raises(ValueError, match="unknown market"):
        lake.ingest("futures", "klines", ["BTCUSDT"], interval="1m", client=client)
    assert lake.silver.tables == []
