"""The Lake end to end: an archive written by the fixture builder, ingested through the real
BinanceArchive source, stored on a temporary directory and S3 (moto, in its own process), read back.

Expected values always come from what the builder says it wrote, never from the lake itself.
"""
from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)   # fixes which months count as closed


@pytest.fixture(params=["local", "s3"])
def lake_url(request, tmp_path):
    """(url, storage_options) of an empty lake on each kind of storage."""
    if request.param == "local":
        return str(tmp_path / "lake"), None
    lake_bucket = request.getfixturevalue("s3_lake")
    return lake_bucket.url, lake_bucket.storage_options


@pytest.fixture
def archive(tmp_path):
    """A file:// archive mirror and its builder (the S3 archive has its own tests below)."""
    root = tmp_path / "archive"
    root.mkdir()
    return ArchiveBuilder(root.as_uri())


def make_lake(lake_url, builder, storage_options=None) -> cl.Lake:
    url, opts = lake_url
    return cl.Lake(url, storage_options=opts,
                   archive=cl.BinanceArchive(builder.url, storage_options=storage_options))


def expected(builder, keys) -> pd.DataFrame:
    return pd.concat([builder.frame(k) for k in keys]).set_index("open_time").sort_index()


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.index) == list(want.index)
    for col in want.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)


# ------------------------------------------------------------------ ingest and read back
def test_klines_round_trip_on_every_storage(lake_url, archive):
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    btc = [archive.klines("um", "BTCUSDT", "1m", d, seed=1) for d in days]
    eth = [archive.klines("um", "ETHUSDT", "1m", d, seed=2, missing=[slice(100, 130)] if d == days[1] else ())
           for d in days]
    lake = make_lake(lake_url, archive)
    report = lake.ingest("um", "klines", interval="1m", start=days[0], end=days[-1], progress=False,
                         today=TODAY)
    assert report.ok, report.errors
    assert sorted(report.files["key"]) == sorted(k.key for k in btc + eth)
    assert set(report.files["status"]) == {"downloaded"}
    assert report.rows == {"um_klines_1m": 3 * 1440 + 3 * 1440 - 30}

    t = lake.silver.um_klines_1m
    assert t.symbols == ["BTCUSDT", "ETHUSDT"]
    assert_same_rows(t["BTCUSDT"], expected(archive, btc))
    assert_same_rows(t["ETHUSDT"], expected(archive, eth))
    assert str(t["BTCUSDT"].index.dtype) == "datetime64[us, UTC]"

    gaps = report.gaps
    assert len(gaps) == 1 and gaps.iloc[0]["symbol"] == "ETHUSDT" and gaps.iloc[0]["missing"] == 30
    assert gaps.iloc[0]["start"] == pd.Timestamp("2024-03-05 01:40", tz="UTC")

    cov = t.coverage().set_index("symbol")
    assert cov.loc["ETHUSDT", "missing"] == 30 and cov.loc["BTCUSDT", "missing"] == 0
    assert cov.loc["ETHUSDT", "expected"] == 3 * 1440


def test_second_ingest_downloads_nothing_and_duplicates_nothing(lake_url, archive):
    keys = [archive.klines("spot", "BTCUSDT", "1h", d, duplicates=3) for d in ("2024-05-01", "2024-05-02")]
    lake = make_lake(lake_url, archive)
    first = lake.ingest("spot", "klines", "BTCUSDT", interval="1h", start="2024-05-01",
                        end="2024-05-02", progress=False, today=TODAY)
    fetched_at = lake.bronze.files()["fetched_at"].tolist()
    second = lake.ingest("spot", "klines", "BTCUSDT", interval="1h", start="2024-05-01",
                         end="2024-05-02", progress=False, today=TODAY)
    assert first.ok and second.ok
    assert set(second.files["status"]) == {"unchanged"} and len(second.files) == 2
    assert second.rows == {"spot_klines_1h": 0}
    assert lake.bronze.files()["fetched_at"].tolist() == fetched_at
    df = lake.silver.spot_klines_1h["BTCUSDT"]
    assert df.index.is_unique and len(df) == 48
    assert_same_rows(df, expected(archive, keys))


