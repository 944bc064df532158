"""One long series on all cores (`ops/_split_blocks.py`): with the split threshold lowered,
the public indicator equals the kernel's own whole-series call bit for bit (NaN positions and
signs included), on rough series (NaN/inf, flat runs, magnitude jumps) whose lengths sit
around the kernel's block boundaries; the row-range kernels write exactly their rows; the
sma + bbands fuser equals the two separate kernels."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.kernels import indicators as K
from cryptolake.kernels import ma, oscillators, rolling, volatility, volume
from cryptolake.ops import _fuse, _split, _split_blocks
from cryptolake.ops.indicators import INDICATORS

PROP = settings(max_examples=int(os.environ.get("CRYPTOLAKE_HYPOTHESIS_EXAMPLES", "12")),
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _o(n, k):
    return tuple(np.full(n, 7.25) for _ in range(k))


# name -> (public kwargs, kernel, whole-series call (cols -> tuple of outputs), block rows)
CASES = {
    "sma-12": ("sma", {"window": 12}, K.rolling_mean,
               lambda h, l, c, v: (lambda o: (K.rolling_mean(c, 12, 12, o[0]), o)[1])(_o(len(c), 1)),
               rolling.mean_block(12)),
    "sma-1500": ("sma", {"window": 1500}, K.rolling_mean,           # window > 1024-row block
                 lambda h, l, c, v: (lambda o: (K.rolling_mean(c, 1500, 1500, o[0]), o)[1])(_o(len(c), 1)),
                 rolling.mean_block(1500)),
    "wma-9": ("wma", {"window": 9}, K.wma,
              lambda h, l, c, v: (lambda o: (K.wma(c, 9, o[0]), o)[1])(_o(len(c), 1)),
              ma.wma_block(9)),
    "wma-100": ("wma", {"window": 100}, K.wma,                      # window > 64-row block
                lambda h, l, c, v: (lambda o: (K.wma(c, 100, o[0]), o)[1])(_o(len(c), 1)),
                ma.wma_block(100)),
    "bbands-20": ("bbands", {"window": 20}, K.bbands,
                  lambda h, l, c, v: (lambda o: (K.bbands(c, 20, 2.0, o), o)[1])(_o(len(c), 3)),
                  rolling.std_block(20)),
    "bbands-700": ("bbands", {"window": 700, "k": 1.5}, K.bbands,   # window > 512-row block
                   lambda h, l, c, v: (lambda o: (K.bbands(c, 700, 1.5, o), o)[1])(_o(len(c), 3)),
                   rolling.std_block(700)),
    "stoch": ("stoch", {}, K.stoch,
              lambda h, l, c, v: (lambda o: (K.stoch(h, l, c, 14, 3, o), o)[1])(_o(len(c), 2)), 14),
    "williams_r": ("williams_r", {"window": 30}, K.williams_r,
                   lambda h, l, c, v: (lambda o: (K.williams_r(h, l, c, 30, o[0]), o)[1])(_o(len(c), 1)),
                   30),
    "donchian": ("donchian", {}, K.donchian,
                 lambda h, l, c, v: (lambda o: (K.donchian(h, l, 20, 0, o), o)[1])(_o(len(c), 3)), 20),
    "donchian-offset": ("donchian", {"window": 16, "offset": 5}, K.donchian,
                        lambda h, l, c, v: (lambda o: (K.donchian(h, l, 16, 5, o), o)[1])(_o(len(c), 3)),
                        16),
    "aroon": ("aroon", {}, K.aroon,
              lambda h, l, c, v: (lambda o: (K.aroon(h, l, 25, o), o)[1])(_o(len(c), 2)), 26),
    "uo": ("ultimate_oscillator", {}, K.ultimate_oscillator,
           lambda h, l, c, v: (lambda o: (K.ultimate_oscillator(h, l, c, 7, 14, 28, 4.0, 2.0, 1.0,
                                                                o[0]), o)[1])(_o(len(c), 1)),
           oscillators.UO_BLOCK),
    "uo-300": ("ultimate_oscillator", {"window": 5, "window2": 40, "window3": 300}, K.ultimate_oscillator,
               lambda h, l, c, v: (lambda o: (K.ultimate_oscillator(h, l, c, 5, 40, 300, 4.0, 2.0,
                                                                    1.0, o[0]), o)[1])(_o(len(c), 1)),
               oscillators.UO_BLOCK),                                # window > 256-row block
    "cci": ("cci", {}, K.cci,
            lambda h, l, c, v: (lambda o: (K.cci(h, l, c, 20, 0.015, o[0]), o)[1])(_o(len(c), 1)), 8),
    "vwap": ("vwap", {}, K.vwap,
             lambda h, l, c, v: (lambda o: (K.vwap(h, l, c, v, 14, o[0]), o)[1])(_o(len(c), 1)),
             volume.FLOW_BLOCK),
    "cmf-300": ("cmf", {"window": 300}, K.cmf,
                lambda h, l, c, v: (lambda o: (K.cmf(h, l, c, v, 300, o[0]), o)[1])(_o(len(c), 1)),
                volume.FLOW_BLOCK),
    "cci-300": ("cci", {"window": 300}, K.cci,
                lambda h, l, c, v: (lambda o: (K.cci(h, l, c, 300, 0.015, o[0]), o)[1])(_o(len(c), 1)),
                8),
}


def test_every_case_kernel_has_a_splitter():
    for name, (_, _, kernel, _, _) in CASES.items():
        assert kernel in _split.SPLITTERS, name


@st.composite
def rough_series(draw, block: int):
    """A frame whose length is k blocks and -1, 0 or +1 rows (k = 1..6): a walk with scale
    jumps, flat stretches (h = l = c) and NaN / +-inf in single columns or whole rows."""
    k = draw(st.integers(1, 6))
    n = max(2, k * block + draw(st.sampled_from([-1, 0, 1])))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    price = draw(st.sampled_from([1e-6, 1.0, 65000.0]))
    close = price * np.exp(np.cumsum(rng.normal(0.0, 2e-3, n)))
    spread = price * rng.exponential(1e-3, n)
    high = close + spread * rng.random(n)
    low = close - spread * rng.random(n)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 3) * (rng.random(n) > 0.05)
    cols = {"high": high, "low": low, "close": close, "volume": volume}
    for _ in range(draw(st.integers(0, 2))):          # magnitude jumps
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 200)))
        f = draw(st.sampled_from([1e6, 1e-6]))
        for c in ("high", "low", "close"):
            cols[c][a:b] *= f
    for _ in range(draw(st.integers(0, 3))):          # flat stretches
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(2, 3 * block + 2)))
        for c in ("high", "low", "close"):
            cols[c][a:b] = close[a]
    for _ in range(draw(st.integers(0, 3))):          # missing values
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 4)))
        bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        col = draw(st.sampled_from(["high", "low", "close", "volume", None]))
        for c in (cols if col is None else [col]):
            cols[c][a:b] = bad
    idx = pd.date_range("2024-03-01", periods=n, freq="1min", tz="UTC", name="open_time")
    return pd.DataFrame(cols, index=idx)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _check_case(name: str, df: pd.DataFrame) -> None:
    ind, kwargs, kernel, whole, _ = CASES[name]
    calls = []
    splitter = _split.SPLITTERS[kernel]

    def counting(*args):
        calls.append(1)
        return splitter(*args)

    cols = [np.ascontiguousarray(df[c].to_numpy()) for c in ("high", "low", "close", "volume")]
    want = whole(*cols)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_split, "SPLIT_MIN_ROWS", 1)
        mp.setattr(_split, "workers", lambda: 3)      # three parts even on a one-core box
        mp.setitem(_split.SPLITTERS, kernel, counting)
        got = INDICATORS[ind](df, **kwargs)
    assert calls, f"{name}: the splitter did not run"
    got = np.asarray(got, dtype=np.float64).reshape(len(df), -1)
    for j, w in enumerate(want):
        np.testing.assert_array_equal(got[:, j], w, err_msg=f"{name} output {j}")
        bad = np.flatnonzero(_bits(got[:, j]) != _bits(w))
        assert bad.size == 0, f"{name} output {j}: bits differ at rows {bad[:10]}"


@pytest.mark.parametrize("name", sorted(CASES))
@PROP
@given(data=st.data())
def test_split_equals_whole_series_kernel(name, data):
    df = data.draw(rough_series(CASES[name][4]))
    _check_case(name, df)


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_equals_whole_series_kernel_finite(name):
    """Finite series (the fast paths of the max/min kernels) of many blocks."""
    block = CASES[name][4]
    rng = np.random.default_rng(7)
    for n in (block - 1, block, block + 1, 5 * block + 3, 40 * block + 1):
        if n < 2:
            continue
        close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
        close[n // 3:n // 3 + block + 5] = close[n // 3]          # a flat run across a boundary
        df = pd.DataFrame({"high": close + rng.random(n), "low": close - rng.random(n),
                           "close": close, "volume": rng.random(n)},
                          index=pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"))
        _check_case(name, df)


def test_split_check_can_fail():
    """A splitter that leaves one row unwritten is caught."""
    kernel = K.rolling_mean
    real = _split.SPLITTERS[kernel]

    def broken(cols, params, outs, parts):
        real(cols, params, outs, parts)
        outs[0][len(outs[0]) // 2] += 1e-9

    n = 3000
    close = np.linspace(1.0, 2.0, n) ** 2
    df = pd.DataFrame({"high": close, "low": close, "close": close, "volume": close},
                      index=pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(_split.SPLITTERS, kernel, broken)
        with pytest.raises(AssertionError):
            _check_case("sma-12", df)


def test_ranges_start_at_block_boundaries():
    for n, block, parts in [(100_003, 1024, 2), (5, 3, 2), (10 * 26, 26, 3), (1, 8, 2)]:
        rs = _split_blocks._ranges(n, block, parts)
        assert rs[0][0] == 0 and rs[-1][1] == n
        assert all(a % block == 0 for a, _ in rs)
        assert all(b == a2 for (_, b), (a2, _) in zip(rs[:-1], rs[1:]))
        assert len(rs) <= parts * _split_blocks.RANGES_PER_PART


# ---------------------------------------------------------------- row-range kernels
def _rows_cases(n, rng):
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    high = close + rng.random(n)
    low = close - rng.random(n)
    close[n // 2] = np.nan                   # the NaN-aware loops of the block kernels too
    fin = close.copy()
    fin[n // 2] = fin[n // 2 - 1]
    tp = (high + low + fin) / 3.0
    mean = np.empty(n)
    K.rolling_mean_exact(tp, 20, 20, mean)
    return [
        ("rolling_mean", rolling.mean_block(30), 1,
         lambda o, a, b: rolling.rolling_mean_rows(close, 30, 10, o[0], a, b)),
        ("bbands", rolling.std_block(20), 3,
         lambda o, a, b: volatility.bbands_rows(close, 20, 2.0, o, a, b)),
        ("wma", ma.wma_block(5), 1, lambda o, a, b: ma.wma_rows(close, 5, o[0], a, b)),
        ("range_position", 14, 1,
         lambda o, a, b: oscillators.range_position_rows(high, low, fin, 14, 0, o[0], a, b)),
        ("donchian", 14, 3, lambda o, a, b: volatility.donchian_rows(high, low, 14, o, a, b)),
        ("aroon", 26, 2, lambda o, a, b: oscillators.aroon_rows(high, low, 25, o, a, b)),
        ("uo", oscillators.UO_BLOCK, 1,
         lambda o, a, b: oscillators.ultimate_oscillator_rows(high, low, close, 7, 14, 300, 4.0,
                                                              2.0, 1.0, o[0], a, b)),
        ("cci", 1, 1, lambda o, a, b: oscillators.cci_rows(tp, 20, 0.015, o[0], a, b)),
    ], mean


def test_row_range_kernels_write_exactly_their_rows():
    n = 3000
    cases, mean = _rows_cases(n, np.random.default_rng(3))
    for name, block, k, call in cases:
        # cci_rows turns the rolling means it finds in `out` into CCI
        init = (lambda: (mean.copy(),)) if name == "cci" else (lambda: _o(n, k))
        whole = init()
        call(whole, 0, n)
        for a in sorted({block, 2 * block, (n // 2 // block) * block, (n // block) * block}):
            if a >= n:
                continue
            b = min(n, a + 3 * block + (17 if name == "cci" else block))
            part = init()
            before = init()
            call(part, a, b)
            for p, q, w in zip(part, before, whole, strict=True):
                np.testing.assert_array_equal(p[a:b], w[a:b], err_msg=f"{name} rows {a}..{b}")
                # nothing outside the range is written
                np.testing.assert_array_equal(p[:a], q[:a], err_msg=name)
                np.testing.assert_array_equal(p[b:], q[b:], err_msg=name)


# ---------------------------------------------------------------- sma + bbands fuser
def _jobs(close, w, minp, bw, k):
    n = len(close)
    sj = SimpleNamespace(cols=[close], params=(w, minp), outs=(np.full(n, 7.25),))
    bj = SimpleNamespace(cols=[close], params=(bw, k),
                         outs=(np.full(n, 7.25), np.full(n, 7.25), np.full(n, 7.25)))
    return sj, bj


def _separate(close, segs, w, minp, bw, k):
    n = len(close)
    mo = np.full(n, 7.25)
    bo = (np.full(n, 7.25), np.full(n, 7.25), np.full(n, 7.25))
    for a, b in segs:
        K.rolling_mean(close[a:b], w, minp, mo[a:b])
        K.bbands(close[a:b], bw, k, tuple(o[a:b] for o in bo))
    return mo, bo


@pytest.mark.parametrize("w,minp,bw,k", [(12, 12, 20, 2.0), (20, 5, 20, 2.5), (1500, 1500, 20, 2.0),
                                          (3000, 3000, 2999, 1.0), (5, 5, 700, 2.0)])
def test_sma_bbands_fuser_equals_separate_kernels(w, minp, bw, k):
    fuse = _fuse.FUSERS[(K.rolling_mean, K.bbands)]
    rng = np.random.default_rng(w + bw)
    n = 30_011
    close = 50 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    close[5000:5003] = np.nan
    close[7000] = np.inf
    close[9000:12000] = close[9000]                      # a flat run over several blocks
    segs = [(0, 4097), (4097, 4100), (4100, 21_000), (21_000, n)]   # symbols, one of 3 rows
    want_m, want_b = _separate(close, segs, w, minp, bw, k)
    for low_threshold in (False, True):                  # the serial steps, and on threads
        sj, bj = _jobs(close, w, minp, bw, k)
        with pytest.MonkeyPatch.context() as mp:
            if low_threshold:
                mp.setattr(_split, "SPLIT_MIN_ROWS", 1)
                mp.setattr(_split_blocks, "workers", lambda: 3)
            for a, b in segs:
                fuse([sj, bj], a, b)
        np.testing.assert_array_equal(_bits(sj.outs[0]), _bits(want_m))
        for got, want in zip(bj.outs, want_b, strict=True):
            np.testing.assert_array_equal(_bits(got), _bits(want))


def test_fused_step_is_a_multiple_of_both_blocks():
    for w, bw in [(12, 20), (1500, 20), (5, 700), (3000, 2999)]:
        step = _split_blocks._fused_step(w, bw)
        if step:
            assert step % rolling.mean_block(w) == 0 and step % rolling.std_block(bw) == 0
    assert _split_blocks._fused_step(3000, 2999) == 0     # nothing shared: separate calls


# ---------------------------------------------------------------- mfi's blocks of rows
def _mfi_exact(h, l, c, v, w):
    """MFI with every window's positive and negative flows summed exactly (math.fsum)."""
    import math
    n = len(c)
    tp = (h + l + c) / 3.0
    prev = np.r_[np.nan, tp[:-1]]
    f = tp * v * np.where(tp > prev, 1.0, np.where(tp < prev, -1.0, 0.0))
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        win = f[i - w + 1:i + 1]
        if not np.all(np.isfinite(win)):
            continue
        p = math.fsum(win[win > 0])
        q = abs(math.fsum(win[win < 0]))
        out[i] = 100.0 * p / (p + q) if p + q > 0 else np.nan
    return out


