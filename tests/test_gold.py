"""Gold bars and funding bars on real Delta tables on disk; expected values come from pandas on
the silver rows (written here), never from the code under test."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cryptolake as cl
from cryptolake import schema
from cryptolake.layers import silver

KSCH = schema.silver_schema("um", "klines")
MIN_US = 60_000_000


def klines(start: str, end: str, seed: int, drop=()) -> pd.DataFrame:
    """1m klines on [start, end) with a random walk; `drop`: open times to leave out."""
    t = pd.date_range(start, end, freq="1min", tz="UTC", inclusive="left")
    t = t[~t.isin(pd.DatetimeIndex(list(drop), tz="UTC"))] if len(drop) else t
    rng = np.random.default_rng(seed)
    c = 100 + np.cumsum(rng.normal(0, 0.1, len(t)))
    o = np.r_[100.0, c[:-1]]
    hi = np.maximum(o, c) + rng.random(len(t)) * 0.05
    lo = np.minimum(o, c) - rng.random(len(t)) * 0.05
    v = rng.random(len(t)) * 10
    return pd.DataFrame({"open_time": t, "open": o, "high": hi, "low": lo, "close": c, "volume": v,
                         "close_time": t + pd.Timedelta("59.999s"), "quote_volume": v * c,
                         "trades": rng.integers(1, 50, len(t)), "taker_buy_volume": v / 2,
                         "taker_buy_quote_volume": v * c / 2, "source": "archive_monthly"})


def write_silver(lake, table: str, sch: pa.Schema, frames: dict[str, pd.DataFrame], tcol="open_time",
                 interval="1m"):
    parts = {}
    for sym, df in frames.items():
        month = df[tcol].dt.tz_localize(None).dt.to_period("M").astype(str)
        for m in sorted(set(month)):
            parts[(sym, m)] = pa.Table.from_pandas(df[month == m].reset_index(drop=True), schema=sch,
                                                   preserve_index=False)
    silver.write_partitions(lake.storage, "silver", table, sch, tcol, interval, parts)


AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
       "quote_volume": "sum", "trades": "sum"}


def pandas_bars(df: pd.DataFrame, rule: str, offset=None, full: int | None = None) -> pd.DataFrame:
    r = df.set_index("open_time").resample(rule, offset=offset)
    out = r.agg(AGG)
    n = r["open"].count()
    out = out[n > 0]
    if full is not None:
        out = out[n[n > 0] == full]
    return out


@pytest.fixture
def lake(tmp_path):
    lk = cl.Lake(str(tmp_path / "lake"))
    write_silver(lk, "um_klines_1m", KSCH, {
        "BTCUSDT": klines("2024-01-30 00:00", "2024-02-02 03:17", 1, drop=["2024-01-31 10:07"]),
        "ETHUSDT": klines("2024-01-31 22:00", "2024-02-01 06:00", 2)})
    return lk


def test_bars_every_phase_equal_pandas_and_partial_bars_dropped_and_counted(lake):
    rep = lake.build_gold("bars", "um_klines_1m", rule="1h", phases="all", progress=False)
    t = lake.gold.um_bars_1h
    src = lake.silver.um_klines_1m.read("BTCUSDT").reset_index()
    dropped = 0
    for k in (0, 5, 59):
        got = t.read("BTCUSDT", phase=f"{k}min")
        assert set(got["phase"]) == {f"{k}min"}
        exp_all = pandas_bars(src, "1h", offset=pd.Timedelta(minutes=k))
        exp = pandas_bars(src, "1h", offset=pd.Timedelta(minutes=k), full=60)
        assert len(exp) < len(exp_all)          # the data start/end and the dropped minute
        pd.testing.assert_frame_equal(got[list(AGG)], exp, check_freq=False, check_names=False,
                                      check_index_type=False)
    for k in range(60):
        r = src.set_index("open_time").resample("1h", offset=pd.Timedelta(minutes=k))["open"].count()
        dropped += int(((r > 0) & (r < 60)).sum())
    rec = json.loads(lake.storage.read_bytes("gold/_builds/um_bars_1h.json"))
    assert rec["symbols"]["BTCUSDT"]["partial_dropped"] == dropped
    assert int(rep.set_index("symbol").loc["BTCUSDT", "partial_dropped"]) == dropped
    assert rec["versions"] == {"silver.um_klines_1m": lake.silver.um_klines_1m.version}
    note = t.history()["note"].iloc[0]
    assert "silver.um_klines_1m@v" in note and '"rule": "1h"' in note
    # months: a bar is stored in the month of its open time
    months = sorted({m for s, m in t._partitions() if s == "BTCUSDT"})
    assert months == ["2024-01", "2024-02"]


def test_bars_calendar_rules_equal_pandas(lake):
    lake.build_gold("bars", "um_klines_1m", rule="ME", partial=True, progress=False)
    lake.build_gold("bars", "um_klines_1m", rule="W", partial=True, progress=False)
    src = lake.silver.um_klines_1m.read("BTCUSDT").reset_index()
    for rule, name in (("ME", "um_bars_me"), ("W", "um_bars_w")):
        got = lake.gold[name].read("BTCUSDT")
        exp = pandas_bars(src, rule)
        pd.testing.assert_frame_equal(got[list(AGG)], exp, check_freq=False, check_names=False,
                                      check_index_type=False)
    # partial=False (the default) drops the incomplete months: the data covers no whole month
    lake.build_gold("bars", "um_klines_1m", rule="ME", progress=False)
    assert "BTCUSDT" not in lake.gold.um_bars_me.symbols


def test_bars_fixed_phase_list_and_read_phase_filter(lake):
    lake.build_gold("bars", "um_klines_1m", rule="4h", phases=["0min", "30min"], progress=False)
    df = lake.gold.um_bars_4h.read("ETHUSDT")
    assert sorted(set(df["phase"])) == ["0min", "30min"]
    only = lake.gold.um_bars_4h.read("ETHUSDT", phase="30min")
    assert len(only) == (df["phase"] == "30min").sum() and (only.index.minute == 30).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="candles", source="um_klines_1m", rule="1h"), "allowed: bars, funding_bars"),
    (dict(kind="bars", source="um_klines_1m", rule="7q"), "unknown rule"),
    (dict(kind="bars", source="um_klines_1m", rule="90s"), "not a multiple"),
    (dict(kind="bars", source="um_klines_1m", rule="1h", phases=["61min"]), "unknown phase"),
    (dict(kind="bars", source="um_klines_1m", rule="1h", phases=["30s"]), "unknown phase"),
    (dict(kind="bars", source="um_klines_9m", rule="1h"), "no silver table"),
    (dict(kind="trade_bars", source="um_klines_1m", by="dollar", size=1e7), "aggTrades or trades"),
    (dict(kind="funding_bars", source="um_klines_1m", rule="8h"), "um_funding_rate"),
    (dict(kind="features", source="um_bars_1h", indicators=["rsi"]), "gold bars table"),
    (dict(kind="bars", source="um_klines_1m", rule="1h", colour="red"), "unknown parameter"),
])
def test_bad_build_requests_raise_and_write_nothing(lake, kwargs, match):
    before = lake.versions()
    with pytest.raises(ValueError, match=match):
        lake.build_gold(progress=False, **kwargs)
    assert lake.versions() == before and not lake.storage.exists("gold/_builds")


def test_features_unknown_indicator_and_spot_funding_raise(lake, tmp_path):
    lake.build_gold("bars", "um_klines_1m", rule="1h", progress=False)
    with pytest.raises(ValueError, match="unknown indicator 'nope'; available"):
        lake.build_gold("features", "um_bars_1h", indicators=["rsi", "nope"], progress=False)
    assert "um_features_1h" not in lake.gold
    write_silver(lake, "spot_klines_1m", schema.silver_schema("spot", "klines"),
                 {"BTCUSDT": klines("2024-01-01", "2024-01-01 02:00", 3)})
    with pytest.raises(ValueError, match="spot has none"):
        lake.build_gold("funding_bars", "spot_klines_1m", rule="1h", progress=False)


def test_gold_names_parse_and_bad_names_say_the_grammar():
    assert schema.parse_gold_name("um_trade_bars_dollar_1e7").time_col == "close_time"
    assert schema.parse_gold_name("um_bars_me").kind == "bars"
    with pytest.raises(ValueError, match="<market>_<kind>_<rule>"):
        schema.parse_gold_name("um_bars_dollar_1e7")


# ---------------------------------------------------------------- funding bars
FSCH = schema.silver_schema("um", "fundingRate")


def funding_events() -> pd.DataFrame:
    """8h settlements, then 4h from 2024-01-31 08:00, then 1h from 2024-02-01 00:00; the
    times carry the archive's few-millisecond lag."""
    t = list(pd.date_range("2024-01-30 00:00", "2024-01-31 08:00", freq="8h", tz="UTC"))
    h = [8] * len(t)
    t4 = list(pd.date_range("2024-01-31 12:00", "2024-01-31 20:00", freq="4h", tz="UTC"))
    t1 = list(pd.date_range("2024-02-01 00:00", "2024-02-02 02:00", freq="1h", tz="UTC"))
    t, h = t + t4 + t1, h + [4] * len(t4) + [1] * len(t1)
    t = pd.DatetimeIndex(t) + pd.Timedelta("3ms")
    rng = np.random.default_rng(7)
    return pd.DataFrame({"funding_time": t, "funding_rate": rng.normal(0, 1e-4, len(t)),
                         "funding_interval_hours": np.array(h, np.int64),
                         "mark_price": 100 + rng.random(len(t)), "source": "archive_monthly"})