def test_republished_file_is_fetched_again_and_its_partition_rebuilt(lake_url, archive):
    archive.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=1)
    lake = make_lake(lake_url, archive)
    lake.ingest("um", "klines", "BTCUSDT", interval="1h", start="2024-05-01", end="2024-05-01",
                progress=False, today=TODAY)
    new = archive.klines("um", "BTCUSDT", "1h", "2024-05-01", seed=99)   # Binance re-uploads
    report = lake.ingest("um", "klines", "BTCUSDT", interval="1h", start="2024-05-01",
                         end="2024-05-01", progress=False, today=TODAY)
    assert report.files["status"].tolist() == ["downloaded"]
    assert_same_rows(lake.silver.um_klines_1h["BTCUSDT"], expected(archive, [new]))


def test_spot_millisecond_and_microsecond_files_meet_on_the_same_grid(lake_url, archive):
    ms = archive.klines("spot", "ETHUSDT", "1m", "2024-12-31")
    us = archive.klines("spot", "ETHUSDT", "1m", "2025-01-01")
    assert archive.file(ms).unit == "ms" and archive.file(us).unit == "us"
    lake = make_lake(lake_url, archive)
    lake.ingest("spot", "klines", "ETHUSDT", interval="1m", start="2024-12-31", end="2025-01-01",
                progress=False, today=TODAY)
    df = lake.silver.spot_klines_1m["ETHUSDT"]
    assert len(df) == 2880
    assert (np.diff(df.index.asi8) == 60_000_000).all()       # µs index, one minute apart
    assert df.index[0] == pd.Timestamp("2024-12-31", tz="UTC")
    assert df.index[-1] == pd.Timestamp("2025-01-01 23:59", tz="UTC")
    span = df["close_time"] - df.index          # each file keeps its own unit's close_time
    assert (span.iloc[:1440] == pd.Timedelta(milliseconds=59_999)).all()
    assert (span.iloc[1440:] == pd.Timedelta(microseconds=59_999_999)).all()
    assert_same_rows(df, expected(archive, [ms, us]))


def test_monthly_file_wins_for_a_closed_month_and_daily_files_fill_the_rest(archive, tmp_path):
    monthly = archive.klines("um", "BTCUSDT", "1h", "2024-01", seed=5)
    for d in ("2024-01-10", "2024-01-11"):                      # also published daily, differently
        archive.klines("um", "BTCUSDT", "1h", d, seed=6)
    feb = [archive.klines("um", "BTCUSDT", "1h", f"2024-02-0{i}", seed=7) for i in (1, 2)]
    lake = make_lake((str(tmp_path / "lake"), None), archive)
    report = lake.ingest("um", "klines", "BTCUSDT", interval="1h", start="2024-01-01",
                         end="2024-02-02", progress=False, today=TODAY)
    assert sorted(report.files["key"]) == sorted([monthly.key] + [k.key for k in feb])
    df = lake.silver.um_klines_1h["BTCUSDT"]
    jan = df.loc[:"2024-01-31 23:00"]
    assert (jan["source"] == "archive_monthly").all() and len(jan) == 31 * 24
    assert_same_rows(df, expected(archive, [monthly] + feb))


def test_daily_and_monthly_of_the_same_month_merge_with_monthly_winning(archive, tmp_path):
    """An open month ingested from daily files, later closed and published monthly."""
    lake = make_lake((str(tmp_path / "lake"), None), archive)
    daily = archive.klines("um", "ETHUSDT", "1h", "2024-06-03", seed=1)
    lake.ingest("um", "klines", "ETHUSDT", interval="1h", start="2024-06-03", end="2024-06-03",
                progress=False, today=dt.date(2024, 6, 4))
    monthly = archive.klines("um", "ETHUSDT", "1h", "2024-06", seed=2, missing=[slice(0, 24 * 5)])
    lake.ingest("um", "klines", "ETHUSDT", interval="1h", start="2024-06-01", end="2024-06-30",
                progress=False, today=TODAY)
    df = lake.silver.um_klines_1h["ETHUSDT"]
    want = pd.concat([archive.frame(monthly), archive.frame(daily)]).drop_duplicates("open_time")
    assert_same_rows(df, want.set_index("open_time").sort_index())
    assert df.index.is_unique


