"""resample's fast paths for small frames (issue 12 item 4): the per-call cost was cut with
no-check pandas constructors (`ops._frame.times_from_ticks`, `frame_from_blocks`), cached
column plans and rule parsing, and plain-int bins for one UTC series. Every one of them must
give exactly what pandas (and the public constructors) give."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.grid import ATTR
from cryptolake.ops import _frame
from cryptolake.ops.resample import resample
from cryptolake.testing.strategies import ohlcv_frames, pandas_resample

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FIXED = ["1min", "5min", "15min", "1h", "4h", "1D", "7min", "25h", "2D"]
CALENDAR = ["W", "W-MON", "2W", "ME", "MS", "QE", "QS", "YE", "YS"]
offsets = st.one_of(st.none(), st.integers(-600, 600).map(lambda m: pd.Timedelta(minutes=m)))


def _mixed(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`df` plus the other column kinds a lake frame carries: a bool, a tz-aware datetime, an
    int32, a float32 and a string column (dropped by resample)."""
    rng = np.random.default_rng(seed)
    n = len(df)
    out = df.copy()
    out["is_filled"] = rng.random(n) < 0.3
    out["close_time"] = df.index + (pd.Timedelta("1min") - pd.Timedelta(1, df.index.unit))
    out["n32"] = rng.integers(-5, 5, n).astype(np.int32)
    out["f32"] = rng.normal(size=n).astype(np.float32)
    out["source"] = np.where(rng.random(n) < 0.5, "archive", "rest")
    return out


def _reference(df: pd.DataFrame, rule, offset=None) -> pd.DataFrame:
    """pandas on the non-empty bins, with the dtypes df.lake documents: floats float64, int
    sums/lasts int64, bool any, datetimes last in their own dtype; strings dropped."""
    r = df.resample(rule, offset=offset)
    size = r.size().to_numpy() > 0
    ref = pandas_resample(df.drop(columns=["close_time", "source", "is_filled"],
                                  errors="ignore"), rule, offset)
    cols = {}
    for c in df.columns:
        if c in ("source",):
            continue
        if c == "is_filled":
            cols[c] = r[c].any()[size].astype(bool)
        elif c == "close_time":
            cols[c] = r[c].last()[size]
        elif df[c].dtype.kind in "iu" and c not in ("open", "high", "low", "close"):
            cols[c] = ref[c].astype(np.int64)
        else:
            cols[c] = ref[c].astype(np.float64)
    return pd.DataFrame(cols)


def _equal(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(ours, ref, check_exact=True, check_freq=False)


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=1500, units=("s", "ms", "us", "ns")),
       rule=st.sampled_from(FIXED), offset=offsets, seed=st.integers(0, 2**16))
def test_small_frames_with_every_column_kind_equal_pandas_fixed_rules(df, rule, offset, seed):
    df = _mixed(df, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # 'D' + offset: ignored, as pandas
        ours = resample(df, rule, offset)
        ref = _reference(df, rule, offset)
    _equal(ours, ref)
    assert ours.index.dtype == df.index.dtype and ours.index.name == "open_time"


@SETTINGS
@given(df=ohlcv_frames("1h", max_bars=1500, units=("s", "ms", "us", "ns"),
                       start_min="2019-06-01", start_max="2025-06-30"),
       rule=st.sampled_from(CALENDAR), seed=st.integers(0, 2**16))
def test_small_frames_with_every_column_kind_equal_pandas_calendar_rules(df, rule, seed):
    df = _mixed(df, seed)
    _equal(resample(df, rule), _reference(df, rule))


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=800), rule=st.sampled_from(["5min", "1h", "3h"]),
       offset=offsets, tz=st.sampled_from(["Asia/Tokyo", "America/New_York", "UTC"]))
def test_other_time_zones_take_the_pandas_origin_and_equal_pandas(df, rule, offset, tz):
    df = df.tz_convert(tz)
    _equal(resample(df, rule, offset), _reference(df, rule, offset))


