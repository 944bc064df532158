"""Calendar rules ("W", "W-MON", "ME", "MS", "QE", "QS", "YE", "YS" and multiples): equal to
pandas on every non-empty bin, per symbol, and `partial=False` counts the source grid (issue 6,
defect 9)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.grid import ATTR
from cryptolake.ops.bars import trades_to_bars
from cryptolake.ops.resample import resample
from cryptolake.testing.strategies import (ohlcv_frames, pandas_resample,
                                           pandas_trades_to_bars, trades_frames)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WEEKLY = ["W", "2W", "W-MON", "W-TUE", "W-WED", "W-THU", "W-FRI", "W-SAT", "W-SUN", "3W-WED"]
MONTHLY = ["ME", "MS", "2ME", "3MS", "QE", "QS", "2QE", "QE-MAR", "QS-FEB", "YE", "YS", "2YS",
           "YE-JUN"]
CALENDAR = WEEKLY + MONTHLY
# bar sizes that make the frames span days to years (month ends, year ends, leap days)
SOURCES = {"1h": 2000, "6h": 2500, "1D": 1500}


def _equal(ours, ref):
    pd.testing.assert_frame_equal(ours, ref, check_exact=True, check_dtype=False,
                                  check_freq=False)


def _frames(symbols=None, max_scale=1, with_bar=False):
    def frames(bar):
        f = ohlcv_frames(bar, max_bars=SOURCES[bar] // max_scale, symbols=symbols,
                         units=("s", "ms", "us", "ns"), start_min="2019-06-01",
                         start_max="2025-06-30")
        return f.map(lambda df: (bar, df)) if with_bar else f
    return st.sampled_from(sorted(SOURCES)).flatmap(frames)


@SETTINGS
@given(df=_frames(), rule=st.sampled_from(CALENDAR))
def test_calendar_rules_equal_pandas_on_every_nonempty_bin(df, rule):
    ours = resample(df, rule)
    _equal(ours, pandas_resample(df, rule))
    assert ours.index.dtype == df.index.dtype


@SETTINGS
@given(df=_frames(symbols=3, max_scale=3), rule=st.sampled_from(CALENDAR))
def test_calendar_rules_per_symbol_on_a_multiindex(df, rule):
    ours = resample(df, rule, bars=True)
    for sym in df.index.get_level_values("symbol").unique():
        one = df.xs(sym, level="symbol")
        mine = ours.xs(sym, level="symbol")
        _equal(mine.drop(columns="bars"), pandas_resample(one, rule))
        assert mine["bars"].tolist() == [int(v) for v in one["close"].resample(rule).size()
                                         if v > 0]
    assert ours.index.names == ["symbol", "open_time"]


def _complete_bins(df, rule, bar):
    """The oracle of partial=False: pandas' non-empty bins whose rows equal the number of grid
    points (first bar + k * bar) in the bin's extent, the extent from pandas' offsets:
    [label, label + rule) for start rules, (label - rule, label] in whole days for end rules."""
    off = pd.tseries.frequencies.to_offset(rule)
    have = df["close"].resample(rule).size()
    have = have[have > 0]
    lab = have.index
    if type(off).__name__.endswith("Begin"):
        lo, hi = lab, pd.DatetimeIndex([x + off for x in lab])
    else:
        day = pd.Timedelta(days=1)
        lo, hi = pd.DatetimeIndex([x - off for x in lab]) + day, lab + day
    first, bar = df.index[0], pd.Timedelta(bar)
    full = np.ceil((hi - first) / bar) - np.ceil((lo - first) / bar)
    return lab[have.to_numpy() == full.to_numpy()]


@SETTINGS
@given(case=_frames(with_bar=True), rule=st.sampled_from(CALENDAR))
def test_partial_false_keeps_exactly_the_complete_calendar_bins(case, rule):
    bar, df = case
    df.attrs[ATTR] = {"1h": "1h", "6h": "6h", "1D": "1d"}[bar]
    ours = resample(df, rule, partial=False)
    complete = _complete_bins(df, rule, bar)
    assert ours.index.equals(complete), (ours.index, complete)
    _equal(ours, resample(df, rule).loc[complete])


def test_a_full_leap_february_is_complete_and_a_short_one_is_not():
    idx = pd.date_range("2024-01-15", "2024-03-10 23:00", freq="1h", tz="UTC", name="open_time")
    df = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0},
                      index=idx)
    df.attrs[ATTR] = "1h"
    out = resample(df, "MS", partial=False, bars=True)
    assert out.index.tolist() == [pd.Timestamp("2024-02-01", tz="UTC")]
    assert out["bars"].tolist() == [29 * 24]
    out = resample(df.drop(pd.Timestamp("2024-02-29 12:00", tz="UTC")), "ME", partial=False)
    assert len(out) == 0
    end = resample(df, "ME", bars=True)          # labels are month ends, like pandas
    assert end.index[1] == pd.Timestamp("2024-02-29", tz="UTC") and end["bars"].iloc[1] == 696


def test_monthly_source_bars_use_calendar_months():
    idx = pd.date_range("2021-01-01", "2023-12-01", freq="MS", tz="UTC", name="open_time")
    df = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0},
                      index=idx)
    df.attrs[ATTR] = "1mo"
    df = df.drop(pd.Timestamp("2022-05-01", tz="UTC"))
    out = resample(df, "QS", partial=False, bars=True)
    assert len(out) == 11 and (out["bars"] == 3).all()
    assert pd.Timestamp("2022-04-01", tz="UTC") not in out.index
    assert resample(df, "YE", partial=False).index.year.tolist() == [2021, 2023]
    assert "interval" not in resample(df, "YE").attrs


def test_offset_with_a_calendar_rule_raises():
    df = _hourly()
    with pytest.raises(ValueError, match="offset.*calendar"):
        resample(df, "W", "2h")


def test_unsupported_calendar_rules_say_what_is_allowed():
    for rule in ("SME", "BME", "bogus"):
        with pytest.raises(ValueError, match="W-MON|frequency"):
            resample(_hourly(), rule)


@pytest.mark.parametrize("rule", ["1h", "4h", "1D", "W", "ME", "MS", "YE"])
def test_partial_false_on_one_row_is_empty(rule):
    df = _hourly().iloc[:1]
    out = resample(df, rule, partial=False)
    assert len(out) == 0 and list(out.columns) == list(resample(df, rule).columns)


def test_calendar_rules_on_a_non_utc_index_follow_pandas():
    df = _hourly(periods=24 * 80).tz_convert("America/New_York")
    for rule in ("W", "ME", "MS", "QS"):
        _equal(resample(df, rule), pandas_resample(df, rule))


def test_empty_frame():
    df = _hourly().iloc[:0]
    assert len(resample(df, "W")) == 0


def _hourly(periods=24 * 40):
    idx = pd.date_range("2024-02-20 05:00", periods=periods, freq="1h", tz="UTC",
                        name="open_time")
    rng = np.random.default_rng(1)
    c = 100 + np.cumsum(rng.normal(0, 1, periods))
    return pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                         "volume": rng.random(periods), "trades": rng.integers(0, 9, periods)},
                        index=idx)


@settings(max_examples=20, deadline=None)
@given(trades=trades_frames(max_trades=300, span="40D"), rule=st.sampled_from(["W", "W-WED", "MS"]))
def test_trades_to_bars_takes_calendar_rules(trades, rule):
    pd.testing.assert_frame_equal(trades_to_bars(trades, rule),
                                  pandas_trades_to_bars(trades, rule), check_freq=False,
                                  check_dtype=False, rtol=1e-12)
