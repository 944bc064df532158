"""resample: pandas is the oracle on every non-empty bin, plus properties pandas cannot state."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.kernels import resample as kr
from cryptolake.ops.resample import resample
from cryptolake.testing.strategies import ohlcv_frames, pandas_agg_spec, pandas_resample

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RULES = ["2min", "5min", "7min", "15min", "1h", "4h", "5h", "13h", "25h", "1D", "2D", "3D"]
offsets = st.one_of(st.none(), st.integers(-600, 600).map(lambda m: pd.Timedelta(minutes=m)))


def _both(df, rule, offset=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pandas and we warn on 'D' + offset
        return resample(df, rule, offset, **kw), pandas_resample(df, rule, offset)


def _equal(ours, ref):
    pd.testing.assert_frame_equal(ours, ref, check_exact=True, check_dtype=False,
                                  check_freq=False)


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=3000, units=("s", "ms", "us", "ns")),
       rule=st.sampled_from(RULES), offset=offsets)
def test_equals_pandas_on_every_nonempty_bin(df, rule, offset):
    ours, ref = _both(df, rule, offset)
    _equal(ours, ref)
    assert ours.index.dtype == df.index.dtype


@SETTINGS
@given(df=ohlcv_frames("1h", max_bars=300), rule=st.sampled_from(["4h", "5h", "1D", "3D", "7h"]))
def test_equals_pandas_from_hourly_bars(df, rule):
    _equal(*_both(df, rule))


@pytest.mark.parametrize("minutes", range(0, 60, 5))
def test_the_twelve_phases_of_hourly_bars(minutes):
    df = _fixed_frame()
    _equal(*_both(df, "1h", f"{minutes}min"))


@pytest.mark.parametrize("rule,offset", [("1D", None), ("1D", "8h"), ("2D", None), ("7min", None),
                                         ("7min", "3min"), ("5h", None), ("5h", "-2h"),
                                         ("25h", None), ("90s", None), ("1h", "65min")])
def test_day_rules_and_rules_that_do_not_divide_a_day(rule, offset):
    df = _fixed_frame()  # starts mid-day, spans several days, has holes
    _equal(*_both(df, rule, offset))


def test_day_rule_offset_is_ignored_like_pandas_with_a_warning():
    df = _fixed_frame()
    with pytest.warns(RuntimeWarning, match="24h"):
        shifted = resample(df, "1D", "8h")
    _equal(shifted, resample(df, "1D"))
    assert resample(df, "24h", "8h").index[1].hour == 8


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=2000), rule=st.sampled_from(RULES), offset=offsets)
def test_volume_conserved_and_ohlc_bounds(df, rule, offset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = resample(df, rule, offset, bars=True)
    for col in ("volume", "quote_volume", "taker_buy_volume", "trades"):
        assert np.isclose(out[col].sum(), df[col].sum(), rtol=1e-12, atol=0)
    assert out["bars"].sum() == len(df)
    assert (out["low"] <= out[["open", "close"]].min(axis=1)).all()
    assert (out[["open", "close"]].max(axis=1) <= out["high"]).all()
    assert out.index.is_monotonic_increasing and out.index.is_unique


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=800, symbols=3), rule=st.sampled_from(RULES),
       offset=offsets)
def test_multiindex_equals_pandas_per_symbol(df, rule, offset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = resample(df, rule, offset)
        for sym in df.index.get_level_values("symbol").unique():
            _equal(ours.xs(sym, level="symbol"), pandas_resample(df.xs(sym, level="symbol"),
                                                                 rule, offset))
    assert ours.index.names == ["symbol", "open_time"]


def test_multiindex_equals_pandas_groupby_resample():
    df = pd.concat({s: _fixed_frame(seed=i) for i, s in enumerate(["AUSDT", "BUSDT"])},
                   names=["symbol", "open_time"])
    ref = df.groupby(level="symbol").resample("1h", level="open_time").agg(pandas_agg_spec(df))
    size = df.groupby(level="symbol").resample("1h", level="open_time").size()
    _equal(resample(df, "1h"), ref[size.to_numpy() > 0])


@SETTINGS
@given(df=ohlcv_frames("1min", min_bars=2, max_bars=1500), rule=st.sampled_from(RULES),
       cut=st.floats(0.05, 0.95))
def test_no_look_ahead(df, rule, cut):
    full = resample(df, rule)
    k = max(1, int(len(df) * cut))
    prefix = resample(df.iloc[:k], rule)
    # every bin but the prefix's last one is final; the last one may still be filling
    _equal(prefix.iloc[:-1], full.iloc[:len(prefix) - 1])


@SETTINGS
@given(df=ohlcv_frames("1min", min_bars=2, max_bars=1500),
       rule=st.sampled_from(["5min", "7min", "1h", "5h"]), offset=offsets)
def test_partial_false_keeps_exactly_the_complete_bins(df, rule, offset):
    ours = resample(df, rule, offset, partial=False, freq="1min")   # the frames' true grid
    bar = pd.Timedelta("1min")
    origin = df.index[0].normalize() + (offset or pd.Timedelta(0))
    pad = bar * (int(pd.Timedelta(rule) / bar) + 1)      # whole bars: the grid keeps the first bar's phase
    grid = pd.date_range(df.index[0] - pad, df.index[-1] + pad, freq=bar).as_unit(df.index.unit)
    full = pd.Series(1, grid).resample(rule, origin=origin).size()
    have = df["close"].resample(rule, origin=origin).size()
    complete = have[(have > 0) & (have.to_numpy() == full.reindex(have.index).to_numpy())]
    assert ours.index.equals(complete.index)
    _equal(ours, resample(df, rule, offset).loc[complete.index])


def test_partial_false_on_one_bar_of_unknown_size_is_empty():
    out = resample(_fixed_frame().iloc[:1], "1h", partial=False)
    assert len(out) == 0 and "close" in out.columns
    assert len(resample(_fixed_frame().iloc[:1], "1h", partial=False, freq="1h")) == 1


def test_bin_edges_matches_floor_formula_for_negative_offsets():
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(-10**6, 10**6, 5000)).astype(np.int64)
    t = np.unique(t)
    seg = np.array([0, len(t)], np.int64)
    for origin in (-777, 0, 5, 999_999):
        starts, labels = (np.empty(len(t) + 1, np.int64) for _ in range(2))
        nb = kr.bin_edges(t, seg, np.array([origin], np.int64), 1000, starts, labels,
                          np.empty(2, np.int64), True)
        lab = t - (t - origin) % 1000  # numpy's % floors like pandas' Python arithmetic
        assert np.array_equal(labels[:nb], np.unique(lab))
        assert np.array_equal(np.repeat(labels[:nb], np.diff(starts[:nb + 1])), lab)


def test_nan_values_use_pandas_nan_skipping_sum():
    df = _fixed_frame()
    df.iloc[[3, 50, 51], df.columns.get_loc("volume")] = np.nan
    df.iloc[[7], df.columns.get_loc("close")] = np.nan
    _equal(*_both(df, "15min"))


def test_bad_arguments_raise():
    df = _fixed_frame()
    for rule in ("SME", "BME", "-1h", "0h"):
        with pytest.raises(ValueError, match="fixed rule.*calendar rule"):
            resample(df, rule)
    with pytest.raises(ValueError, match="not a frequency"):
        resample(df, "fortnight")
    with pytest.raises(ValueError, match="offset"):
        resample(df, "1h", "soon")


def _fixed_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 6000
    idx = pd.date_range("2024-02-28 13:41", periods=n, freq="1min", tz="UTC", name="open_time")
    c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    o = np.r_[100.0, c[:-1]]
    df = pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.001, "low": np.minimum(o, c) * 0.999,
                       "close": c, "volume": rng.exponential(3.0, n),
                       "trades": rng.integers(0, 90, n), "funding": rng.normal(size=n)},
                      index=idx.as_unit("us"))
    return df[rng.random(n) > 0.15]


def _random_bins(rng, n, max_len):
    cuts = np.cumsum(rng.integers(1, max_len + 1, n))
    starts = np.r_[0, cuts[cuts < n], n].astype(np.int64)
    return starts, len(starts) - 1


@pytest.mark.parametrize("max_len", [4, 40, 300, 3000])
def test_bin_extremes_and_sums_match_numpy_on_short_and_long_bins(max_len):
    """Short bins take the scalar chains, bins of >= 32 rows the 8-lane path; sums have the
    numpy pairwise order (blocks of 128, halving) on every bin length."""
    rng = np.random.default_rng(max_len)
    n = 20_000
    x = rng.normal(0, 100, n)
    starts, nb = _random_bins(rng, n, max_len)
    xn = x.copy()
    xn[rng.random(n) < 0.2] = np.nan
    xn[starts[1]:starts[2]] = np.nan          # an all-NaN bin
    xn[starts[3]] = np.inf
    xn[starts[4]] = -np.inf
    for arr in (x, xn):
        bins = [arr[a:b] for a, b in zip(starts[:-1], starts[1:])]
        allnan = np.array([np.isnan(v).all() for v in bins])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref_max = np.array([np.nanmax(v) for v in bins])
            ref_min = np.array([np.nanmin(v) for v in bins])
        out = np.empty(nb)
        kr.bin_max(arr, starts, nb, out)
        np.testing.assert_array_equal(out, np.where(allnan, np.nan, ref_max))
        kr.bin_min(arr, starts, nb, out)
        np.testing.assert_array_equal(out, np.where(allnan, np.nan, ref_min))
    out = np.empty(nb)
    kr.bin_sum_pairwise(x, starts, nb, out)
    assert np.array_equal(out, np.add.reduceat(x, starts[:-1]))
    xi = rng.integers(-1000, 1000, n)
    oi = np.empty(nb, np.int64)
    kr.bin_sum_int(xi, starts, nb, oi)
    assert np.array_equal(oi, np.add.reduceat(xi, starts[:-1]))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_gather_is_take(dtype):
    rng = np.random.default_rng(0)
    values = np.sort(rng.integers(0, 10**12, 100))
    codes = rng.integers(0, 100, 1000).astype(dtype)
    out = np.empty(len(codes), np.int64)
    kr.gather(values, codes, out)
    assert np.array_equal(out, values.take(codes))


def test_large_frames_use_two_threads_and_match_the_serial_result(monkeypatch):
    import cryptolake.ops.resample as opr

    rng = np.random.default_rng(3)
    n = 3000
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="open_time")
    c = 100 + np.cumsum(rng.normal(0, 1, n))
    df = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                       "volume": rng.random(n), "trades": rng.integers(0, 9, n)}, index=idx)
    df.iloc[5:9, 4] = np.nan
    serial = resample(df, "1h")
    monkeypatch.setattr(opr, "_PARALLEL_MIN_ROWS", 0)
    threaded = resample(df, "1h")
    pd.testing.assert_frame_equal(threaded, serial)
    _equal(threaded, pandas_resample(df, "1h", None))