@pytest.mark.parametrize("w", [14, 600])
def test_mfi_blocks_carry_the_window_across_boundaries(w):
    """mfi runs in 512-row blocks whose running sums continue from the block before (the
    window's flows move to the front of its scratch): lengths around block boundaries,
    windows longer than a block, zero-volume stretches and a missing value, against exact
    window sums."""
    from cryptolake.kernels import volume
    rng = np.random.default_rng(w)
    for n in (511, 512, 513, 1537, 3000):
        c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
        h = c + rng.random(n) * 0.1
        l = c - rng.random(n) * 0.1
        v = rng.lognormal(1.0, 1.0, n) * (rng.random(n) > 0.05)
        v[n // 3:n // 3 + 700] = 0.0                      # a halt longer than a block
        v[n // 2] *= 1e9                                  # a huge flow leaves the window
        if n > 1000:
            c[900] = np.nan
        out = np.empty(n)
        volume.mfi(h, l, c, v, w, out)
        want = _mfi_exact(h, l, c, v, w)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(want), err_msg=f"n={n}")
        ok = ~np.isnan(want)
        np.testing.assert_allclose(out[ok], want[ok], rtol=0, atol=1e-7, err_msg=f"n={n}")


def test_sma_bbands_fuser_takes_each_jobs_own_column():
    """Jobs on different columns (not the fuser's case, but possible): each kernel reads its
    own input."""
    fuse = _fuse.FUSERS[(K.rolling_mean, K.bbands)]
    rng = np.random.default_rng(5)
    n = 5000
    a = 10 + np.cumsum(rng.normal(0, 0.1, n))
    b = 20 + np.cumsum(rng.normal(0, 0.1, n))
    sj, bj = _jobs(a, 12, 12, 20, 2.0)
    bj.cols = [b]
    fuse([sj, bj], 0, n)
    want_m, _ = _separate(a, [(0, n)], 12, 12, 20, 2.0)
    _, want_b = _separate(b, [(0, n)], 12, 12, 20, 2.0)
    np.testing.assert_array_equal(sj.outs[0], want_m)
    for got, want in zip(bj.outs, want_b, strict=True):
        np.testing.assert_array_equal(got, want)
    sj, bj = _jobs(a, 12, 12, 20, 2.0)
    bj.cols = [a[:]]                                   # a view of the same column: fused
    fuse([sj, bj], 0, n)
    np.testing.assert_array_equal(sj.outs[0], want_m)


@pytest.mark.parametrize("name", ["vwap", "cmf-300"])
@pytest.mark.parametrize("case", ["missing at the edge", "no volume across", "missing just before",
                                  "huge then tiny"])
def test_flow_state_rebuilt_at_block_boundaries(name, case):
    """vwap/cmf ranges start at FLOW_BLOCK boundaries with the state rebuilt from the window
    before: missing rows, windows without volume and the re-sum rule at the boundary."""
    B = volume.FLOW_BLOCK
    n = 3 * B + 17
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    cols = {"high": close + rng.random(n), "low": close - rng.random(n), "close": close,
            "volume": rng.random(n) + 0.5}
    for b in (B, 2 * B, 3 * B):
        if case == "missing at the edge":
            cols["volume"][b - 1] = np.nan
            cols["high"][b] = np.inf
        elif case == "no volume across":
            cols["volume"][b - 400:b + 3] = 0.0
        elif case == "missing just before":
            cols["close"][b - 300] = np.nan
            cols["volume"][b - 13] = -np.inf
        else:
            cols["volume"][b - 200:b - 100] *= 1e9
    df = pd.DataFrame(cols, index=pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"))
    _check_case(name, df)
