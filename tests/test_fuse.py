"""Fusion inside `add_indicators`: jobs whose kernels have a fuser registered in
`cryptolake.ops._fuse.FUSERS` (one job per kernel, all on the same input arrays) run as one
job through the fuser, per symbol segment on a many-symbol frame and on the whole series for
one series; every output lands in its own indicator's arrays."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

import cryptolake.accessors  # noqa: F401
from cryptolake.kernels import indicators as K
from cryptolake.ops import _fuse
from cryptolake.ops import indicators as OI
from cryptolake.ops.indicators import INDICATORS, add_indicators
from cryptolake.testing.frames import walk_ohlcv as make_ohlcv


def make_panel(sizes, seed: int = 40) -> pd.DataFrame:
    parts = {f"S{k}": make_ohlcv(n, seed + k, price=50.0 * (k + 1)) for k, n in enumerate(sizes)}
    return pd.concat(parts, names=["symbol"])


def separate(df: pd.DataFrame, specs) -> pd.DataFrame:
    """The indicators one call each, side by side (what add_indicators must equal)."""
    outs = [INDICATORS[s](df) if isinstance(s, str) else INDICATORS[s[0]](df, **s[1])
            for s in specs]
    return pd.concat([df, *outs], axis=1)


class Recorder:
    """A real fuser of (rolling_mean, ewm_mean): calls both kernels on rows a .. b-1 of its
    jobs' shared input, and records each call."""

    def __init__(self):
        self.calls: list = []
        self.lock = threading.Lock()

    def __call__(self, jobs, a, b):
        sma_job, ema_job = jobs
        assert sma_job.kernel is K.rolling_mean and ema_job.kernel is K.ewm_mean
        assert ema_job.cols[0] is sma_job.cols[0]           # the same input array
        c = sma_job.cols[0][a:b]
        K.rolling_mean(c, *sma_job.params, sma_job.outs[0][a:b])
        K.ewm_mean(c, *ema_job.params, ema_job.outs[0][a:b])
        with self.lock:
            self.calls.append((sma_job.params, ema_job.params, a, b))


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setitem(_fuse.FUSERS, (K.rolling_mean, K.ewm_mean), rec)
    return rec


def test_one_series_runs_the_pair_through_the_fuser_once(recorder):
    df = make_ohlcv(3000, 1)
    specs = ["rsi", ("ema", {"window": 9}), ("sma", {"window": 5})]   # not in fuser order
    out = add_indicators(df, specs)
    assert recorder.calls == [((5, 5), (K.alpha_from_span(9), 9), 0, len(df))]
    pd.testing.assert_frame_equal(out, separate(df, specs), check_exact=True)


def test_many_symbols_call_the_fuser_once_per_symbol(recorder):
    panel = make_panel([400, 1, 700, 250])
    specs = [("sma", {"window": 7}), "macd", ("ema", {"window": 4})]
    out = add_indicators(panel, specs)
    bounds = [(0, 400), (400, 401), (401, 1101), (1101, 1351)]
    assert sorted(c[2:] for c in recorder.calls) == bounds
    pd.testing.assert_frame_equal(out, separate(panel, specs), check_exact=True)


def test_many_symbols_on_threads_fuse_per_symbol(recorder):
    panel = make_panel([9000 + 700 * k for k in range(8)])
    assert len(panel) >= OI.PARALLEL_MIN_ROWS                # the threaded path
    specs = ["sma", "ema", "atr", "rsi"]
    out = add_indicators(panel, specs)
    assert len(recorder.calls) == 8
    pd.testing.assert_frame_equal(out, separate(panel, specs), check_exact=True)


def test_two_pairs_make_two_fused_jobs(recorder):
    df = make_ohlcv(2000, 2)
    specs = ["sma", ("sma", {"window": 30}), ("ema", {"window": 40}), "ema"]
    out = add_indicators(df, specs)
    assert sorted(c[:2] for c in recorder.calls) == sorted(
        [((12, 12), (K.alpha_from_span(40), 40)), ((30, 30), (K.alpha_from_span(12), 12))])
    pd.testing.assert_frame_equal(out, separate(df, specs), check_exact=True)


def test_no_fusion_without_the_whole_tuple_or_on_other_inputs(recorder, monkeypatch):
    df = make_ohlcv(1500, 3)
    pd.testing.assert_frame_equal(add_indicators(df, ["sma", "rsi"]),
                                  separate(df, ["sma", "rsi"]), check_exact=True)
    df.lake.indicators.sma()
    df.lake.indicators.ema()                                 # outside add_indicators
    assert recorder.calls == []
    calls = []

    def atr_sma(jobs, a, b):                                 # inputs differ: never called
        calls.append((a, b))

    monkeypatch.setitem(_fuse.FUSERS, (K.atr, K.rolling_mean), atr_sma)
    pd.testing.assert_frame_equal(add_indicators(df, ["atr", "sma"]),
                                  separate(df, ["atr", "sma"]), check_exact=True)
    assert calls == []


def test_a_failing_fuser_raises_and_leaves_no_deferred_state(monkeypatch):
    def broken(jobs, a, b):
        raise RuntimeError("fuser broke")

    monkeypatch.setitem(_fuse.FUSERS, (K.rolling_mean, K.ewm_mean), broken)
    df = make_ohlcv(500, 4)
    with pytest.raises(RuntimeError, match="fuser broke"):
        add_indicators(df, ["sma", "ema"])
    assert getattr(OI._LOCAL, "jobs", None) is None and OI._DEFERRING == 0
    assert np.isfinite(df.lake.indicators.sma().to_numpy()[20:]).all()


@pytest.mark.parametrize("specs", [["sma", "bbands"], [("sma", {"window": 20}), "bbands"],
                                   ["atr", "adx"], ["adx", "sma", "atr", "bbands", "rsi"]])
def test_add_indicators_equals_the_separate_calls_with_the_registered_fusers(specs):
    df = make_ohlcv(5000, 5)
    pd.testing.assert_frame_equal(add_indicators(df, specs), separate(df, specs),
                                  check_exact=True)
    panel = make_panel([3000, 20, 4000])
    pd.testing.assert_frame_equal(add_indicators(panel, specs), separate(panel, specs),
                                  check_exact=True)


def test_jobs_run_one_segment_or_a_list_of_them(recorder):
    df = make_ohlcv(300, 6)
    c = df["close"].to_numpy(dtype=float)
    a, b = np.full(300, -1.0), np.full(300, -1.0)
    job = OI._Job(K.rolling_mean, [c], (5, 5), (a,), 1)
    job.run([(0, 100), (100, 100), (100, 300)])             # a list of segments
    job2 = OI._Job(K.rolling_mean, [c], (5, 5), (b,), 1)
    job2.run(0, 100)
    job2.run(100, 300)
    np.testing.assert_array_equal(a, b)
    exp = df.lake.indicators.sma(window=5).to_numpy()
    np.testing.assert_array_equal(a[:100], exp[:100])
    assert np.isnan(a[100:104]).all()                       # segments restart the window
