"""Indicators: every one against its oracle (`cryptolake.testing.oracles`: `ta` with
fillna=False, or an exact reference), plus properties the oracles cannot express: no
look-ahead, bounds, per-symbol independence, output names, validation errors."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.ops.indicators import INDICATORS, add_indicators
from cryptolake.testing.oracles import ORACLES, mismatch

CONTRACT = ["sma", "ema", "wma", "rsi", "macd", "bbands", "atr", "vwap", "obv", "stoch", "adx",
            "cci", "mfi", "williams_r", "roc", "kama", "keltner", "donchian"]


def make_ohlcv(n: int, seed: int, price: float = 30000.0, flat: tuple | None = (0.3, 40),
               tick: float = 0.01) -> pd.DataFrame:
    """A random walk with realistic magnitudes: prices on a tick grid, a constant stretch of
    `flat` = (where as a fraction, length) with zero volume (a futures halt), and ~5% other
    zero-volume bars."""
    rng = np.random.default_rng(seed)
    close = np.round(price * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n))) / tick) * tick
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + np.round(rng.exponential(5 * price / 3e4, n) / tick) * tick
    low = np.minimum(open_, close) - np.round(rng.exponential(5 * price / 3e4, n) / tick) * tick
    volume = np.round(rng.lognormal(1.0, 1.0, n), 3) * (rng.random(n) > 0.05)
    if flat:
        a = int(n * flat[0])
        b = min(n, a + flat[1])
        close[a:b] = open_[a:b] = high[a:b] = low[a:b] = close[a]
        if b < n:
            open_[b] = close[a]
            high[b] = max(high[b], open_[b])
            low[b] = min(low[b], open_[b])
        volume[a:b] = 0.0
    idx = pd.date_range("2024-03-01", periods=n, freq="1min", tz="UTC", name="open_time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=idx)


FRAMES = {
    "btc": make_ohlcv(700, 1),
    "alt": make_ohlcv(500, 2, price=0.05234, tick=1e-5, flat=(0.6, 25)),
    "eth": make_ohlcv(400, 3, price=2500.0, flat=None),
}

CASES = [(name, p) for name, o in ORACLES.items() for p in o.params]


def _id(case):
    name, p = case
    return name + ("-" + "-".join(f"{k}{v}" for k, v in p.items()) if p else "")


def test_every_contract_indicator_has_an_oracle():
    assert set(CONTRACT) <= set(INDICATORS)
    assert set(INDICATORS) == set(ORACLES)


@pytest.mark.parametrize("frame", sorted(FRAMES))
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_oracle(case, frame):
    name, params = case
    df = FRAMES[frame]
    ours = INDICATORS[name](df, **params)
    ref = ORACLES[name].reference(df, **params)
    msg = mismatch(ours, ref)
    assert msg is None, f"{name}{params} on {frame}: {msg}"
    assert ours.index.equals(df.index)


def test_comparison_rule_can_fail():
    df = FRAMES["btc"]
    ref = ORACLES["rsi"].reference(df)
    ours = INDICATORS["rsi"](df)
    assert mismatch(ours, ref) is None
    bad = ours.copy()
    bad.iloc[300] += 1e-6 * 50            # beyond 1e-9 of the typical magnitude (~50)
    assert "row 300" in mismatch(bad, ref)
    bad = ours.copy()
    bad.iloc[5] = 50.0                    # finite where ta has NaN
    assert "NaN pattern" in mismatch(bad, ref)
    assert "name" in mismatch(ours.rename("rsi"), ref)


def test_bbands_reference_is_exact_where_pandas_drifts():
    # A long, high-priced walk: pandas' online rolling std drifts; ours tracks the two-pass value.
    df = make_ohlcv(20000, 7, price=60000.0, flat=None)
    x = df["close"].to_numpy()
    ours = INDICATORS["bbands"](df, window=20)
    win = np.lib.stride_tricks.sliding_window_view(x, 20)
    exact_sd = win.std(axis=1)
    sd = ((ours["bb_upper"] - ours["bb_mid"]) / 2.0).to_numpy()[19:]
    assert np.max(np.abs(sd - exact_sd)) <= 1e-9 * np.mean(x)


# ---------------------------------------------------------------- per symbol
def test_multiindex_computes_per_symbol():
    parts = {"BTCUSDT": FRAMES["btc"].iloc[:300], "ETHUSDT": FRAMES["eth"].iloc[:250],
             "XUSDT": FRAMES["alt"].iloc[:5]}
    panel = pd.concat(parts, names=["symbol"])
    for name in INDICATORS:
        got = INDICATORS[name](panel)
        assert got.index.equals(panel.index)
        for sym, part in parts.items():
            alone = INDICATORS[name](part)
            piece = got.xs(sym, level="symbol")
            np.testing.assert_array_equal(np.asarray(piece, dtype=float),
                                          np.asarray(alone, dtype=float), err_msg=name)


def test_multiindex_matches_oracle_per_symbol():
    panel = pd.concat({"A": FRAMES["btc"].iloc[:300], "B": FRAMES["eth"].iloc[:260]},
                      names=["symbol"])
    for name in ("rsi", "macd", "atr", "adx", "bbands", "vwap", "obv"):
        msg = mismatch(INDICATORS[name](panel), ORACLES[name].reference(panel))
        assert msg is None, f"{name}: {msg}"


# ---------------------------------------------------------------- properties (hypothesis)
@st.composite
def ohlcv(draw, max_n: int = 60):
    n = draw(st.integers(1, max_n))
    moves = draw(st.lists(st.one_of(st.just(0.0), st.floats(-0.03, 0.03)), min_size=n,
                          max_size=n))
    price = draw(st.sampled_from([0.001234, 1.0, 123.45, 65000.0]))
    close = price * np.exp(np.cumsum(moves))
    spread = np.array(draw(st.lists(st.sampled_from([0.0, 0.001, 0.004]), min_size=n,
                                    max_size=n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread / 2)
    # volumes as the exchange reports them: 0, or a multiple of a lot size (here 0.001)
    volume = np.array(draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e6).map(
        lambda v: round(v, 3))), min_size=n, max_size=n)))
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=idx)


SMALL = {"sma": {"window": 3}, "ema": {"window": 3}, "wma": {"window": 4}, "rsi": {"window": 5},
         "macd": {"fast": 3, "slow": 7, "signal": 3}, "bbands": {"window": 4},
         "atr": {"window": 4}, "vwap": {"window": 4}, "obv": {}, "stoch": {"window": 4},
         "adx": {"window": 3}, "cci": {"window": 4}, "mfi": {"window": 4},
         "williams_r": {"window": 4}, "roc": {"window": 2}, "kama": {"window": 4},
         "keltner": {"window": 4, "atr_window": 3, "original_version": False},
         "donchian": {"window": 4, "offset": 1}, "tsi": {"window": 5, "fast": 3},
         "trix": {"window": 3}, "stoch_rsi": {"window": 4, "smooth1": 2, "smooth2": 2},
         "ultimate_oscillator": {"window": 2, "window2": 4, "window3": 6},
         "aroon": {"window": 4}, "psar": {}, "cmf": {"window": 4}, "force_index": {"window": 3},
         "eom": {"window": 3}}

# CRYPTOLAKE_HYPOTHESIS_EXAMPLES=500 for a deeper run
PROP = settings(max_examples=int(os.environ.get("CRYPTOLAKE_HYPOTHESIS_EXAMPLES", "25")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _arr(x):
    return np.asarray(x, dtype=np.float64)


@PROP
@given(df=ohlcv(), data=st.data())
def test_no_lookahead(df, data):
    """f(x[:k]) == f(x)[:k] for every indicator: no value depends on a later row."""
    k = data.draw(st.integers(1, len(df)))
    for name, p in SMALL.items():
        full = _arr(INDICATORS[name](df, **p))
        part = _arr(INDICATORS[name](df.iloc[:k], **p))
        np.testing.assert_array_equal(part, full[:k], err_msg=name)


@PROP
@given(df=ohlcv())
def test_bounds(df):
    eps = 1e-9

    def within(x, lo, hi, what):
        x = _arr(x)
        x = x[np.isfinite(x)]
        assert np.all((x >= lo - eps) & (x <= hi + eps)), (what, x.min(), x.max())

    within(INDICATORS["rsi"](df, window=5), 0, 100, "rsi")
    within(INDICATORS["stoch"](df, window=4), 0, 100, "stoch")
    within(INDICATORS["williams_r"](df, window=4), -100, 0, "williams_r")
    within(INDICATORS["mfi"](df, window=4), 0, 100, "mfi")
    within(INDICATORS["stoch_rsi"](df, window=4, smooth1=2, smooth2=2), 0, 1, "stoch_rsi")
    within(INDICATORS["aroon"](df, window=4), 0, 100, "aroon")
    within(INDICATORS["adx"](df, window=3), 0, 100, "adx")
    for name, cols, p in (("bbands", ("bb_lower", "bb_mid", "bb_upper"), {"window": 4}),
                          ("donchian", ("dc_lower", "dc_mid", "dc_upper"), {"window": 4}),
                          ("keltner", ("kc_lower", "kc_mid", "kc_upper"),
                           {"window": 4, "original_version": False})):
        out = INDICATORS[name](df, **p)
        lo, mid, hi = (_arr(out[c]) for c in cols)
        ok = np.isfinite(lo) & np.isfinite(mid) & np.isfinite(hi)
        scale = np.abs(mid[ok]) * 1e-12
        assert np.all(lo[ok] <= mid[ok] + scale) and np.all(mid[ok] <= hi[ok] + scale), name
    dc = INDICATORS["donchian"](df, window=4)
    ok = dc["dc_upper"].notna().to_numpy()
    assert np.all(dc["dc_upper"].to_numpy()[ok] <= df["high"].cummax().to_numpy()[ok])


@PROP
@given(df=ohlcv(max_n=40))
def test_hypothesis_frames_match_oracle(df):
    """Short random frames (flat runs, zero volume, tiny and huge prices) against the oracles."""
    for name, p in SMALL.items():
        if name == "adx" and len(df) < 2 * p["window"] + 1:
            continue                      # ta's ADX raises on frames this short
        if name in ("atr", "keltner") and len(df) < p.get("atr_window", p["window"]):
            continue                      # so does ta's ATR
        msg = mismatch(INDICATORS[name](df, **p), ORACLES[name].reference(df, **p))
        assert msg is None, f"{name}{p}: {msg}"


# ---------------------------------------------------------------- names and shapes
def test_output_names_follow_the_contract():
    df = FRAMES["eth"]
    ind = INDICATORS
    assert ind["rsi"](df).name == "rsi_14"
    assert ind["rsi"](df, window=7).name == "rsi_7"
    for name, w in (("sma", 12), ("ema", 12), ("wma", 9), ("atr", 14), ("vwap", 14),
                    ("cci", 20), ("mfi", 14), ("williams_r", 14), ("roc", 12), ("kama", 10)):
        out = ind[name](df)
        assert isinstance(out, pd.Series) and out.name == f"{name}_{w}", name
    assert ind["obv"](df).name == "obv"
    assert list(ind["macd"](df).columns) == ["macd", "macd_signal", "macd_hist"]
    assert list(ind["bbands"](df).columns) == ["bb_mid", "bb_upper", "bb_lower"]
    assert list(ind["stoch"](df).columns) == ["stoch_k", "stoch_d"]
    assert list(ind["adx"](df).columns) == ["adx", "adx_pos", "adx_neg"]
    assert list(ind["keltner"](df).columns) == ["kc_mid", "kc_upper", "kc_lower"]
    assert list(ind["donchian"](df).columns) == ["dc_mid", "dc_upper", "dc_lower"]


def test_contract_parameter_names():
    df = FRAMES["eth"]
    INDICATORS["macd"](df, fast=5, slow=10, signal=4)
    INDICATORS["bbands"](df, window=10, k=1.5)
    INDICATORS["keltner"](df, window=10, atr_window=5, k=1.0)
    INDICATORS["stoch"](df, window=10, smooth=2)
    INDICATORS["kama"](df, window=5, fast=3, slow=20)
    INDICATORS["cci"](df, window=10, c=0.02)


def test_add_indicators_returns_a_copy_with_columns():
    df = FRAMES["eth"]
    before = df.copy()
    out = add_indicators(df, ["rsi", ("macd", {"fast": 8}), ("sma", {"window": 50}), "obv"])
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == list(df.columns) + ["rsi_14", "macd", "macd_signal",
                                                    "macd_hist", "sma_50", "obv"]
    pd.testing.assert_series_equal(out["rsi_14"], INDICATORS["rsi"](df))
    out["rsi_14"] = 0.0
    pd.testing.assert_frame_equal(df, before)
    with pytest.raises(ValueError, match="both"):
        add_indicators(df, ["rsi", ("rsi", {"window": 14})])


def test_empty_frame():
    df = FRAMES["eth"].iloc[:0]
    for name in INDICATORS:
        out = INDICATORS[name](df)
        assert len(out) == 0


# ---------------------------------------------------------------- validation
def test_missing_columns_are_named():
    df = FRAMES["eth"][["close"]]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['high', 'low'\]"):
        INDICATORS["atr"](df)
    with pytest.raises(ValueError, match="volume"):
        INDICATORS["obv"](df)
    INDICATORS["rsi"](df)                 # only the columns an indicator needs are required


@pytest.mark.parametrize("bad", [0, -3, 2.5, "14", True])
def test_bad_window(bad):
    with pytest.raises(ValueError, match="window"):
        INDICATORS["rsi"](FRAMES["eth"], window=bad)


def test_bad_specs_and_frames():
    df = FRAMES["eth"]
    with pytest.raises(ValueError, match="unknown indicator 'rsx'"):
        add_indicators(df, ["rsx"])
    with pytest.raises(ValueError, match="bad parameters for rsi"):
        add_indicators(df, [("rsi", {"windw": 3})])
    with pytest.raises(ValueError, match="naive"):
        INDICATORS["rsi"](df.tz_localize(None))
    with pytest.raises(ValueError, match="increasing"):
        INDICATORS["rsi"](df.iloc[::-1])
    with pytest.raises(ValueError, match="offset"):
        INDICATORS["donchian"](df, offset=-1)


@pytest.mark.parametrize("name", [n for n, o in ORACLES.items() if o.ta_only is not None])
def test_exact_references_also_agree_with_plain_ta_on_ordinary_data(name):
    """Where the oracle is exact rather than ta, plain ta still agrees on ordinary frames."""
    df = FRAMES["eth"]
    assert mismatch(INDICATORS[name](df), ORACLES[name].ta_call(df)) is None


GAPPY = make_ohlcv(600, 5)
GAPPY.iloc[100:103] = np.nan                                  # missing bars (NaN rows)
GAPPY.iloc[400, GAPPY.columns.get_loc("volume")] = np.nan     # one missing volume


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_nan_rows_handled_like_the_oracle(case):
    """NaN inside the series (a gap of missing bars): rolling windows, EWMs (pandas' own
    weighting after a gap, alpha 0.5 included) and Wilder sums follow ta/pandas."""
    name, params = case
    msg = mismatch(INDICATORS[name](GAPPY, **params), ORACLES[name].reference(GAPPY, **params))
    assert msg is None, f"{name}{params}: {msg}"


# ---------------------------------------------------------------- fast paths vs NaN-aware paths
ONE_SIDED = make_ohlcv(500, 6)
ONE_SIDED.iloc[250, ONE_SIDED.columns.get_loc("low")] = np.nan     # only low is missing


@pytest.mark.parametrize("name,params", [("stoch", {}), ("williams_r", {}), ("donchian", {}),
                                         ("donchian", {"window": 5, "offset": 2}),
                                         ("stoch_rsi", {})])
@pytest.mark.parametrize("frame", ["btc", "one_sided"])
def test_rolling_extremes_fast_and_nan_paths_match_oracle(name, params, frame):
    """Finite high/low take the one-pass block kernel, a NaN in either takes the NaN-aware
    rolling max/min; both agree with the oracle."""
    df = FRAMES["btc"] if frame == "btc" else ONE_SIDED
    msg = mismatch(INDICATORS[name](df, **params), ORACLES[name].reference(df, **params))
    assert msg is None, f"{name}{params} on {frame}: {msg}"


@pytest.mark.parametrize("window", [3, 130])
def test_cci_four_row_path_and_long_window_match_oracle(window):
    """CCI's four-rows-at-once mean deviation (window <= 128), the row-by-row one (longer
    windows, and rows next to NaN windows) against the oracle."""
    for df in (FRAMES["btc"], GAPPY):
        p = {"window": window}
        msg = mismatch(INDICATORS["cci"](df, **p), ORACLES["cci"].reference(df, **p))
        assert msg is None, f"cci{p}: {msg}"


def test_eom_small_values_after_a_huge_one_keep_their_digits():
    """The frame hypothesis found (exact bits): zero-volume flat rows, one tiny-volume jump
    whose ease of movement is ~1e6 times the later ones, then small values. A plain running
    mean kept the jump's rounding in row 16 (1e-9 relative off ta); the guarded mean does not."""
    a, b, c, d = (float.fromhex(h) for h in ("0x1.437c5692b3cc5p-10", "0x1.48947157bc1fdp-10",
                                             "0x1.48e88f26ed355p-10", "0x1.486a627023951p-10"))
    df = pd.DataFrame({
        "open": [a] * 8 + [b] * 9,
        "high": [a] * 7 + [b, b, b, c] + [b] * 5 + [c],
        "low": [a] * 8 + [b, b, d] + [b] * 5 + [d],
        "close": [a] * 7 + [b] * 10,
        "volume": [0.0] * 7 + [float.fromhex("0x1.0624dd2f1a9fcp-7"), 0.0, 0.0, 0.5,
                               0.0, 0.0, 0.0, 1.0, 1.0, 288.0]},
        index=pd.date_range("2024-01-01", periods=17, freq="1min", tz="UTC"))
    msg = mismatch(INDICATORS["eom"](df, window=3), ORACLES["eom"].reference(df, window=3))
    assert msg is None, msg
