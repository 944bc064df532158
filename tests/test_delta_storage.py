"""Storage URLs and options: the one mapping from s3fs-style storage_options to delta-rs,
memory:// refused, credentials never shown, and the lake's tables really are Delta tables
that deltalake and DuckDB read without cryptolake."""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pytest
from deltalake import DeltaTable

import cryptolake as cl
from cryptolake.storage import Storage, delta_options
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)
SECRET = "s3cr3t-Do-Not-Print-9f8e7d"


# ------------------------------------------------------------------ the mapping, a test per key
@pytest.mark.parametrize("opts, want", [
    ({"key": "AKIA1"}, {"AWS_ACCESS_KEY_ID": "AKIA1"}),
    ({"secret": "sek"}, {"AWS_SECRET_ACCESS_KEY": "sek"}),
    ({"token": "tok"}, {"AWS_SESSION_TOKEN": "tok"}),
    ({"endpoint_url": "https://s3.example.com"}, {"AWS_ENDPOINT_URL": "https://s3.example.com"}),
    ({"endpoint_url": "http://127.0.0.1:9000"},
     {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"}),
    ({"client_kwargs": {"endpoint_url": "http://h:1"}}, {"AWS_ENDPOINT_URL": "http://h:1", "AWS_ALLOW_HTTP": "true"}),
    ({"client_kwargs": {"region_name": "ap-northeast-1"}}, {"AWS_REGION": "ap-northeast-1"}),
    ({"anon": True}, {"AWS_SKIP_SIGNATURE": "true"}),
    ({"anon": False}, {}),
    ({"profile": "research"}, {"AWS_PROFILE": "research"}),
    ({"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}),
    ({"default_block_size": 1 << 20, "skip_instance_cache": True}, {}),   # fsspec-only keys
])
def test_s3_storage_options_map_to_delta_rs(opts, want):
    assert delta_options(opts, "s3") == want


@pytest.mark.parametrize("proto, opts, want", [
    ("gs", {"token": "/keys/sa.json"}, {"GOOGLE_SERVICE_ACCOUNT": "/keys/sa.json"}),
    ("gs", {"token": {"type": "service_account"}}, {"GOOGLE_SERVICE_ACCOUNT_KEY": '{"type": "service_account"}'}),
    ("gs", {"token": "anon"}, {"GOOGLE_SKIP_SIGNATURE": "true"}),
    ("gs", {"anon": True}, {"GOOGLE_SKIP_SIGNATURE": "true"}),
    ("az", {"account_name": "acct"}, {"AZURE_STORAGE_ACCOUNT_NAME": "acct"}),
    ("az", {"account_key": "k"}, {"AZURE_STORAGE_ACCOUNT_KEY": "k"}),
    ("az", {"sas_token": "sv=1"}, {"AZURE_STORAGE_SAS_TOKEN": "sv=1"}),
    ("az", {"tenant_id": "t", "client_id": "c", "client_secret": "s"},
     {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}),
    ("abfs", {"anon": True}, {"AZURE_SKIP_SIGNATURE": "true"}),
])
def test_gs_and_az_storage_options_map_to_delta_rs(proto, opts, want):
    assert delta_options(opts, proto) == want


def test_full_moto_style_options_map_to_what_delta_rs_needs():
    opts = {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:5000",
            "client_kwargs": {"region_name": "ap-northeast-1"}}
    assert delta_options(opts, "s3") == {
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ALLOW_HTTP": "true", "AWS_REGION": "ap-northeast-1"}


# ------------------------------------------------------------------ URLs
@pytest.mark.parametrize("url", ["memory://lake", "memory://"])
def test_memory_lake_is_refused_with_a_pointer_to_a_temp_dir(url):
    with pytest.raises(ValueError, match="temporary directory"):
        cl.Lake(url)


def test_unknown_protocol_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="s3://"):
        cl.Lake("ftp://host/lake")


def test_file_url_and_plain_path_are_the_same_lake(tmp_path):
    a = Storage((tmp_path / "l").as_uri())
    b = Storage(str(tmp_path / "l"))
    assert a.table_uri("silver/x") == b.table_uri("silver/x") == str(tmp_path / "l" / "silver" / "x")


def test_s3_table_uri_keeps_the_bucket_and_prefix():
    s = Storage("s3://bucket/some/prefix", {"key": "k", "secret": SECRET, "endpoint_url": "http://127.0.0.1:9"})
    assert s.table_uri("silver/um_klines_1m") == "s3://bucket/some/prefix/silver/um_klines_1m"
    assert SECRET not in repr(s)


# ------------------------------------------------------------------ credentials never shown
def _ingest(lake, builder):
    builder.klines("um", "BTCUSDT", "1h", "2024-05-01")
    return lake.ingest("um", "klines", "BTCUSDT", interval="1h", start="2024-05-01", end="2024-05-01",
                       progress=False, today=TODAY)


def test_credentials_never_appear_in_reprs_history_or_errors(s3_delta, tmp_path):
    s3_delta.create_bucket("lake")
    opts = {**s3_delta.auth_options()}
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    lake = cl.Lake("s3://lake/x", storage_options=opts, archive=cl.BinanceArchive(root.as_uri()))
    secret = opts["secret"]
    assert _ingest(lake, b).ok
    t = lake.silver.um_klines_1h
    shown = [repr(lake), lake._repr_html_(), repr(t), t._repr_html_(), repr(lake.bronze), repr(lake.storage),
             t.history().to_string(), json.dumps(lake.versions())]
    # the raw commit entries in the Delta log carry no option either
    log = DeltaTable("s3://lake/x/silver/um_klines_1h", storage_options=s3_delta.delta_options()).history()
    shown.append(json.dumps(log, default=str))
    for text in shown:
        assert secret not in text and "AWS_SECRET_ACCESS_KEY" not in text
    # an error against a wrong endpoint names no credential (a recognisable fake one here)
    bad = cl.Lake("s3://lake/x", storage_options={"key": "AKIAFAKE", "secret": SECRET,
                                                   "endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(Exception) as err:
        bad.silver.um_klines_1h.read()
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)


# ------------------------------------------------------------------ readable without cryptolake
def test_tables_are_delta_tables_that_deltalake_and_duckdb_read_directly(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    keys = [b.klines("um", s, "1h", d) for s in ("BTCUSDT", "ETHUSDT") for d in ("2024-01-31", "2024-02-01")]
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    assert lake.ingest("um", "klines", interval="1h", progress=False, today=TODAY).ok
    want = pd.concat([b.frame(k).assign(symbol=k.symbol) for k in keys])
    d = DeltaTable(str(tmp_path / "lake" / "silver" / "um_klines_1h"))
    assert d.metadata().partition_columns == ["symbol", "month"]
    got = d.to_pandas().sort_values(["symbol", "open_time"], ignore_index=True)
    assert len(got) == len(want) == 96
    assert str(got["open_time"].dtype) == "datetime64[us, UTC]"
    assert got["close"].tolist() == want.sort_values(["symbol", "open_time"])["close"].tolist()
    assert sorted(set(zip(got["symbol"], got["month"]))) == [
        ("BTCUSDT", "2024-01"), ("BTCUSDT", "2024-02"), ("ETHUSDT", "2024-01"), ("ETHUSDT", "2024-02")]
    con = duckdb.connect()
    con.register("k", d.to_pyarrow_dataset())
    n = con.execute("select count(*) from k where symbol = 'ETHUSDT' and month = '2024-02'").fetchone()[0]
    assert n == 24
    m = DeltaTable(str(tmp_path / "lake" / "bronze" / "_manifest")).to_pandas()
    assert sorted(m["key"]) == sorted(k.key for k in keys) and set(m["status"]) == {"stored"}
    assert m["in_silver"].all()


def test_manifest_accepts_any_status_string(tmp_path):
    lake = cl.Lake(str(tmp_path / "lake"))
    row = {"key": "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-05-02.zip", "table": "um_klines_1h",
           "market": "um", "data_type": "klines", "symbol": "BTCUSDT", "interval": "1h", "cadence": "daily",
           "period": "2024-05-02", "month": "2024-05", "bytes": None, "sha256": None, "upstream_size": None,
           "etag": None, "last_modified": None, "fetched_at": None, "status": "missing",
           "reason": "the archive has no file for this day", "in_silver": False}
    lake.bronze.upsert([row])
    again = cl.Lake(str(tmp_path / "lake"))
    files = again.bronze.files(status="missing")
    assert files["key"].tolist() == [row["key"]] and files["bytes"].isna().all()
    assert again.bronze.verify()["status"].tolist() == ["not_published"]   # the archive lacks it


def test_a_stale_in_silver_mark_does_not_overwrite_a_newer_file_row(tmp_path):
    """Writer A marks its file in silver late (with its next MERGE); writer B stored a
    republished version of that key meanwhile. B's row (new sha256, not in silver) must stay,
    so the next ingest rebuilds the month from the new bytes."""
    base = {"key": "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-05-02.zip", "table": "um_klines_1h",
            "market": "um", "data_type": "klines", "symbol": "BTCUSDT", "interval": "1h", "cadence": "daily",
            "period": "2024-05-02", "month": "2024-05", "bytes": 10, "upstream_size": 10, "etag": None,
            "last_modified": None, "fetched_at": None, "status": "stored", "reason": ""}
    a = cl.Lake(str(tmp_path / "lake"))
    a.bronze.upsert([{**base, "sha256": "old", "in_silver": False}])
    b = cl.Lake(str(tmp_path / "lake"))
    b.bronze.upsert([{**base, "sha256": "new", "in_silver": False}])          # B: republished bytes
    a.bronze.upsert([{**base, "sha256": "old", "in_silver": True}])           # A: its late mark
    row = cl.Lake(str(tmp_path / "lake")).bronze.files().iloc[0]
    assert row["sha256"] == "new" and not row["in_silver"]
    b.bronze.upsert([{**base, "sha256": "new", "in_silver": True}])           # a matching mark applies
    assert bool(cl.Lake(str(tmp_path / "lake")).bronze.files().iloc[0]["in_silver"])


def test_an_s3_lake_is_read_by_deltalake_and_duckdb_without_cryptolake(s3_lake, tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    keys = [b.klines("um", s, "1h", "2024-03-01") for s in ("BTCUSDT", "ETHUSDT")]
    lake = cl.Lake(s3_lake.url, storage_options=s3_lake.storage_options, archive=cl.BinanceArchive(root.as_uri()))
    assert lake.ingest("um", "klines", interval="1h", progress=False, today=TODAY).ok
    so = delta_options(s3_lake.storage_options, "s3")          # what a user passes to deltalake directly
    d = DeltaTable(f"{s3_lake.url}/silver/um_klines_1h", storage_options=so)
    got = d.to_pandas().sort_values(["symbol", "open_time"], ignore_index=True)
    want = pd.concat([b.frame(k) for k in keys], ignore_index=True)
    assert got["close"].tolist() == want["close"].tolist()
    con = duckdb.connect()
    con.register("k", d.to_pyarrow_dataset())
    assert con.execute("select count(*) from k where symbol = 'ETHUSDT'").fetchone()[0] == 24
    m = DeltaTable(f"{s3_lake.url}/bronze/_manifest", storage_options=so).to_pandas()
    assert sorted(m["key"]) == sorted(k.key for k in keys)


def test_bronze_bytes_on_s3_are_tried_ten_times_unless_the_user_says_otherwise():
    """botocore's default 5 tries let a store answering 500 to 30% of writes fail about one
    write in 400 (the storage fault test then failed about one run in 20)."""
    from cryptolake.storage import S3_MAX_ATTEMPTS, Storage
    s = Storage("s3://some-bucket/lake", {"anon": True, "endpoint_url": "http://127.0.0.1:9"})
    assert s.fs.config_kwargs["retries"] == {"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"}
    assert S3_MAX_ATTEMPTS >= 10
    assert "config_kwargs" not in s._options                 # the user's options stay theirs
    mine = Storage("s3://some-bucket/lake2", {"anon": True, "config_kwargs": {"retries": {"max_attempts": 3}}})
    assert mine.fs.config_kwargs["retries"] == {"max_attempts": 3}