def test_funding_bars_every_event_in_each_bar_across_8h_4h_1h_switches(lake):
    ev = funding_events()
    write_silver(lake, "um_funding_rate", FSCH, {"BTCUSDT": ev}, tcol="funding_time", interval=None)
    for rule in ("1h", "4h", "8h"):
        lake.build_gold("funding_bars", "um_klines_1m", rule=rule, symbols=["BTCUSDT"], progress=False)
        got = lake.gold[f"um_funding_bars_{rule}"].read("BTCUSDT")
        assert len(got) > 5
        step = pd.Timedelta(rule)
        for ts, row in got.iterrows():
            inside = ev[(ev["funding_time"] >= ts) & (ev["funding_time"] < ts + step)]
            assert row["funding_count"] == len(inside)
            assert row["funding_rate_sum"] == pytest.approx(inside["funding_rate"].sum(), abs=1e-15)
            assert list(row["funding_rates"]) == pytest.approx(list(inside["funding_rate"]))
            assert list(row["funding_mark_prices"]) == pytest.approx(list(inside["mark_price"]))
            if len(inside):
                assert row["funding_rate_last"] == inside["funding_rate"].iloc[-1]
                assert row["mark_price_first"] == inside["mark_price"].iloc[0]
                assert row["funding_time_first"] == inside["funding_time"].iloc[0]
            else:
                assert np.isnan(row["funding_rate_first"]) and pd.isna(row["funding_time_last"])
            prior = ev[ev["funding_time"] < ts + step]
            assert row["funding_interval_hours"] == prior["funding_interval_hours"].iloc[-1]
    one = lake.gold.um_funding_bars_1h.read("BTCUSDT")
    assert (one.loc["2024-01-30 01:00":"2024-01-30 07:00", "funding_count"] == 0).all()
    assert (one.loc["2024-02-01 00:00":"2024-02-01 05:00", "funding_count"] == 1).all()
    eight = lake.gold.um_funding_bars_8h.read("BTCUSDT")
    assert eight.loc["2024-01-31 16:00", "funding_count"] == 2      # 4h schedule: 16:00, 20:00
    assert eight.loc["2024-02-01 08:00", "funding_count"] == 8      # 1h schedule


