"""One long series on several cores for the recurrences (`ops/_split_recur.py`): with
`SPLIT_MIN_ROWS` lowered, the public `df.lake.indicators.X()` equals the kernel's own
whole-series call bit for bit, on series with NaN/inf rows, flat runs, jumps and near-flat
moves, on parts whose guessed paths meet the true one and on parts where they never meet
(the full redo); the resumable forms cut anywhere on their grid give the kernel's bits."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cryptolake.accessors  # noqa: F401  (registers df.lake)
from cryptolake.kernels import indicators as K
from cryptolake.ops import _split
from cryptolake.ops import _split_recur as R

from .test_indicators import make_ohlcv
from .test_momentum_speed_props import _kama_longdouble

# (indicator name, params, kernel, kernel params, input columns, outputs)
CASES = [
    ("ema", {"window": 12}, K.ewm_mean, (K.alpha_from_span(12), 12), ("close",), 1),
    ("ema", {"window": 3}, K.ewm_mean, (K.alpha_from_span(3), 3), ("close",), 1),
    ("rsi", {}, K.rsi, (14,), ("close",), 1),
    ("rsi", {"window": 3}, K.rsi, (3,), ("close",), 1),
    ("macd", {}, K.macd, (12, 26, 9), ("close",), 3),
    ("macd", {"fast": 3, "slow": 7, "signal": 3}, K.macd, (3, 7, 3), ("close",), 3),
    ("trix", {"window": 4}, K.trix, (4,), ("close",), 1),
    ("trix", {}, K.trix, (15,), ("close",), 1),
    ("tsi", {}, K.tsi, (25, 13), ("close",), 1),
    ("tsi", {"window": 5, "fast": 3}, K.tsi, (5, 3), ("close",), 1),
    ("kama", {}, K.kama, (10, 2, 30), ("close",), 1),
    ("kama", {"window": 5, "fast": 3, "slow": 7}, K.kama, (5, 3, 7), ("close",), 1),
    ("kama", {"window": 40}, K.kama, (40, 2, 30), ("close",), 1),      # not split: whole
    ("atr", {}, K.atr, (14,), ("high", "low", "close"), 1),
    ("atr", {"window": 3}, K.atr, (3,), ("high", "low", "close"), 1),
    ("psar", {}, K.psar, (0.02, 0.2), ("high", "low", "close"), 3),
    ("psar", {"step": 0.1, "max_step": 0.5}, K.psar, (0.1, 0.5), ("high", "low", "close"), 3),
]
SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture
def split_low(monkeypatch):
    """Split every series of 64 rows or more, into `parts` parts (set by the test)."""
    monkeypatch.setattr(_split, "SPLIT_MIN_ROWS", 64)
    parts = [2]
    monkeypatch.setattr(_split, "workers", lambda: parts[0])
    return parts


def _frame(close: np.ndarray, high: np.ndarray, low: np.ndarray) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(close), freq="1min", tz="UTC")
    return pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": np.ones(len(close))}, index=idx)


@st.composite
def series(draw, n_min: int = 200, n_max: int = 3000):
    """A price of 1e-8..3e9 moving 0 to 1e-2 relative a row (ulp-sized moves included), flat
    runs, one jump, and optionally a NaN prefix and NaN/inf rows inside; high/low around it."""
    n = draw(st.integers(n_min, n_max))
    price = draw(st.sampled_from([1e-8, 0.001234, 1.0, 65000.0, 3e9]))
    rel = draw(st.sampled_from([0.0, 1e-15, 1e-12, 1e-6, 1e-3, 1e-2]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 3.0], size=n)
    for _ in range(draw(st.integers(0, 3))):            # flat runs
        a = int(rng.integers(0, max(n - 1, 1)))
        steps[a:a + int(rng.integers(20, 600))] = 0.0
    if draw(st.booleans()):                             # a jump
        steps[int(rng.integers(0, n))] += draw(st.sampled_from([500.0, -50.0, 1e6]))
    close = price * np.abs(1.0 + rel * np.cumsum(steps))
    spread = price * draw(st.sampled_from([0.0, 1e-12, 1e-4, 1e-2]))
    high = close + spread * rng.exponential(1.0, n)
    low = close - spread * rng.exponential(1.0, n)
    if draw(st.booleans()):
        close[:draw(st.integers(0, 40))] = np.nan       # a NaN prefix
    for _ in range(draw(st.integers(0, 3))):
        arr = draw(st.sampled_from([close, high, low]))
        arr[int(rng.integers(0, n))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return close, high, low


def _whole(kernel, cols, kparams, nout):
    n = len(cols[0])
    outs = tuple(np.full(n, -1.0) for _ in range(nout))
    kernel(*cols, *kparams, outs[0] if nout == 1 else outs)
    return outs


def _public(df, name, p):
    res = getattr(df.lake.indicators, name)(**p)
    if isinstance(res, pd.Series):
        return (res.to_numpy(),)
    return tuple(res[c].to_numpy() for c in res.columns)


def _bits_equal(a, b, what):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        bad = np.flatnonzero(x.view(np.int64) != y.view(np.int64))
        assert bad.size == 0, f"{what} output {k}: {bad.size} rows differ, first at {bad[:5]}: " \
                              f"{x[bad[:3]]} vs {y[bad[:3]]}"


def _check_all(close, high, low, parts):
    df = _frame(close, high, low)
    arrays = {"close": close, "high": high, "low": low}
    for name, p, kernel, kparams, need, nout in CASES:
        assert _split.SPLITTERS[kernel] is not None
        ref = _whole(kernel, [arrays[c] for c in need], kparams, nout)
        _bits_equal(_public(df, name, p), ref, f"{name}{p} parts={parts}")


@SETTINGS
@given(data=series(), parts=st.sampled_from([2, 3]))
def test_public_split_equals_the_whole_kernel_bit_for_bit(split_low, data, parts):
    split_low[0] = parts
    _check_all(*data, parts)


@SETTINGS
@given(data=series(n_min=64, n_max=400))
def test_short_parts_with_guesses_far_off_still_equal(split_low, data):
    """Parts of a few dozen rows: warm-ups too short to forget the start (redo paths)."""
    split_low[0] = 3
    _check_all(*data, 3)


def _direct(kernel, cols, kparams, nout, parts):
    n = len(cols[0])
    outs = tuple(np.full(n, -1.0) for _ in range(nout))
    R.drive(R.SPECS[kernel], kernel, cols, kparams, outs, parts, take_back=False)
    return outs


def test_every_recurrence_has_a_splitter():
    for k in (K.ewm_mean, K.rsi, K.macd, K.trix, K.tsi, K.kama, K.atr, K.psar):
        assert k in R.SPECS and _split.SPLITTERS.get(k) is not None


def _walk(n, seed=3, price=30000.0):
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    high = close * (1 + np.abs(rng.normal(0, 5e-4, n)))
    low = close * (1 - np.abs(rng.normal(0, 5e-4, n)))
    return close, high, low


@pytest.mark.parametrize("name, p, kernel, kparams, need, nout",
                         [c for c in CASES if c[0] != "kama" or c[1].get("window", 10) <= 32])
def test_paths_meet_on_market_data_without_a_redo(name, p, kernel, kparams, need, nout):
    """On a market-like walk the guessed part has forgotten its start by its first row (or
    within a checkpoint interval): the redo is short, and the result exact."""
    close, high, low = _walk(40_000)
    arrays = {"close": close, "high": high, "low": low}
    cols = [arrays[c] for c in need]
    got = _direct(kernel, cols, kparams, nout, 2)
    assert R.LAST_REDO[0] <= 40_000 // R.CHECKPOINTS
    _bits_equal(got, _whole(kernel, cols, kparams, nout), f"{name}{p}")


NEVER = [
    # a bar without high and low early on: the true ATR is NaN from there on, the guess not
    ("atr", K.atr, (14,), ("high", "low", "close"), 1, "high low"),
    # a missing close early on: the true EMA runs pandas' general row, the guess the
    # four-row steady state (a few ulp apart, and they stay apart here)
    ("ema", K.ewm_mean, (K.alpha_from_span(12), 12), ("close",), 1, "close"),
    # a window much longer than the part: the guess cannot forget its start in time
    ("rsi", K.rsi, (5000,), ("close",), 1, None),
    ("macd", K.macd, (1000, 3000, 900), ("close",), 3, None),
    ("trix", K.trix, (2000,), ("close",), 1, None),
    ("tsi", K.tsi, (2000, 1000), ("close",), 1, None),
]


@pytest.mark.parametrize("name, kernel, kparams, need, nout, hole", NEVER)
def test_paths_that_never_meet_take_the_full_redo(split_low, name, kernel, kparams, need, nout,
                                                  hole):
    close, high, low = _walk(6000, seed=11)
    arrays = {"close": close, "high": high, "low": low}
    for h in (hole or "").split():
        arrays[h][50] = np.nan
    cols = [arrays[c] for c in need]
    ref = _whole(kernel, cols, kparams, nout)
    got = _direct(kernel, cols, kparams, nout, 2)
    _bits_equal(got, ref, name)
    assert R.LAST_REDO[0] >= 2000, "expected the guessed part to be recomputed in full"
    df = _frame(arrays["close"], arrays["high"], arrays["low"])
    p = {"atr": {"window": 14}, "ema": {"window": 12}, "rsi": {"window": 5000},
         "macd": {"fast": 1000, "slow": 3000, "signal": 900}, "trix": {"window": 2000},
         "tsi": {"window": 2000, "fast": 1000}}[name]
    _bits_equal(_public(df, name, p), ref, f"public {name}")


@pytest.mark.parametrize("name, kernel, kparams, need, nout, hole", NEVER[:2])
def test_a_splitter_that_trusted_its_guess_would_be_wrong(name, kernel, kparams, need, nout,
                                                          hole):
    """The verification step is what makes the never-meeting cases exact: the guessed part
    alone differs from the whole kernel (so the redo test above can fail)."""
    close, high, low = _walk(6000, seed=11)
    arrays = {"close": close, "high": high, "low": low}
    for h in hole.split():
        arrays[h][50] = np.nan
    cols = [arrays[c] for c in need]
    ref = _whole(kernel, cols, kparams, nout)
    spec = R.SPECS[kernel]
    s = 3000 - (3000 - 14) % 4
    W = 1000
    st_ = np.empty(spec.nstate)
    sl = [c[s - W:s] for c in cols]
    scratch = [np.empty(W) for _ in range(nout)]
    outs = tuple(np.full(6000, -1.0) for _ in range(nout))
    k = spec.init(*sl, *kparams, *scratch, st_)
    spec.rows(*sl, *kparams, *scratch, k, W, st_)
    spec.rows(*cols, *kparams, *outs, s, 6000, st_)
    assert not np.array_equal(outs[0][s:], ref[0][s:], equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(data=series(n_min=20, n_max=600), cuts=st.lists(st.integers(0, 600), max_size=4))
def test_rows_cut_on_the_grid_give_the_kernels_bits(data, cuts):
    """init + rows(lo, c1) + rows(c1, c2) + ... == the kernel, for cuts on each kernel's grid
    (the property the driver relies on)."""
    close, high, low = data
    arrays = {"close": close, "high": high, "low": low}
    n = len(close)
    for name, p, kernel, kparams, need, nout in CASES:
        spec = R.SPECS[kernel]
        rp = spec.params(kparams)
        if rp is None:
            continue
        cols = [arrays[c] for c in need]
        outs = tuple(np.full(n, -1.0) for _ in range(nout))
        stt = np.empty(spec.nstate)
        lo = spec.init(*cols, *rp, *outs, stt)
        pts = sorted({lo + (c - lo) // spec.step * spec.step for c in cuts if lo <= c < n})
        a = lo
        for c in pts + [n]:
            spec.rows(*cols, *rp, *outs, a, c, stt)
            a = c
        _bits_equal(outs, _whole(kernel, cols, kparams, nout), f"{name}{p} cuts={pts}")


def test_below_the_threshold_nothing_splits(monkeypatch):
    monkeypatch.setattr(_split, "workers", lambda: 2)
    close, high, low = _walk(1000)
    out = np.full(1000, -1.0)
    assert _split.run(K.rsi, [close], (14,), (out,)) is False
    assert np.all(out == -1.0)                  # nothing written: the caller runs the kernel


# ---------------------------------------------------------------- ATR + ADX fused
from types import SimpleNamespace  # noqa: E402

from cryptolake.ops import _fuse  # noqa: E402


def _job(cols, params, nout):
    """A deferred call as `_fuse` documents it: shared input arrays, the kernel's parameters,
    its output arrays."""
    return SimpleNamespace(cols=cols, params=params,
                           outs=tuple(np.full(len(cols[0]), -1.0) for _ in range(nout)))


@settings(max_examples=40, deadline=None)
@given(data=series(n_min=1, n_max=700), wa=st.sampled_from([1, 2, 3, 5, 14, 30]),
       wx=st.sampled_from([1, 2, 3, 14, 40]), swap=st.booleans(), segs=st.integers(1, 3))
def test_atr_adx_fuser_equals_the_separate_kernels_bit_for_bit(data, wa, wx, swap, segs):
    close, high, low = data
    if swap:                                   # a few bars with high below low
        k = np.arange(0, len(close), 7)
        high[k], low[k] = low[k].copy(), high[k].copy()
    if not swap and len(close) % 2:            # and often all finite, high >= low
        close, high, low = (np.nan_to_num(x, nan=1.0, posinf=2.0, neginf=0.5)
                            for x in (close, high, low))
        high = np.maximum(high, low)
    n = len(close)
    cols = [high, low, close]
    ja = _job(cols, (wa,), 1)
    jx = _job(cols, (wx,), 3)
    cuts = np.linspace(0, n, segs + 1).astype(int)
    fuser = _fuse.FUSERS[(K.atr, K.adx)]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if b > a:
            fuser([ja, jx], int(a), int(b))
    ref_a = np.full(n, -1.0)
    ref_x = tuple(np.full(n, -1.0) for _ in range(3))
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if b > a:
            K.atr(high[a:b], low[a:b], close[a:b], wa, ref_a[a:b])
            K.adx(high[a:b], low[a:b], close[a:b], wx, tuple(r[a:b] for r in ref_x))
    _bits_equal(ja.outs, (ref_a,), f"atr wa={wa}")
    _bits_equal(jx.outs, ref_x, f"adx wx={wx}")


def test_atr_adx_fused_pass_runs_on_market_data():
    """On finite market bars on a tick grid (ties between up and down moves, flat bars) the
    fused loop (not the fallback) runs and still equals."""
    df = make_ohlcv(10_000, 7, price=30000.0, tick=1.0)
    close, high, low = (df[c].to_numpy() for c in ("close", "high", "low"))
    assert np.all(high >= low)
    out = np.full(10_000, -1.0)
    ox = tuple(np.full(10_000, -1.0) for _ in range(3))
    from cryptolake.kernels import volatility as V
    V.atr_adx(high, low, close, 14, 14, out, *ox)
    ref = _whole(K.atr, [high, low, close], (14,), 1)
    refx = _whole(K.adx, [high, low, close], (14,), 3)
    _bits_equal((out,), ref, "atr")
    _bits_equal(ox, refx, "adx")
    assert np.all(np.isfinite(out[14:])) and np.all(ox[0][28:] > 0)


# ---------------------------------------------------------------- KAMA's four-row form
def _kama_float_row_form(c, w=10, fast=2, slow=30):
    """ta's row-by-row k + sc * (c - k) in float64 (the form KAMA had before `_kama4`)."""
    fsc, ssc = 2.0 / (fast + 1), 2.0 / (slow + 1.0)
    out = np.full(len(c), np.nan)
    k = c[w - 1]
    out[w - 1] = k
    for i in range(w, len(c)):
        den = 0.0
        for j in range(w):                       # newest first, as the kernel
            den += abs(c[i - j] - c[i - j - 1])
        er = abs(c[i] - c[i - w]) / den if den != 0 else 0.0
        sc = (er * (fsc - ssc) + ssc) ** 2
        k = k + sc * (c[i] - k)
        out[i] = k
    return out