def test_bad_checksum_is_quarantined_and_its_day_absent(lake_url, archive):
    good = archive.klines("um", "SOLUSDT", "1m", "2024-04-01")
    bad = archive.klines("um", "SOLUSDT", "1m", "2024-04-02", checksum="bad")
    corrupt = archive.corrupt_zip(archive.klines("um", "SOLUSDT", "1m", "2024-04-03"))
    archive.junk(archive.symbol_dir("um", "daily", "klines", "SOLUSDT", "1m"))
    lake = make_lake(lake_url, archive)
    report = lake.ingest("um", "klines", ["SOLUSDT"], interval="1m", start="2024-04-01",
                         end="2024-04-03", progress=False, today=TODAY)
    status = report.files.set_index("key")["status"]
    assert status.to_dict() == {good.key: "downloaded", bad.key: "quarantined",
                                corrupt.key: "quarantined"}
    assert not report.ok and len(report.errors) == 2
    reasons = report.files.set_index("key")["reason"]
    assert "sha256" in reasons[bad.key].lower() and "zip" in reasons[corrupt.key].lower()
    df = lake.silver.um_klines_1m["SOLUSDT"]
    assert_same_rows(df, expected(archive, [good]))
    assert lake.storage.exists(f"bronze/_quarantine/{bad.key}")
    assert not lake.storage.exists(f"bronze/{bad.key}")
    again = lake.ingest("um", "klines", ["SOLUSDT"], interval="1m", start="2024-04-01",
                        end="2024-04-03", progress=False, today=TODAY)
    assert set(again.files["status"]) == {"unchanged"}
    assert len(lake.silver.um_klines_1m["SOLUSDT"]) == 1440


def test_a_corrected_checksum_alone_heals_a_quarantined_file(lake_url, archive):
    """Binance fixes a wrong .CHECKSUM without touching the zip: the zip's listing fingerprint
    is unchanged, yet the next ingest must verify the file again and take it in."""
    good = archive.klines("um", "SOLUSDT", "1m", "2024-04-01")
    bad = archive.klines("um", "SOLUSDT", "1m", "2024-04-02", checksum="bad")
    lake = make_lake(lake_url, archive)
    kw = dict(interval="1m", start="2024-04-01", end="2024-04-02", progress=False, today=TODAY)
    first = lake.ingest("um", "klines", ["SOLUSDT"], **kw)
    assert first.files.set_index("key")["status"][bad.key] == "quarantined"
    again = lake.ingest("um", "klines", ["SOLUSDT"], **kw)     # still wrong: left alone
    assert again.files.set_index("key")["status"][bad.key] == "unchanged"
    archive._put(bad.checksum_key, archive.files[bad].checksum)   # the .CHECKSUM alone
    healed = lake.ingest("um", "klines", ["SOLUSDT"], **kw)
    assert healed.files.set_index("key")["status"][bad.key] == "downloaded", healed.files
    assert_same_rows(lake.silver.um_klines_1m["SOLUSDT"], expected(archive, [good, bad]))
    assert lake.storage.exists(f"bronze/{bad.key}")


def test_funding_rates_and_coin_m_columns(lake_url, archive):
    f1 = archive.funding("um", "BTCUSDT", "2024-01")
    f2 = archive.funding("um", "BTCUSDT", "2024-02", interval_hours=4)
    cm = archive.klines("cm", "BTCUSD_PERP", "1h", "2024-03-01")
    lake = make_lake(lake_url, archive)
    assert lake.ingest("um", "fundingRate", progress=False, today=TODAY).ok
    assert lake.ingest("cm", "klines", interval="1h", progress=False, today=TODAY).ok
    fr = lake.silver.um_funding_rate["BTCUSDT"]
    want = pd.concat([archive.frame(f1), archive.frame(f2)]).set_index("funding_time")
    assert list(fr.index) == list(want.index)
    np.testing.assert_array_equal(fr["funding_rate"], want["funding_rate"])
    assert fr["mark_price"].isna().all() and set(fr["funding_interval_hours"]) == {8, 4}
    cov = lake.silver.um_funding_rate.coverage().iloc[0]
    assert cov["missing"] == 0 and cov["rows"] == len(want)
    c = lake.silver.cm_klines_1h["BTCUSD_PERP"]
    assert {"base_volume", "taker_buy_base_volume"} <= set(c.columns) and "quote_volume" not in c
    assert_same_rows(c, expected(archive, [cm]))


