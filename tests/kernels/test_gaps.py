"""gaps / fill_gaps: a pandas diff oracle, and the grid they must cover exactly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.kernels import gaps as kg
from cryptolake.ops.gaps import fill_gaps, gaps
from cryptolake.ops.resample import infer_step
from cryptolake.testing.strategies import ohlcv_frames, pandas_gaps

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FREQS = st.sampled_from(["1s", "1min", "5min", "1h"])
VOLS = ["volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume", "trades"]


@SETTINGS
@given(data=st.data(), freq=FREQS)
def test_gaps_equal_pandas_diff_and_cover_the_grid(data, freq):
    df = data.draw(ohlcv_frames(freq, max_bars=2000, units=("s", "ms", "us", "ns")))
    out = gaps(df, freq)
    pd.testing.assert_frame_equal(out, pandas_gaps(df, freq), check_index_type=False)
    grid = (df.index[-1] - df.index[0]) // pd.Timedelta(freq) + 1
    assert len(df) + out["missing"].sum() == grid
    assert (out["start"].to_numpy()[1:] > out["end"].to_numpy()[:-1]).all()
    assert not out["start"].isin(df.index).any() and not out["end"].isin(df.index).any()


@SETTINGS
@given(df=ohlcv_frames("1min", min_bars=3, max_bars=1000, missing=0.05))
def test_inferred_freq_is_the_most_common_diff(df):
    d = pd.Series(np.diff(df.index.asi8))
    modes = d.mode()
    mode = int(modes.iloc[0])
    seg = np.array([0, len(df)], np.int64)
    assert infer_step(df.index.asi8, seg) == mode
    if len(modes) > 1:
        # two diffs tie as the most common (e.g. bars at 0, 1 and 3 min): no bar size can be
        # inferred, and gaps() says so rather than guess
        with pytest.raises(ValueError, match="ambiguous"):
            gaps(df)
        return
    pd.testing.assert_frame_equal(gaps(df), gaps(df, pd.Timedelta(mode, unit=df.index.unit)))


def test_gaps_refuses_to_guess_between_tied_bar_sizes():
    idx = pd.DatetimeIndex(["2019-01-01 00:00", "2019-01-01 00:01", "2019-01-01 00:03"], tz="UTC")
    df = pd.DataFrame({"close": [1.0, 2.0, 3.0]}, index=idx)
    with pytest.raises(ValueError, match="ambiguous"):
        gaps(df)
    assert len(gaps(df, "1min")) == 1


def test_infer_step_falls_back_when_no_diff_has_a_majority():
    t = np.cumsum([0, 3, 1, 2, 1, 3, 2, 1, 5, 2]).astype(np.int64)
    seg = np.array([0, len(t)], np.int64)
    assert kg.majority_step(t, seg)[1] * 2 <= len(t) - 1
    assert infer_step(t, seg) == pd.Series(np.diff(t)).mode().iloc[0]


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=600, symbols=3))
def test_gaps_per_symbol(df):
    out = gaps(df, "1min")
    assert list(out.columns) == ["symbol", "start", "end", "missing", "duration"]
    for sym, part in df.groupby(level="symbol"):
        ref = pandas_gaps(part.droplevel("symbol"), "1min")
        got = out[out["symbol"] == sym].drop(columns="symbol").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ref, check_index_type=False)


@SETTINGS
@given(df=ohlcv_frames("1min", max_bars=1500, units=("ms", "us", "ns")), freq=FREQS)
def test_fill_gaps_gives_the_full_grid_and_follows_the_rule(df, freq):
    df = df.assign(close_time=df.index + pd.Timedelta(freq) - pd.Timedelta("1ms"),
                   source="archive_daily")
    df = df if freq == "1min" else df.resample(freq).agg({**{c: "last" for c in df.columns},
                                                         "volume": "sum"}).dropna()
    out = fill_gaps(df, freq)
    grid = pd.date_range(df.index[0], df.index[-1], freq=freq).as_unit(df.index.unit)
    assert out.index.equals(grid.rename(df.index.name))
    present = out[~out["is_filled"]].drop(columns="is_filled")
    pd.testing.assert_frame_equal(present, df, check_freq=False)
    # oracle: reindex to the grid and carry the close forward
    ref = df.reindex(grid)
    filled = out[out["is_filled"]]
    prev_close = ref["close"].ffill()[out["is_filled"].to_numpy()]
    for col in ("open", "high", "low", "close"):
        assert np.array_equal(filled[col].to_numpy(), prev_close.to_numpy())
    for col in VOLS:
        assert (filled[col] == 0).all()
    # close_time keeps its distance to the open time of the bar it was carried from
    lag = pd.Series(df["close_time"] - df.index, index=df.index).reindex(grid).ffill()
    assert np.array_equal((filled["close_time"] - filled.index).to_numpy(),
                          lag[out["is_filled"].to_numpy()].to_numpy())
    assert (filled["source"] == "archive_daily").all()
    assert out["is_filled"].sum() == gaps(df, freq)["missing"].sum()


def test_fill_gaps_per_symbol():
    idx = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:03", "2024-01-01 00:04"], utc=True)
    one = pd.DataFrame({"open": [1.0, 2, 3], "high": [1.0, 2, 3], "low": [1.0, 2, 3],
                        "close": [1.5, 2.5, 3.5], "volume": [1.0, 1, 1]}, index=idx)
    df = pd.concat({"A": one, "B": one.iloc[1:]}, names=["symbol", "open_time"])
    out = fill_gaps(df, "1min")
    assert out.loc["A"].index.equals(pd.date_range(idx[0], idx[-1], freq="1min",
                                                   name="open_time"))
    assert out.loc["B"]["is_filled"].tolist() == [False, False]
    assert out.loc["A"]["close"].tolist() == [1.5, 1.5, 1.5, 2.5, 3.5]
    assert out.loc["A"]["volume"].tolist() == [1.0, 0, 0, 1, 1]


def test_bad_freq_raises():
    idx = pd.date_range("2024", periods=3, freq="1min", tz="UTC")
    df = pd.DataFrame({"close": [1.0, 2, 3]}, index=idx)
    with pytest.raises(ValueError, match="freq"):
        gaps(df, "-1min")
    with pytest.raises(ValueError, match="freq"):
        gaps(df, "often")


def test_infer_step_when_the_sampled_diffs_mislead():
    """The candidate voted on every `len(t) // 4096`-th diff is confirmed by an exact count;
    a sample that sees only the minority falls back to the full vote."""
    n = 4 * 4096 + 1
    d = np.ones(n - 1, np.int64)
    d[::4] = 7                       # exactly the sampled diffs (stride 4, from the first)
    t = np.r_[0, np.cumsum(d)].astype(np.int64)
    seg = np.array([0, n], np.int64)
    assert kg.sample_step(t, seg, n // 4096) == 7
    assert infer_step(t, seg) == 1
    assert kg.count_step(t, seg, 1) == (3 * 4096, 4 * 4096)
    idx = pd.DatetimeIndex(t.view("M8[s]"), name="open_time").tz_localize("UTC")
    df = pd.DataFrame({"close": np.ones(n)}, index=idx)
    pd.testing.assert_frame_equal(gaps(df), gaps(df, "1s"))
    assert gaps(df)["missing"].sum() == 6 * 4096


@pytest.mark.parametrize("seed", range(6))
def test_window_runs_match_a_grid_walk(seed):
    """window_runs against a plain walk over every grid point: gaps at both window ends,
    off-grid rows (skipped, counted), rows outside the window, several segments."""
    rng = np.random.default_rng(seed)
    step, origin = 5, 2
    parts, seg, lo, hi = [], [0], [], []
    for _ in range(3):
        grid_pts = origin + step * np.arange(int(rng.integers(0, 50)), int(rng.integers(60, 200)))
        keep = grid_pts[rng.random(len(grid_pts)) < 0.8]
        off = grid_pts[rng.integers(0, len(grid_pts), 3)] + 1          # off the grid
        t = np.unique(np.r_[keep, off])
        parts.append(t)
        seg.append(seg[-1] + len(t))
        lo.append(grid_pts[int(rng.integers(0, 10))])
        hi.append(grid_pts[-1 - int(rng.integers(0, 10))])
    t = np.concatenate(parts).astype(np.int64)
    seg, lo, hi = (np.array(x, np.int64) for x in (seg, lo, hi))
    out = [np.empty(len(t) + 4, np.int64) for _ in range(4)]
    off = np.zeros(3, np.int64)
    k = kg.window_runs(t, seg, step, origin, lo, hi, False, *out, off)
    ref, ref_off = [], []
    for s in range(3):
        mine = set(parts[s].tolist())
        ref_off.append(sum((x - origin) % step != 0 for x in mine))
        run = []
        for g in range(lo[s], hi[s] + 1, step):
            if g not in mine:
                run.append(g)
            if run and (g in mine or g == hi[s]):
                ref.append((run[0], run[-1], len(run), s))
                run = []
    got = list(zip(*(o[:k].tolist() for o in out)))
    assert got == ref and off.tolist() == ref_off