@pytest.mark.parametrize("partial", [True, False])
@pytest.mark.parametrize("drop", [(), ("2024-01-30 10:07", "2024-01-30 10:08", "2024-01-30 23:59")])
def test_all_phase_pass_equals_phase_by_phase_resample(partial, drop):
    """The one-pass path (more than two phases) against ops.resample per phase, with and
    without missing bars (the dense and the scattered layout)."""
    from cryptolake.gold import kinds
    df = klines("2024-01-30 00:17", "2024-01-31 05:13", 3, drop=list(drop)).set_index("open_time")
    df = df.drop(columns="source")
    phases = ["0min", "7min", "59min"]
    fast, d_fast = kinds.bars(df, "1h", phases, MIN_US, partial)
    slow = []
    d_slow = 0
    for ph in phases:
        out, d = kinds.bars(df, "1h", [ph], MIN_US, partial)
        slow.append(out)
        d_slow += d
    slow = pd.concat(slow).sort_index(kind="stable")
    assert d_fast == d_slow and (d_fast > 0) == (not partial)
    pd.testing.assert_frame_equal(fast.astype({"phase": str}), slow.astype({"phase": str}), check_freq=False)


def test_read_unknown_phase_names_the_phases_and_pinned_lake_cannot_build(lake):
    lake.build_gold("bars", "um_klines_1m", rule="1h", phases=["0min", "15min"], progress=False)
    with pytest.raises(ValueError, match="no phase '7min'; phases: 0min, 15min"):
        lake.gold.um_bars_1h.read("BTCUSDT", phase="7min")
    with pytest.raises(ValueError, match="has no phase column"):
        lake.silver.um_klines_1m.read("BTCUSDT", phase="0min")
    pinned = lake.at(lake.versions())
    assert len(pinned.gold.um_bars_1h.read("BTCUSDT", phase="15min")) > 0
    with pytest.raises(PermissionError):
        pinned.build_gold("bars", "um_klines_1m", rule="1h", progress=False)


def test_gold_tables_are_in_versions_and_sql(lake):
    lake.build_gold("bars", "um_klines_1m", rule="1h", progress=False)
    assert "gold.um_bars_1h" in lake.versions() and "_builds" not in lake.gold.tables
    n = lake.sql("SELECT count(*) AS n FROM gold.um_bars_1h WHERE symbol = 'ETHUSDT'")["n"].iloc[0]
    assert n == len(lake.gold.um_bars_1h.read("ETHUSDT")) == 8       # 22:00 .. 05:00, whole hours