# ------------------------------------------------------------------ Table reads
def test_table_reads_push_down_symbol_time_and_columns(archive, tmp_path):
    for sym in ("AAAUSDT", "BBBUSDT", "CCCUSDT"):
        for d in ("2024-01-30", "2024-01-31", "2024-02-01"):
            archive.klines("um", sym, "1h", d)
    lake = make_lake((str(tmp_path / "lake"), None), archive)
    lake.ingest("um", "klines", interval="1h", start="2024-01-30", end="2024-02-01", progress=False,
                today=dt.date(2024, 2, 2))
    t = lake.silver["um_klines_1h"]
    assert "um_klines_1h" in lake.silver and "um_klines_1h" in dir(lake.silver)
    one_day = t["BBBUSDT", "2024-01-31":"2024-01-31"]
    assert len(one_day) == 24 and one_day.index.min() == pd.Timestamp("2024-01-31", tz="UTC")
    two = t.read(["AAAUSDT", "CCCUSDT"], start="2024-02-01", columns=["close"])
    assert list(two.columns) == ["close"] and two.index.names == ["symbol", "open_time"]
    assert sorted(set(two.index.get_level_values(0))) == ["AAAUSDT", "CCCUSDT"] and len(two) == 48
    panel = t.panel("close", start="2024-01-31", end="2024-01-31")
    assert panel.shape == (24, 3)
    assert t.read(start="2024-01-31 12:00", end="2024-01-31 12:00").shape[0] == 3
    with pytest.raises(KeyError, match="ZZZUSDT"):
        t["ZZZUSDT"]
    with pytest.raises(ValueError, match="nope"):
        t.read(columns=["nope"])
    with pytest.raises(KeyError, match="um_klines_1m"):
        lake.silver["um_klines_1m"]
    assert "3 symbols" in t._repr_html_() or "3 symbols" in repr(t)


def test_interrupted_ingest_is_finished_by_the_next_run(archive, tmp_path):
    key = archive.klines("um", "BTCUSDT", "1h", "2024-05-01")
    lake = make_lake((str(tmp_path / "lake"), None), archive)
    lake.ingest("um", "klines", "BTCUSDT", interval="1h", start="2024-05-01", end="2024-05-01",
                progress=False, today=TODAY)
    # simulate a crash after bronze was written but before silver was: partition gone, flag unset
    lake.storage.remove("silver/um_klines_1h", recursive=True)
    lake.bronze.upsert(lake.bronze.files().assign(in_silver=False).to_dict("records"))
    again = cl.Lake(str(tmp_path / "lake"), archive=lake.archive)
    report = again.ingest("um", "klines", "BTCUSDT", interval="1h", start="2024-05-01",
                          end="2024-05-01", progress=False, today=TODAY)
    assert report.files["status"].tolist() == ["unchanged"] and report.rows == {"um_klines_1h": 24}
    assert_same_rows(again.silver.um_klines_1h["BTCUSDT"], expected(archive, [key]))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, words", [
    (dict(market="usdm", data_type="klines", interval="1m"), ["usdm", "spot", "um", "cm"]),
    (dict(market="um", data_type="candles", interval="1m"), ["candles", "klines"]),
    (dict(market="um", data_type="klines", interval="7m"), ["7m", "1m", "1h"]),
    (dict(market="um", data_type="klines", interval="1M"), ["1mo"]),
    (dict(market="spot", data_type="fundingRate"), ["fundingRate", "spot", "klines"]),
    (dict(market="um", data_type="klines", interval="1s"), ["1s", "spot"]),
    (dict(market="um", data_type="klines", interval="1m", start="2024-02-01", end="2024-01-01"),
     ["2024-02-01", "2024-01-01"]),
])
def test_bad_input_raises_before_any_download(kwargs, words, tmp_path):
    # an archive at an address nothing listens on: any I/O would fail differently
    archive = cl.BinanceArchive("s3://data.binance.vision", storage_options={
        "anon": True, "endpoint_url": "http://127.0.0.1:9", "client_kwargs": {"region_name": "ap-northeast-1"}})
    lake = cl.Lake(str(tmp_path / "lake"), archive=archive)
    with pytest.raises(ValueError) as err:
        lake.ingest(progress=False, **kwargs)
    for w in words:
        assert w in str(err.value)