def _public_only(monkeypatch) -> None:
    monkeypatch.setattr(_frame, "_FAST", {"times": _frame._public_times,
                                          "frame": _frame._public_frame})


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=600, units=("s", "ms", "us", "ns")),
       rule=st.sampled_from(FIXED + CALENDAR), seed=st.integers(0, 2**16),
       partial=st.booleans(), bars=st.booleans())
def test_fast_constructors_build_what_the_public_ones_build(df, rule, seed, partial, bars):
    df = _mixed(df, seed)
    kw = {"partial": partial, "bars": bars, "freq": "1min"}
    fast = resample(df, rule, **kw)
    with pytest.MonkeyPatch.context() as mp:
        _public_only(mp)
        public = resample(df, rule, **kw)
    pd.testing.assert_frame_equal(fast, public, check_exact=True)
    assert list(fast.dtypes) == list(public.dtypes)
    assert type(fast.columns) is type(public.columns) and fast.columns.dtype == public.columns.dtype
    assert fast.attrs == public.attrs


def test_fast_constructors_on_a_multiindex_equal_the_public_ones(monkeypatch):
    one = _mixed(_frame_1m(3000), 1)
    df = pd.concat({"A": one, "B": one.iloc[100:]}, names=["symbol", "open_time"])
    fast = resample(df, "1h", bars=True)
    _public_only(monkeypatch)
    pd.testing.assert_frame_equal(fast, resample(df, "1h", bars=True), check_exact=True)


def test_a_fast_constructor_that_builds_something_else_is_not_used(monkeypatch):
    """The no-check constructors are checked against the public ones once; one that differs
    (a pandas whose internals changed) is replaced by the public one."""
    monkeypatch.setattr(_frame, "_FAST", {})
    monkeypatch.setattr(_frame, "_fast_frame",
                        lambda names, blocks, index: _frame._public_frame(names, blocks, index)
                        .iloc[:, ::-1])
    monkeypatch.setattr(_frame, "_fast_times",
                        lambda ticks, dtype, name: _frame._public_times(ticks + 1, dtype, name))
    assert _frame._pick("frame") is _frame._public_frame
    assert _frame._pick("times") is _frame._public_times
    df = _frame_1m(500)
    _equal(resample(df, "1h"), _reference(df, "1h"))


def test_frame_from_blocks_places_rows_at_their_positions():
    store = np.arange(20.0).reshape(4, 5)
    idx = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    out = _frame.frame_from_blocks(["a", "b", "c", "d"],
                                   [(store[1:3], [3, 0]), (store[:1].view(np.int64), [2]),
                                    (np.array([True] * 5), [1])], idx)
    assert list(out.columns) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(out["d"], store[1])
    np.testing.assert_array_equal(out["a"], store[2])
    assert out["c"].dtype == np.int64 and out["b"].dtype == bool


def test_the_plan_cache_follows_renamed_columns_and_changed_dtypes():
    df = _frame_1m(300)
    first = resample(df, "1h")
    df2 = df.rename(columns={"trades": "trades_renamed"})
    out = resample(df2, "1h")
    assert "trades_renamed" in out.columns and "trades" not in out.columns
    # not a volume column any more: its last value, no longer its sum
    assert out["trades_renamed"].tolist() == df["trades"].resample("1h").last().tolist()
    assert first["trades"].tolist() == df["trades"].resample("1h").sum().tolist()
    df3 = df.astype({"trades": np.float64})
    assert resample(df3, "1h")["trades"].dtype == np.float64
    df.columns = [c.upper() if c == "volume" else c for c in df.columns]  # same frame, new Index
    assert "VOLUME" in resample(df, "1h").columns


def test_equal_rules_in_other_spellings_and_repeated_calls_agree():
    df = _frame_1m(2000)
    ref = resample(df, "1h", "5min")
    for rule, off in [(pd.Timedelta("1h"), "5min"), ("60min", pd.Timedelta(minutes=5)),
                      ("1h", np.timedelta64(5, "m")), ("1h", "5min")]:
        _equal(resample(df, rule, off), ref)
    with pytest.raises(ValueError, match="not a frequency"):
        resample(df, ["1h"])


