"""REST top-up wired into lake.ingest: the days the archive lacks, merge strategies,
conflicts, the archive replacing REST days, and bad input — against a local fake Binance."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.layers.silver import MergeConflict
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.rest_server import FakeBinance, funding_rows, kline_rows

TODAY = dt.date(2024, 3, 5)


@pytest.fixture
def site(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    b.klines("um", "BTCUSDT", "1h", "2024-03-01")
    b.klines("um", "BTCUSDT", "1h", "2024-03-02")
    rows = kline_rows("um", "BTCUSDT", "1h", "2024-03-01", "2024-03-06")
    with FakeBinance({("um", "klines", "BTCUSDT", "1h"): rows}, symbols={"um": ["ETHUSDT"]}) as srv:
        yield b, srv, tmp_path


def lake_of(site, **kw):
    b, srv, tmp = site
    return cl.Lake(str(tmp / "lake"), archive=cl.BinanceArchive(b.url),
                   rest=cl.BinanceREST(srv.url, rate_limit=False, backoff=0.01, **kw))


def ingest(lake, **kw):
    kw = {"start": "2024-03-01", "end": "2024-03-04", "progress": False, "today": TODAY, **kw}
    return lake.ingest("um", "klines", kw.pop("symbols", "BTCUSDT"), interval="1h", **kw)


def test_rest_fills_exactly_the_days_the_archive_lacks(site):
    lake = lake_of(site)
    report = ingest(lake)
    df = lake.silver.um_klines_1h["BTCUSDT"]
    assert len(df) == 96 and df.index.is_unique
    by_day = df.groupby(df.index.floor("D"))["source"].agg(set)
    assert list(by_day) == [{"archive_daily"}, {"archive_daily"}, {"rest"}, {"rest"}]
    assert report.gaps.empty and report.ok
    pages = report.files[report.files["cadence"] == "rest"]
    assert list(pages["period"]) == ["2024-03-03", "2024-03-04"]
    asked = {pd.Timestamp(h.int("startTime"), unit="ms").date() for h in site[1].hits("/fapi/v1/klines")}
    assert asked == {dt.date(2024, 3, 3), dt.date(2024, 3, 4)}
    assert (lake.bronze.files(cadence="rest")["status"] == "stored").all()
    again = ingest(lake)                                  # complete REST days are not fetched again
    assert len(site[1].hits("/fapi/v1/klines")) == len(asked) and len(again.files) == 2


def test_the_archive_replaces_rest_days_and_conflicts_are_reported(site):
    b, srv, _ = site
    lake = lake_of(site)
    ingest(lake)
    b.klines("um", "BTCUSDT", "1h", "2024-03-03")          # published later, other values
    report = ingest(lake)
    df = lake.silver.um_klines_1h["BTCUSDT"]
    assert len(df) == 96 and df.index.is_unique
    assert set(df.loc["2024-03-03", "source"]) == {"archive_daily"}
    assert set(df.loc["2024-03-04", "source"]) == {"rest"}
    c = report.conflicts
    assert len(c) and set(c["symbol"]) == {"BTCUSDT"} and set(c["table"]) == {"um_klines_1h"}
    assert c["key"].dt.floor("D").eq(pd.Timestamp("2024-03-03", tz="UTC")).all()
    assert {"close", "volume"} <= set(c["column"])
    sql = lake.sql("SELECT count(*) AS n FROM silver.conflicts WHERE symbol = 'BTCUSDT'")
    assert sql["n"].iloc[0] == len(c)
    ingest(lake)                                             # re-runs never duplicate them
    assert lake.sql("SELECT count(*) AS n FROM silver.conflicts")["n"].iloc[0] == len(c)


@pytest.mark.parametrize("strategy,winner", [("rest_first", "rest"), ("latest", "archive_daily")])
def test_merge_strategies(site, strategy, winner):
    b, _, _ = site
    lake = lake_of(site)
    ingest(lake, merge=strategy)
    b.klines("um", "BTCUSDT", "1h", "2024-03-03")
    report = ingest(lake, merge=strategy)
    day = lake.silver.um_klines_1h["BTCUSDT"].loc["2024-03-03"]
    assert len(day) == 24 and set(day["source"]) == {winner}
    assert len(report.conflicts) > 0


def test_merge_fail_raises_on_a_conflict_and_keeps_the_lake_committed(site):
    b, _, _ = site
    lake = lake_of(site)
    ingest(lake, merge="fail")
    before = lake.silver.um_klines_1h.version
    b.klines("um", "BTCUSDT", "1h", "2024-03-03")
    with pytest.raises(MergeConflict, match="conflict"):
        ingest(lake, merge="fail")
    assert lake.silver.um_klines_1h.version == before
    assert len(lake.silver.um_klines_1h["BTCUSDT"]) == 96


def test_unknown_merge_strategy_is_refused_before_any_io(site):
    lake = lake_of(site)
    with pytest.raises(ValueError, match="archive_first, rest_first, latest, fail"):
        ingest(lake, merge="newest")
    assert site[1].requests == []


def test_unreachable_rest_is_reported_and_the_archive_part_completes(site):
    b, _, tmp = site
    lake = cl.Lake(str(tmp / "lake"), archive=cl.BinanceArchive(b.url),
                   rest=cl.BinanceREST("http://127.0.0.1:9", rate_limit=False, retries=0, timeout=2))
    report = ingest(lake)
    assert not report.ok and any("REST" in e for e in report.errors)
    assert len(lake.silver.um_klines_1h["BTCUSDT"]) == 48


def test_a_symbol_rest_does_not_know_is_reported_per_symbol(site):
    b, _, _ = site
    b.klines("um", "SOLUSDT", "1h", "2024-03-01")
    lake = lake_of(site)
    report = ingest(lake, symbols=["BTCUSDT", "SOLUSDT"])
    assert any("SOLUSDT" in e for e in report.errors)
    assert len(lake.silver.um_klines_1h["BTCUSDT"]) == 96          # the rest completes
    assert len(lake.silver.um_klines_1h["SOLUSDT"]) == 24


def test_malformed_rest_rows_are_rejected_with_their_reason(site):
    _, srv, _ = site

    def spoil(rows):
        return [["oops", *r[1:]] if i == 3 else r for i, r in enumerate(rows)]
    srv.mutate(spoil, times=10)
    lake = lake_of(site)
    report = ingest(lake)
    assert report.rejected and all(r["reason"] for r in report.rejected)
    df = lake.silver.um_klines_1h["BTCUSDT"]
    assert df.index.is_unique and (df["source"] == "rest").sum() == 48 - len(report.rejected)


def test_funding_top_up_for_the_month_not_published_yet(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    b.funding("um", "BTCUSDT", "2024-01")
    rows = funding_rows("um", "BTCUSDT", "2024-02-01", "2024-02-04")
    with FakeBinance({("um", "fundingRate", "BTCUSDT", None): rows}) as srv:
        lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url),
                       rest=cl.BinanceREST(srv.url, rate_limit=False))
        report = lake.ingest("um", "fundingRate", "BTCUSDT", start="2024-01-01", end="2024-02-03",
                             progress=False, today=dt.date(2024, 2, 4))
    fr = lake.silver.um_funding_rate["BTCUSDT"]
    assert (fr.loc["2024-02", "source"] == "rest").all() and len(fr.loc["2024-02"]) == 9
    assert fr.loc["2024-02", "mark_price"].notna().all()
    assert report.gaps.empty, report.gaps