def test_unknown_symbol_names_close_matches(archive, tmp_path):
    archive.klines("um", "BTCUSDT", "1h", "2024-05-01")
    lake = make_lake((str(tmp_path / "lake"), None), archive)
    with pytest.raises(ValueError, match="BTCUSDT"):
        lake.ingest("um", "klines", "BTCUSTD", interval="1h", progress=False, today=TODAY)


def test_report_renders_for_people(archive, tmp_path):
    archive.klines("um", "BTCUSDT", "1h", "2024-05-01")
    archive.klines("um", "BTCUSDT", "1h", "2024-05-02", checksum="bad")
    lake = make_lake((str(tmp_path / "lake"), None), archive)
    r = lake.ingest("um", "klines", interval="1h", progress=False, today=TODAY)
    text, page = repr(r), r._repr_html_()
    assert "\n" not in text and "1 downloaded" in text and "1 quarantined" in text
    assert "quarantined" in page and "coverage()" in page
    assert any("REST" in n for n in r.notes)


# ------------------------------------------------------------------ the archive on S3
def test_ingest_from_an_s3_archive_endpoint_into_an_s3_lake(s3_archive, s3_lake):
    """The whole story against moto: anonymous archive bucket, authenticated lake bucket."""
    b = s3_archive.builder
    ms = b.klines("spot", "BTCUSDT", "1m", "2024-12-31")
    us = b.klines("spot", "BTCUSDT", "1m", "2025-01-01", missing=[slice(10, 20)])
    monthly = b.klines("spot", "BTCUSDT", "1m", "2024-11")
    b.klines("spot", "BTCUSDT", "1m", "2024-11-15", seed=3)               # loses to the monthly
    bad = b.klines("spot", "BTCUSDT", "1m", "2025-01-02", checksum="bad")
    delisted = b.klines("spot", "LUNAUSDT", "1m", "2024-11-02")           # only old files
    b.junk(b.symbol_dir("spot", "daily", "klines", "BTCUSDT", "1m"))
    b.junk(b.symbol_dir("spot", "monthly", "klines", "BTCUSDT", "1m"))
    lake = cl.Lake(s3_lake.url, storage_options=s3_lake.storage_options,
                   archive=cl.BinanceArchive(s3_archive.url, storage_options=s3_archive.storage_options))
    report = lake.ingest("spot", "klines", interval="1m", start="2024-11-01", end="2025-01-02",
                         progress=False, today=TODAY)
    files = report.files.set_index("key")["status"]
    assert files.to_dict() == {ms.key: "downloaded", us.key: "downloaded", monthly.key: "downloaded",
                               bad.key: "quarantined", delisted.key: "downloaded"}
    t = lake.silver.spot_klines_1m
    assert t.symbols == ["BTCUSDT", "LUNAUSDT"]
    btc = t["BTCUSDT"]
    assert_same_rows(btc, expected(b, [monthly, ms, us]))
    assert len(btc) == 30 * 1440 + 1440 + 1430
    assert btc.loc["2025-01-02":].empty                                  # the quarantined day
    again = lake.ingest("spot", "klines", interval="1m", start="2024-11-01", end="2025-01-02",
                        progress=False, today=TODAY)
    assert set(again.files["status"]) == {"unchanged"} and len(again.files) == 5
    assert len(t["BTCUSDT"]) == len(btc) and t["BTCUSDT"].index.is_unique
    assert (lake.bronze.verify()["status"].isin(["ok", "quarantined", "not_published"])).all()