def test_bars_replaces_a_column_named_bars_in_its_place():
    df = _frame_1m(600)
    df.insert(2, "bars", 7.0)
    out = resample(df, "1h", bars=True)
    assert list(out.columns) == [c for c in df.columns]
    assert out["bars"].dtype == np.int64
    assert out["bars"].tolist() == df["close"].resample("1h").size().loc[lambda s: s > 0].tolist()


def test_duplicate_column_names_are_refused():
    df = _frame_1m(100)
    df = pd.concat([df, df[["volume"]]], axis=1)
    with pytest.raises(ValueError, match="duplicate column"):
        resample(df, "1h")


def test_outputs_own_their_memory():
    df = _frame_1m(600)
    before = df.copy()
    a = resample(df, "1h")
    b = resample(df, "1h")
    a.iloc[0, 0] = -1.0
    a["volume"] *= 2
    pd.testing.assert_frame_equal(df, before)
    assert b.iloc[0, 0] != -1.0 and not np.array_equal(a["volume"], b["volume"])


@pytest.mark.parametrize("n", [1, 2, 59, 60, 61, 1440])
@pytest.mark.parametrize("rule,interval", [("1h", "1h"), ("4h", "4h"), ("1D", "1d"),
                                           ("7min", None), ("5min", "5m")])
def test_one_series_interval_attr_and_edges(n, rule, interval):
    df = _frame_1m(n, start="2024-02-29 22:30")
    df.attrs[ATTR] = "1m"
    out = resample(df, rule)
    _equal(out, _reference(df, rule))
    assert out.attrs.get(ATTR) == interval
    shifted = resample(df, "24h" if rule == "1D" else rule, "1min")  # 'D' ignores offsets
    assert ATTR not in shifted.attrs


def test_empty_frame_keeps_columns_and_dtypes():
    df = _mixed(_frame_1m(10), 0).iloc[:0]
    out = resample(df, "1h", bars=True)
    assert len(out) == 0 and out.index.dtype == df.index.dtype
    assert list(out.columns) == ["open", "high", "low", "close", "volume", "trades",
                                 "is_filled", "close_time", "n32", "f32", "bars"]


def _frame_1m(n: int, start="2024-01-01 00:00") -> pd.DataFrame:
    rng = np.random.default_rng(n)
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC", name="open_time").as_unit("us")
    c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    return pd.DataFrame({"open": c, "high": c * 1.001, "low": c * 0.999, "close": c,
                         "volume": rng.exponential(3.0, n), "trades": rng.integers(0, 90, n)},
                        index=idx)


EDGE_RULES = CALENDAR + ["3W-WED", "2ME", "3MS", "2QE", "QE-MAR", "QS-FEB", "2YS", "YE-JUN",
                         "W-SAT", "W-THU"]


@pytest.mark.parametrize("rule", EDGE_RULES)
def test_utc_calendar_edges_in_integers_equal_pandas_offsets(rule):
    """Every fourth first day over four years (leap day, month, quarter and year ends), some
    before 1970, and spans of 0 days to 2 years: the integer edges equal pandas' ones."""
    from cryptolake.ops._bins import calendar_edges, pandas_calendar_edges, parse_rule
    off = parse_rule(rule)
    unit = ("s", "ms", "us", "ns")[EDGE_RULES.index(rule) % 4]
    lev = pd.DatetimeIndex([], dtype=f"datetime64[{unit}, UTC]")
    day = 86_400 * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    rng = np.random.default_rng(len(rule))
    base = (pd.Timestamp("2019-12-01") - pd.Timestamp("1970-01-01")).days
    firsts = np.r_[np.arange(base, base + 4 * 366, 4), rng.integers(-4000, 30000, 40)]
    for f in firsts.tolist():
        for span in (0, 1, 30, 731):
            lo, hi = f * day, (f + span) * day + day // 2
            ours, ref = calendar_edges(lo, hi, lev, off), pandas_calendar_edges(lo, hi, lev, off)
            assert ours[2] == ref[2]
            np.testing.assert_array_equal(ours[0], ref[0])
            np.testing.assert_array_equal(ours[1], ref[1])