@settings(max_examples=25, deadline=None)
@given(price=st.sampled_from([1e-8, 0.001234, 1.0, 65000.0, 3e9]),
       rel=st.sampled_from([0.0, 1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 3e-2]),
       seed=st.integers(0, 2**32 - 1), flat=st.integers(0, 900))
def test_kama_four_row_form_is_no_worse_than_the_row_form_against_extended_precision(
        price, rel, seed, flat):
    """`_kama4` trades ta's bits for speed: on near-flat and extreme series its distance to
    the extended-precision recurrence is no worse than the float64 row form's (ta's own
    arithmetic), and a flat stretch stays exactly on the price."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("no extended precision long double on this platform")
    rng = np.random.default_rng(seed)
    steps = rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 3.0], size=1500)
    steps[300:300 + flat] = 0.0
    c = price * (1.0 + rel * np.cumsum(steps))
    exact = _kama_longdouble(c)[9:].astype(float)
    ours = np.empty(len(c))
    K.kama(c, 10, 2, 30, ours)
    row = _kama_float_row_form(c)
    scale = float(np.mean(np.abs(exact)))
    err_ours = float(np.max(np.abs(ours[9:] - exact))) / scale
    err_row = float(np.max(np.abs(row[9:] - exact))) / scale
    assert err_ours <= max(err_row, 8 * np.finfo(float).eps), (err_ours, err_row)
    if rel == 0.0:
        assert np.all(ours[9:] == c[9:])


def test_parts_no_worker_started_are_taken_back_by_the_caller():
    """With every worker thread busy, the caller does not wait for the guessed parts: it
    computes them itself from the true state (no guess, no redo), bit for bit."""
    import threading

    from cryptolake.ops import _threads
    close, high, low = _walk(50_000)
    ref = _whole(K.rsi, [close], (14,), 1)
    release = threading.Event()
    busy = [_threads.pool().submit(release.wait, 60) for _ in range(_threads.workers())]
    got = (np.full(50_000, -1.0),)
    done = threading.Thread(target=R.drive, args=(R.SPECS[K.rsi], K.rsi, [close], (14,), got, 3))
    try:
        done.start()
        done.join(30)
        assert not done.is_alive(), "the caller waited on parts no worker could start"
    finally:
        release.set()
        for f in busy:
            f.result()
    assert R.LAST_REDO[0] == 0
    _bits_equal(got, ref, "rsi")


def test_intervals_a_slow_worker_has_not_started_are_taken_back():
    """A worker that gets little CPU (here: its rows calls are slowed down, the caller's
    first part too, so that the worker has started) stops at its next checkpoint; the caller
    computes the rest from the true state, bit for bit."""
    import dataclasses
    import time

    from cryptolake.ops._threads import on_worker
    real = R.SPECS[K.rsi]

    def rows(*args):
        # the worker gets 0.2 s per checkpoint interval; the caller's part 0 ends after 0.5 s
        time.sleep(0.2 if on_worker() else (0.5 if args[-3] == 0 else 0.0))
        real.rows(*args)

    slow = dataclasses.replace(real, rows=rows)
    close, high, low = _walk(20_000)
    got = (np.full(20_000, -1.0),)
    R.drive(slow, K.rsi, [close], (14,), got, 2)
    part = 20_000 - (20_000 + real.warm((14,))) // 2        # rows of part 1
    assert 0 < R.LAST_TAKEN[0] < part - 1000, (R.LAST_TAKEN[0], part)
    _bits_equal(got, _whole(K.rsi, [close], (14,), 1), "rsi")
