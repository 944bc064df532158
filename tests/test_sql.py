"""lake.sql(): DuckDB over silver/gold/bronze.files, read-only, pushdown, local and S3."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.fsopen import OpenCounter

TODAY = dt.date(2026, 11, 26)


def build(url, opts, tmp) -> tuple:
    root = tmp / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    for s in ("AAAUSDT", "BBBUSDT", "CCCUSDT"):
        for d in ("2024-01-31", "2024-02-01"):
            b.klines("um", s, "1h", d, seed=len(s))
            b.klines("um", s, "1m", d)
    b.funding("um", "AAAUSDT", "2024-01")
    lake = cl.Lake(url, storage_options=opts, archive=cl.BinanceArchive(root.as_uri()))
    for interval in ("1h", "1m"):
        assert lake.ingest("um", "klines", interval=interval, progress=False, today=TODAY).ok
    assert lake.ingest("um", "fundingRate", progress=False, today=TODAY).ok
    return lake, b


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sql")
    return build(str(tmp / "lake"), None, tmp)


@pytest.fixture(scope="module")
def s3_sql_lake(moto_process, tmp_path_factory):
    moto_process.reset()
    url = moto_process.create_bucket("sql-lake")
    return build(url, moto_process.auth_options(), tmp_path_factory.mktemp("sql-s3"))


@pytest.fixture(params=["local", "s3"])
def lake_and_builder(request):
    return request.getfixturevalue("local_lake" if request.param == "local" else "s3_sql_lake")


def test_sql_joins_silver_tables_and_bronze_files(lake_and_builder):
    lake, b = lake_and_builder
    counts = lake.sql("select symbol, count(*) as n from silver.um_klines_1h group by symbol order by symbol")
    assert counts.to_dict("list") == {"symbol": ["AAAUSDT", "BBBUSDT", "CCCUSDT"], "n": [48, 48, 48]}
    joined = lake.sql("""
        select h.symbol, count(*) as n, sum(m.volume) as vol
        from silver.um_klines_1h h join silver.um_klines_1m m
          on m.symbol = h.symbol and m.open_time >= h.open_time
         and m.open_time < h.open_time + interval 1 hour
        where h.symbol = 'BBBUSDT' group by 1""")
    direct = lake.silver.um_klines_1m["BBBUSDT"]
    assert joined["n"].item() == 2880 and joined["vol"].item() == pytest.approx(direct["volume"].sum())
    files = lake.sql("""
        select f.symbol, count(distinct f.key) as files, min(k.open_time) as first
        from bronze.files f join silver.um_klines_1h k on k.symbol = f.symbol
        where f.interval = '1h' group by 1 order by 1""")
    assert files["files"].tolist() == [2, 2, 2]
    assert files["first"].iloc[0] == pd.Timestamp("2024-01-31", tz="UTC")
    fr = lake.sql("select count(*) n from silver.um_funding_rate where symbol = 'AAAUSDT'")["n"].item()
    assert fr == len(lake.silver.um_funding_rate["AAAUSDT"])


@pytest.mark.parametrize("query, words", [
    ("select * from silver.um_klines_5m", ["um_klines_5m", "silver.um_klines_1h", "bronze.files"]),
    ("select * from gold.bars", ["bars", "silver.um_klines_1m"]),
    ("selec 1", ["SQL", "silver.um_klines_1h"]),
    ("COPY (select 1) TO 'out.csv'", ["read-only", "COPY"]),
    ("INSERT INTO silver.um_klines_1h SELECT * FROM silver.um_klines_1h", ["read-only"]),
    ("CREATE TABLE x AS SELECT 1", ["read-only"]),
    ("ATTACH 'other.db'", ["read-only"]),
    ("INSTALL httpfs", ["read-only"]),
    ("LOAD httpfs", ["read-only"]),
    ("SET enable_external_access = true", ["read-only"]),
    ("select * from read_csv('/etc/hostname')", ["disabled"]),
    ("select * from read_parquet('/tmp/*.parquet')", ["disabled"]),
    ("select 1; select 2", ["one statement"]),
    ("", ["SQL"]),
])
def test_bad_sql_writes_and_unknown_tables_raise_valueerror(local_lake, query, words):
    lake, _ = local_lake
    with pytest.raises(ValueError) as err:
        lake.sql(query)
    for w in words:
        assert w in str(err.value)


def test_a_symbol_filter_opens_only_that_symbols_files(local_lake):
    lake, _ = local_lake
    silver_dir = lake.storage.local_path("silver")
    with OpenCounter(silver_dir) as c:
        out = lake.sql("select count(*) n from silver.um_klines_1m where symbol = 'CCCUSDT'")
    assert out["n"].item() == 2880
    assert c.count >= 1 and all("symbol=CCCUSDT" in p for p in c.opened), c.opened
    with OpenCounter(silver_dir) as c:
        lake.sql("select count(*) from silver.um_klines_1m")
    assert len({p for p in c.opened}) >= 3                    # the counter does see every symbol's files
