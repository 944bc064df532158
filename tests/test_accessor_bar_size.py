"""The bar size is honest: explicit `freq` > `df.attrs["interval"]` (frames read from the lake)
> inference, and an ambiguous guess raises instead of hiding missing bars (issue 6, defect 8)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cryptolake  # noqa: F401  (registers df.lake)
from cryptolake.grid import ATTR
from cryptolake.ops._time import bar_step, check_frame


def _bars(times, attrs=None):
    idx = pd.DatetimeIndex(times, name="open_time")
    n = len(idx)
    c = 100 + np.arange(n, dtype=float)
    df = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                       "volume": np.ones(n), "trades": np.ones(n, np.int64)}, index=idx)
    if attrs:
        df.attrs[ATTR] = attrs
    return df


def _every_other_hour(n=100, attrs="1h"):
    full = pd.date_range("2024-03-01", periods=2 * n, freq="1h", tz="UTC")
    return _bars(full[::2], attrs)


def _step(df, freq=None):
    t, lev, seg = check_frame(df, need=())
    return pd.Timedelta(bar_step(df, t, seg, lev, freq), unit=lev.unit)


def test_lake_interval_wins_over_the_guess():
    df = _every_other_hour()
    assert _step(df) == pd.Timedelta("1h")
    gaps = df.lake.gaps()
    assert len(gaps) == 99 and gaps["missing"].sum() == 99
    assert len(df.lake.resample("4h", partial=False)) == 0     # every 4h bin holds 2 of 4 bars
    assert len(df.lake.resample("4h")) == 50
    filled = df.lake.fill_gaps()
    assert len(filled) == 199 and filled["is_filled"].sum() == 99
    assert filled.attrs[ATTR] == "1h"


def test_explicit_freq_wins_over_the_lake_interval():
    df = _every_other_hour()
    assert _step(df, "2h") == pd.Timedelta("2h")
    assert len(df.lake.gaps(freq="2h")) == 0
    assert len(df.lake.resample("4h", partial=False, freq="2h")) == 50


def test_lake_interval_on_a_multiindex():
    df = pd.concat({"A": _every_other_hour(), "B": _every_other_hour(30)},
                   names=["symbol", "open_time"])
    df.attrs[ATTR] = "1h"
    gaps = df.lake.gaps()
    assert gaps.groupby("symbol")["missing"].sum().to_dict() == {"A": 99, "B": 29}
    assert len(df.lake.resample("2h", partial=False)) == 0


def test_all_diffs_equal_infers_that_diff():
    df = _every_other_hour(attrs=None)    # nothing in the data says the bars are 1h
    assert _step(df) == pd.Timedelta("2h")
    assert len(df.lake.gaps()) == 0


def test_a_smaller_diff_that_divides_every_diff_is_ambiguous():
    times = pd.date_range("2024-03-01", periods=60, freq="2h", tz="UTC")
    times = times.insert(5, times[4] + pd.Timedelta("1h"))       # mostly 2h, one 1h diff
    df = _bars(times)
    for verb in (lambda: _step(df), lambda: df.lake.gaps(), lambda: df.lake.fill_gaps(),
                 lambda: df.lake.resample("4h", partial=False)):
        with pytest.raises(ValueError, match=r"ambiguous.*1h.*2h.*pass freq=.*df\.attrs"):
            verb()
    assert len(df.lake.resample("4h")) > 0      # partial=True needs no bar size
    assert _step(df, "1h") == pd.Timedelta("1h")
    df.attrs[ATTR] = "1h"
    assert _step(df) == pd.Timedelta("1h") and df.lake.gaps()["missing"].sum() == 58


def test_off_grid_bars_are_not_a_smaller_bar_size():
    hours = pd.date_range("2024-03-01", periods=24, freq="1h", tz="UTC")
    stray = hours.append(pd.DatetimeIndex([hours[4] + pd.Timedelta("5min"),
                                           hours[9] + pd.Timedelta("10min")])).sort_values()
    assert _step(_bars(stray)) == pd.Timedelta("1h")       # 5, 55, 10, 50 min once each
    halves = hours.append(pd.DatetimeIndex([hours[4] + pd.Timedelta("30min")])).sort_values()
    with pytest.raises(ValueError, match=r"ambiguous.*30min.*1h"):
        _step(_bars(halves))                                # 30min twice: maybe 30min bars


def test_a_tie_without_a_majority_is_ambiguous():
    base = pd.Timestamp("2024-03-01", tz="UTC")
    diffs = [2, 3, 2, 3, 2, 3]                  # 3h is no multiple of 2h: only the tie is ambiguous
    times = base + pd.to_timedelta(np.r_[0, np.cumsum(diffs)], unit="h")
    with pytest.raises(ValueError, match=r"ambiguous.*2h.*3h.*pass freq="):
        _step(_bars(times))
    diffs = [2, 3, 2, 3, 2, 5]                  # 2h most common (not a majority), no tie
    times = base + pd.to_timedelta(np.r_[0, np.cumsum(diffs)], unit="h")
    assert _step(_bars(times)) == pd.Timedelta("2h")


def test_a_clear_majority_with_a_few_holes_is_not_ambiguous():
    times = pd.date_range("2024-03-01", periods=500, freq="1min", tz="UTC")
    df = _bars(times.delete([3, 4, 90, 200, 201, 202]))
    assert _step(df) == pd.Timedelta("1min")
    assert df.lake.gaps()["missing"].tolist() == [2, 1, 3]


def test_monthly_bars_have_no_fixed_step():
    times = pd.date_range("2023-01-01", periods=12, freq="MS", tz="UTC")
    df = _bars(times, "1mo")
    with pytest.raises(ValueError, match="1mo.*calendar months"):
        _step(df)
    with pytest.raises(ValueError, match="1mo"):
        df.lake.fill_gaps()
    gaps = df.drop(times[5]).lake.gaps()         # calendar months: the lake's gap engine
    assert gaps["start"].tolist() == [times[5]] and gaps["missing"].tolist() == [1]
    assert len(df.lake.resample("QS", partial=False)) == 4


def test_bad_interval_attr_is_named():
    df = _every_other_hour(attrs="fortnightly")
    with pytest.raises(ValueError, match="fortnightly"):
        df.lake.gaps()


def test_resample_output_carries_an_interval_only_when_it_is_a_lake_interval():
    df = _bars(pd.date_range("2024-03-01", periods=24 * 70, freq="1h", tz="UTC"), "1h")
    df.attrs["source"] = "silver"
    assert df.lake.resample("4h").attrs == {ATTR: "4h", "source": "silver"}
    assert df.lake.resample("1D").attrs[ATTR] == "1d"
    assert df.lake.resample("MS").attrs[ATTR] == "1mo"
    for rule, offset in (("W", None), ("ME", None), ("7D", None), ("1h", "5min"), ("5h", None)):
        out = df.lake.resample(rule, offset=offset)
        assert ATTR not in out.attrs and out.attrs["source"] == "silver"
    assert df.lake.resample("4h").lake.resample("1D").attrs[ATTR] == "1d"
