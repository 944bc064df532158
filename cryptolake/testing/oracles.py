"""The one table of reference implementations ("oracles") for our kernels, read by the tests
and by the benchmarks.

Each `Oracle` says which columns an indicator needs, which parameter sets to test, how to get
the reference values (`reference(df, **params)`: `ta` with `fillna=False` on plain
integer-indexed Series, or an exact pandas/numpy expression where `ta` lacks the indicator or
its arithmetic drifts), and the fastest plain pandas expression for benchmarking
(`pandas_expr`, None where there is no vectorised form). References return the same shape and
names as ours, indexed like the input.

`assert_matches(ours, ref)` is the comparison rule of the contract: NaN exactly where the
reference has NaN, and elsewhere within `rtol` (1e-9) of the series' typical magnitude (the
mean absolute finite value), infinities equal.

Where the reference is not plain `ta`:
- bbands: ta's width uses pandas' online rolling std, which drifts by up to 1e-5 relative on
  long series; the reference is ta's mean +/- k * the exact two-pass std (np.std per window).
- kama: ta's first efficiency-ratio window wraps around to the last row (np.roll); the first
  KAMA value is the close either way, so ta is still the reference.
- trix: ta fills row 0's missing previous value with the whole-series mean (look-ahead); this
  only shows when window == 1, which is not tested.
- psar: ta must run on an integer index (on pandas 3 with a DatetimeIndex it silently writes
  wrong rows); every ta call here uses one.
- vwap, cmf: ta's rolling sums (pandas) keep separate add/remove compensations and drift by
  ~1e-8 relative when a large volume leaves a window of small ones; the reference is ta's
  formula with each window summed afresh.
- keltner with k != 2 (original version): ta fixes the bands at k=2; the reference is the
  same rolling means of tp +/- (k/2)(h - l).

`TALIB` is the peer column: TA-Lib's function for each indicator (or the same formula composed
of TA-Lib functions where it has none: vwap, keltner, donchian, tsi, cmf, force_index, eom),
used by `benchmarks/bench_peers.py` and by tests that check agreement with TA-Lib after a
warm-up. TA-Lib seeds EMA, RSI, ATR and ADX differently (plain means of the first window, ATR
without row 0's true range), so the two agree only once that seed has decayed (a few thousand
rows). Where the definitions differ (`same=False`), ours follow `ta`:
- obv: TA-Lib leaves OBV unchanged when the close is unchanged; ta adds the volume.
- psar: TA-Lib picks the starting trend from the first two bars; ta starts up from the close.
- aroon: on ties TA-Lib counts the latest of equal highs/lows, ta the earliest.
- eom (composed): TA-Lib's running SMA stays NaN after a zero-volume bar's inf/NaN term.
- mfi: agrees with ta to ~1e-14 on most rows but not on a few windows (about 2 in
  10,000 rows of a 1m walk with zero-volume bars).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

HLC = ("high", "low", "close")
HLCV = ("high", "low", "close", "volume")


@dataclass(frozen=True)
class Oracle:
    name: str
    need: tuple
    reference: Callable[..., pd.Series | pd.DataFrame]
    params: list = field(default_factory=lambda: [{}])   # parameter sets to test
    pandas_expr: Callable | None = None
    slow_ta: bool = False                                 # ta is a Python loop (seconds on 1M rows)
    note: str = ""
    ta_only: Callable | None = None                       # plain ta, where `reference` is not

    def ta_call(self, df: pd.DataFrame, **params):
        """`ta` itself with these parameters (what the benchmark times as the ta peer)."""
        return (self.ta_only or self.reference)(df, **params)


# ---------------------------------------------------------------- helpers
def _cols(df: pd.DataFrame, need) -> list[pd.Series]:
    """Plain float Series on a RangeIndex (ta misbehaves on DatetimeIndex for PSAR)."""
    return [pd.Series(df[c].to_numpy(dtype=np.float64), name=c) for c in need]


def _out(df, obj, names):
    if isinstance(obj, (list, tuple)):
        arr = np.column_stack([np.asarray(o, dtype=np.float64) for o in obj])
        return pd.DataFrame(arr, index=df.index, columns=names)
    return pd.Series(np.asarray(obj, dtype=np.float64), index=df.index, name=names)


def _ta():
    import ta  # imported lazily: an optional test/benchmark dependency
    return ta


def _per_symbol(fn):
    """Run a reference per symbol of a (symbol, time) MultiIndex and stitch the pieces."""
    def wrapped(df, **params):
        if isinstance(df.index, pd.MultiIndex):
            parts = [fn(g, **params) for _, g in df.groupby(level=0, sort=False)]
            return pd.concat(parts).reindex(df.index)
        return fn(df, **params)
    wrapped.__wrapped__ = fn
    return wrapped


def _exact_std(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        win = np.lib.stride_tricks.sliding_window_view(x, w)
        out[w - 1:] = win.std(axis=1)       # two-pass, population
    return out


# ---------------------------------------------------------------- ta references
def _ref_sma(df, window=12):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().trend.sma_indicator(c, window, fillna=False), f"sma_{window}")


def _ref_ema(df, window=12):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().trend.ema_indicator(c, window, fillna=False), f"ema_{window}")


def _ref_wma(df, window=9):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().trend.wma_indicator(c, window, fillna=False), f"wma_{window}")


def _ref_rsi(df, window=14):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().momentum.rsi(c, window, fillna=False), f"rsi_{window}")


def _ref_macd(df, fast=12, slow=26, signal=9):
    (c,) = _cols(df, ["close"])
    m = _ta().trend.MACD(c, window_slow=slow, window_fast=fast, window_sign=signal, fillna=False)
    return _out(df, [m.macd(), m.macd_signal(), m.macd_diff()],
                ["macd", "macd_signal", "macd_hist"])


def _ref_bbands(df, window=20, k=2.0):
    (c,) = _cols(df, ["close"])
    mid = _ta().volatility.BollingerBands(c, window, window_dev=k, fillna=False).bollinger_mavg()
    sd = _exact_std(c.to_numpy(), window)
    mid = mid.to_numpy()
    return _out(df, [mid, mid + k * sd, mid - k * sd], ["bb_mid", "bb_upper", "bb_lower"])


def _ta_bbands(df, window=20, k=2.0):
    (c,) = _cols(df, ["close"])
    b = _ta().volatility.BollingerBands(c, window, window_dev=k, fillna=False)
    return _out(df, [b.bollinger_mavg(), b.bollinger_hband(), b.bollinger_lband()],
                ["bb_mid", "bb_upper", "bb_lower"])


def _ref_atr(df, window=14):
    h, l, c = _cols(df, HLC)
    return _out(df, _ta().volatility.average_true_range(h, l, c, window, fillna=False),
                f"atr_{window}")


def _win_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Exact rolling sum (each window summed afresh; NaN where the window holds a NaN)."""
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        out[w - 1:] = np.lib.stride_tricks.sliding_window_view(x, w).sum(axis=1)
    return out


def _ref_vwap(df, window=14):
    # ta's formula with exact window sums: pandas' rolling sum (which ta uses) keeps separate
    # add/remove compensations and drifts by ~1e-8 relative when a large volume leaves a window
    # of small ones.
    h, l, c, v = (s.to_numpy() for s in _cols(df, HLCV))
    tp = (h + l + c) / 3.0
    with np.errstate(all="ignore"):       # 0/0 where a window traded nothing: NaN, as ta
        return _out(df, _win_sum(tp * v, window) / _win_sum(v, window), f"vwap_{window}")


def _ta_vwap(df, window=14):
    h, l, c, v = _cols(df, HLCV)
    return _out(df, _ta().volume.volume_weighted_average_price(h, l, c, v, window, fillna=False),
                f"vwap_{window}")


def _ref_obv(df):
    _, _, c, v = _cols(df, HLCV)
    return _out(df, _ta().volume.on_balance_volume(c, v, fillna=False), "obv")


def _ref_stoch(df, window=14, smooth=3):
    h, l, c = _cols(df, HLC)
    s = _ta().momentum.StochasticOscillator(h, l, c, window, smooth_window=smooth, fillna=False)
    return _out(df, [s.stoch(), s.stoch_signal()], ["stoch_k", "stoch_d"])


def _ref_adx(df, window=14):
    h, l, c = _cols(df, HLC)
    a = _ta().trend.ADXIndicator(h, l, c, window, fillna=False)
    return _out(df, [a.adx(), a.adx_pos(), a.adx_neg()], ["adx", "adx_pos", "adx_neg"])


def _ref_cci(df, window=20, c=0.015):
    h, l, cl = _cols(df, HLC)
    return _out(df, _ta().trend.cci(h, l, cl, window, constant=c, fillna=False), f"cci_{window}")


def _ref_mfi(df, window=14):
    h, l, c, v = _cols(df, HLCV)
    return _out(df, _ta().volume.money_flow_index(h, l, c, v, window, fillna=False),
                f"mfi_{window}")


def _ref_williams_r(df, window=14):
    h, l, c = _cols(df, HLC)
    return _out(df, _ta().momentum.williams_r(h, l, c, lbp=window, fillna=False),
                f"williams_r_{window}")


def _ref_roc(df, window=12):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().momentum.roc(c, window, fillna=False), f"roc_{window}")


def _ref_kama(df, window=10, fast=2, slow=30):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().momentum.kama(c, window, pow1=fast, pow2=slow, fillna=False),
                f"kama_{window}")


def _ref_keltner(df, window=20, atr_window=10, k=2.0, original_version=True):
    h, l, c = _cols(df, HLC)
    if original_version and k != 2.0:
        tp = (h + l + c) / 3.0
        rng = (k / 2.0) * (h - l)
        return _out(df, [tp.rolling(window).mean(), (tp + rng).rolling(window, min_periods=0).mean(),
                         (tp - rng).rolling(window, min_periods=0).mean()],
                    ["kc_mid", "kc_upper", "kc_lower"])
    kc = _ta().volatility.KeltnerChannel(h, l, c, window, window_atr=atr_window, fillna=False,
                                         original_version=original_version, multiplier=k)
    return _out(df, [kc.keltner_channel_mband(), kc.keltner_channel_hband(),
                     kc.keltner_channel_lband()], ["kc_mid", "kc_upper", "kc_lower"])


def _ref_donchian(df, window=20, offset=0):
    h, l, c = _cols(df, HLC)
    d = _ta().volatility.DonchianChannel(h, l, c, window, offset=offset, fillna=False)
    return _out(df, [d.donchian_channel_mband(), d.donchian_channel_hband(),
                     d.donchian_channel_lband()], ["dc_mid", "dc_upper", "dc_lower"])


def _ref_tsi(df, window=25, fast=13):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().momentum.tsi(c, window_slow=window, window_fast=fast, fillna=False),
                f"tsi_{window}")


def _ref_trix(df, window=15):
    (c,) = _cols(df, ["close"])
    return _out(df, _ta().trend.trix(c, window, fillna=False), f"trix_{window}")


def _ref_stoch_rsi(df, window=14, smooth1=3, smooth2=3):
    (c,) = _cols(df, ["close"])
    s = _ta().momentum.StochRSIIndicator(c, window, smooth1, smooth2, fillna=False)
    return _out(df, [s.stochrsi(), s.stochrsi_k(), s.stochrsi_d()],
                ["stochrsi", "stochrsi_k", "stochrsi_d"])


def _ref_uo(df, window=7, window2=14, window3=28, weight1=4.0, weight2=2.0, weight3=1.0):
    h, l, c = _cols(df, HLC)
    u = _ta().momentum.ultimate_oscillator(h, l, c, window, window2, window3, weight1, weight2,
                                           weight3, fillna=False)
    return _out(df, u, f"ultimate_oscillator_{window}")


def _ref_aroon(df, window=25):
    h, l = _cols(df, ["high", "low"])
    a = _ta().trend.AroonIndicator(h, l, window, fillna=False)
    return _out(df, [a.aroon_up(), a.aroon_down()], ["aroon_up", "aroon_down"])


def _ref_psar(df, step=0.02, max_step=0.2):
    h, l, c = _cols(df, HLC)
    p = _ta().trend.PSARIndicator(h, l, c, step, max_step, fillna=False)
    return _out(df, [p.psar(), p.psar_up(), p.psar_down()], ["psar", "psar_up", "psar_down"])


def _ref_cmf(df, window=20):
    # ta's formula with exact window sums (see _ref_vwap).
    h, l, c, v = (s.to_numpy() for s in _cols(df, HLCV))
    with np.errstate(all="ignore"):
        mfv = ((c - l) - (h - c)) / (h - l)
    mfv = np.where(np.isnan(mfv), 0.0, mfv) * v
    with np.errstate(all="ignore"):
        return _out(df, _win_sum(mfv, window) / _win_sum(v, window), f"cmf_{window}")


def _ta_cmf(df, window=20):
    h, l, c, v = _cols(df, HLCV)
    return _out(df, _ta().volume.chaikin_money_flow(h, l, c, v, window, fillna=False),
                f"cmf_{window}")


def _ref_force_index(df, window=13):
    _, _, c, v = _cols(df, HLCV)
    return _out(df, _ta().volume.force_index(c, v, window, fillna=False), f"force_index_{window}")


def _ref_eom(df, window=14):
    h, l, _, v = _cols(df, HLCV)
    return _out(df, _ta().volume.sma_ease_of_movement(h, l, v, window, fillna=False),
                f"eom_{window}")


# ---------------------------------------------------------------- best pandas expressions
# What a researcher would write with vectorised pandas (numpy where pandas has no verb).
# Used by the benchmark only; they compute the same quantity up to rounding.
def _pd_sma(df, window=12):
    return df["close"].rolling(window).mean()


def _pd_ema(df, window=12):
    return df["close"].ewm(span=window, adjust=False, min_periods=window).mean()


def _pd_wma(df, window=9):
    c = df["close"]
    acc = sum((j + 1) * c.shift(window - 1 - j) for j in range(window))
    return acc * (2.0 / (window * (window + 1)))


def _pd_rsi(df, window=14):
    d = df["close"].diff()
    up = d.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    dn = (-d.clip(upper=0)).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    return 100 - 100 / (1 + up / dn)


def _pd_macd(df, fast=12, slow=26, signal=9):
    c = df["close"]
    m = c.ewm(span=fast, adjust=False, min_periods=fast).mean() \
        - c.ewm(span=slow, adjust=False, min_periods=slow).mean()
    s = m.ewm(span=signal, adjust=False, min_periods=signal).mean()
    return pd.DataFrame({"macd": m, "macd_signal": s, "macd_hist": m - s})


def _pd_bbands(df, window=20, k=2.0):
    r = df["close"].rolling(window)
    m, s = r.mean(), r.std(ddof=0)
    return pd.DataFrame({"bb_mid": m, "bb_upper": m + k * s, "bb_lower": m - k * s})


def _pd_tr(df):
    pc = df["close"].shift()
    h, l = df["high"], df["low"]
    return np.maximum(h - l, np.maximum((h - pc).abs(), (l - pc).abs())).fillna(h - l)


def _pd_atr(df, window=14):
    tr = _pd_tr(df)
    seed = tr.iloc[:window].mean()
    tr = tr.copy()
    tr.iloc[:window - 1] = np.nan
    tr.iloc[window - 1] = seed
    return tr.ewm(alpha=1 / window, adjust=False).mean().fillna(0.0)


def _pd_vwap(df, window=14):
    tp = (df["high"] + df["low"] + df["close"]) / 3.0
    return (tp * df["volume"]).rolling(window).sum() / df["volume"].rolling(window).sum()


def _pd_obv(df):
    c, v = df["close"], df["volume"]
    return v.where(~(c < c.shift()), -v).cumsum()


def _pd_stoch(df, window=14, smooth=3):
    lo = df["low"].rolling(window).min()
    k = 100 * (df["close"] - lo) / (df["high"].rolling(window).max() - lo)
    return pd.DataFrame({"stoch_k": k, "stoch_d": k.rolling(smooth).mean()})


def _pd_adx(df, window=14):
    h, l = df["high"], df["low"]
    up, dn = h.diff(), -l.diff()
    pos = up.where((up > dn) & (up > 0), 0.0)
    neg = dn.where((dn > up) & (dn > 0), 0.0)
    a = 1 / window
    tr = _pd_tr(df).ewm(alpha=a, adjust=False).mean()
    dip = 100 * pos.ewm(alpha=a, adjust=False).mean() / tr
    din = 100 * neg.ewm(alpha=a, adjust=False).mean() / tr
    dx = 100 * ((dip - din) / (dip + din)).abs()
    return pd.DataFrame({"adx": dx.ewm(alpha=a, adjust=False).mean(), "adx_pos": dip,
                         "adx_neg": din})


def _pd_cci(df, window=20, c=0.015):
    tp = (df["high"] + df["low"] + df["close"]) / 3.0
    win = np.lib.stride_tricks.sliding_window_view(tp.to_numpy(), window)
    mad = np.full(len(tp), np.nan)
    mad[window - 1:] = np.abs(win - win.mean(axis=1, keepdims=True)).mean(axis=1)
    return (tp - tp.rolling(window).mean()) / (c * mad)


def _pd_mfi(df, window=14):
    tp = (df["high"] + df["low"] + df["close"]) / 3.0
    mf = tp * df["volume"] * np.sign(tp.diff()).fillna(0.0)
    pos = mf.clip(lower=0).rolling(window).sum()
    neg = (-mf.clip(upper=0)).rolling(window).sum()
    return 100 - 100 / (1 + pos / neg)


def _pd_williams_r(df, window=14):
    hh = df["high"].rolling(window).max()
    return -100 * (hh - df["close"]) / (hh - df["low"].rolling(window).min())


def _pd_roc(df, window=12):
    return df["close"].pct_change(window, fill_method=None) * 100


def _pd_keltner(df, window=20, atr_window=10, k=2.0, original_version=True):
    h, l, c = df["high"], df["low"], df["close"]
    tp = (h + l + c) / 3.0
    rng = (k / 2.0) * (h - l)
    return pd.DataFrame({"kc_mid": tp.rolling(window).mean(),
                         "kc_upper": (tp + rng).rolling(window, min_periods=0).mean(),
                         "kc_lower": (tp - rng).rolling(window, min_periods=0).mean()})


def _pd_donchian(df, window=20, offset=0):
    u = df["high"].rolling(window).max()
    lo = df["low"].rolling(window).min()
    return pd.DataFrame({"dc_mid": (u - lo) / 2.0 + lo, "dc_upper": u, "dc_lower": lo})


def _pd_tsi(df, window=25, fast=13):
    d = df["close"].diff()

    def dbl(x):
        return x.ewm(span=window, adjust=False, min_periods=window).mean() \
            .ewm(span=fast, adjust=False, min_periods=fast).mean()
    return 100 * dbl(d) / dbl(d.abs())


def _pd_trix(df, window=15):
    e = df["close"]
    for _ in range(3):
        e = e.ewm(span=window, adjust=False, min_periods=window).mean()
    return e.pct_change(fill_method=None) * 100


def _pd_stoch_rsi(df, window=14, smooth1=3, smooth2=3):
    r = _pd_rsi(df, window)
    lo = r.rolling(window).min()
    s = (r - lo) / (r.rolling(window).max() - lo)
    k = s.rolling(smooth1).mean()
    return pd.DataFrame({"stochrsi": s, "stochrsi_k": k, "stochrsi_d": k.rolling(smooth2).mean()})


def _pd_uo(df, window=7, window2=14, window3=28, weight1=4.0, weight2=2.0, weight3=1.0):
    pc = df["close"].shift()
    bp = df["close"] - np.minimum(df["low"], pc)
    tr = _pd_tr(df)
    avg = [bp.rolling(w).sum() / tr.rolling(w).sum() for w in (window, window2, window3)]
    return 100 * (weight1 * avg[0] + weight2 * avg[1] + weight3 * avg[2]) \
        / (weight1 + weight2 + weight3)


def _pd_aroon(df, window=25):
    out = {}
    for col, name, f in (("high", "aroon_up", np.argmax), ("low", "aroon_down", np.argmin)):
        win = np.lib.stride_tricks.sliding_window_view(df[col].to_numpy(), window + 1)
        v = np.full(len(df), np.nan)
        v[window:] = f(win, axis=1) / window * 100
        out[name] = v
    return pd.DataFrame(out, index=df.index)


def _pd_cmf(df, window=20):
    h, l, c, v = df["high"], df["low"], df["close"], df["volume"]
    mfv = (((c - l) - (h - c)) / (h - l)).fillna(0.0) * v
    return mfv.rolling(window).sum() / v.rolling(window).sum()


def _pd_force_index(df, window=13):
    fi = df["close"].diff() * df["volume"]
    return fi.ewm(span=window, adjust=False, min_periods=window).mean()


def _pd_eom(df, window=14):
    h, l = df["high"], df["low"]
    e = (h.diff() + l.diff()) * (h - l) / (2 * df["volume"]) * 1e8
    return e.rolling(window).mean()


# ---------------------------------------------------------------- the table
ORACLES: dict[str, Oracle] = {o.name: o for o in [
    Oracle("sma", ("close",), _per_symbol(_ref_sma), [{}, {"window": 1}, {"window": 50}], _pd_sma),
    Oracle("ema", ("close",), _per_symbol(_ref_ema), [{}, {"window": 3}, {"window": 50}], _pd_ema),
    Oracle("wma", ("close",), _per_symbol(_ref_wma), [{}, {"window": 2}, {"window": 30}], _pd_wma,
           slow_ta=True),
    Oracle("rsi", ("close",), _per_symbol(_ref_rsi), [{}, {"window": 2}, {"window": 30}], _pd_rsi),
    Oracle("macd", ("close",), _per_symbol(_ref_macd),
           [{}, {"fast": 5, "slow": 35, "signal": 5}], _pd_macd),
    Oracle("bbands", ("close",), _per_symbol(_ref_bbands), [{}, {"window": 5, "k": 1.5}],
           _pd_bbands, note="exact two-pass std: ta's pandas rolling std drifts",
           ta_only=_ta_bbands),
    Oracle("atr", HLC, _per_symbol(_ref_atr), [{}, {"window": 3}], _pd_atr, slow_ta=True),
    Oracle("vwap", HLCV, _per_symbol(_ref_vwap), [{}, {"window": 3}], _pd_vwap,
           note="exact window sums: pandas' rolling sum drifts across volume scales",
           ta_only=_ta_vwap),
    Oracle("obv", ("close", "volume"), _per_symbol(_ref_obv), [{}], _pd_obv),
    Oracle("stoch", HLC, _per_symbol(_ref_stoch), [{}, {"window": 5, "smooth": 2}], _pd_stoch),
    Oracle("adx", HLC, _per_symbol(_ref_adx), [{}, {"window": 5}], _pd_adx, slow_ta=True,
           note="ta's warm-up rows are 0, not NaN"),
    Oracle("cci", HLC, _per_symbol(_ref_cci), [{}, {"window": 7, "c": 0.02}], _pd_cci,
           slow_ta=True),
    Oracle("mfi", HLCV, _per_symbol(_ref_mfi), [{}, {"window": 5}], _pd_mfi, slow_ta=True),
    Oracle("williams_r", HLC, _per_symbol(_ref_williams_r), [{}, {"window": 3}], _pd_williams_r),
    Oracle("roc", ("close",), _per_symbol(_ref_roc), [{}, {"window": 1}], _pd_roc),
    Oracle("kama", ("close",), _per_symbol(_ref_kama), [{}, {"window": 5, "fast": 3, "slow": 20}],
           None, slow_ta=True),
    Oracle("keltner", HLC, _per_symbol(_ref_keltner),
           [{}, {"window": 10, "k": 3.0}, {"original_version": False},
            {"window": 7, "atr_window": 5, "k": 1.5, "original_version": False}],
           _pd_keltner),
    Oracle("donchian", ("high", "low"), _per_symbol(_ref_donchian),
           [{}, {"window": 5}, {"window": 5, "offset": 2}], _pd_donchian),
    Oracle("tsi", ("close",), _per_symbol(_ref_tsi), [{}, {"window": 10, "fast": 4}], _pd_tsi),
    Oracle("trix", ("close",), _per_symbol(_ref_trix), [{}, {"window": 4}], _pd_trix),
    Oracle("stoch_rsi", ("close",), _per_symbol(_ref_stoch_rsi),
           [{}, {"window": 6, "smooth1": 2, "smooth2": 4}], _pd_stoch_rsi),
    Oracle("ultimate_oscillator", HLC, _per_symbol(_ref_uo),
           [{}, {"window": 3, "window2": 5, "window3": 9, "weight1": 3.0}], _pd_uo),
    Oracle("aroon", ("high", "low"), _per_symbol(_ref_aroon), [{}, {"window": 5}], _pd_aroon,
           slow_ta=True),
    Oracle("psar", HLC, _per_symbol(_ref_psar), [{}, {"step": 0.03, "max_step": 0.3}], None,
           slow_ta=True, note="ta on an integer index only"),
    Oracle("cmf", HLCV, _per_symbol(_ref_cmf), [{}, {"window": 4}], _pd_cmf,
           note="exact window sums (see vwap)", ta_only=_ta_cmf),
    Oracle("force_index", ("close", "volume"), _per_symbol(_ref_force_index),
           [{}, {"window": 3}], _pd_force_index),
    Oracle("eom", ("high", "low", "volume"), _per_symbol(_ref_eom), [{}, {"window": 4}], _pd_eom),
]}


# ---------------------------------------------------------------- comparison rule
def _as_frame(x) -> pd.DataFrame:
    return x.to_frame() if isinstance(x, pd.Series) else x


def mismatch(ours, ref, rtol: float = 1e-9) -> str | None:
    """None when `ours` matches `ref` by the contract's rule, else a description of the first
    failure. Names/columns and length must agree too."""
    if isinstance(ours, pd.Series) != isinstance(ref, pd.Series):
        return f"type differs: {type(ours).__name__} vs {type(ref).__name__}"
    if isinstance(ours, pd.Series) and ours.name != ref.name:
        return f"name {ours.name!r} != {ref.name!r}"
    a, b = _as_frame(ours), _as_frame(ref)
    if list(a.columns) != list(b.columns):
        return f"columns {list(a.columns)} != {list(b.columns)}"
    if len(a) != len(b):
        return f"length {len(a)} != {len(b)}"
    for col in b.columns:
        x = a[col].to_numpy(dtype=np.float64)
        y = b[col].to_numpy(dtype=np.float64)
        nx, ny = np.isnan(x), np.isnan(y)
        if not np.array_equal(nx, ny):
            i = int(np.flatnonzero(nx != ny)[0])
            return f"{col}: NaN pattern differs first at row {i}: ours {x[i]!r}, ref {y[i]!r}"
        fin = np.isfinite(y)
        if not np.array_equal(np.isinf(x), ~fin & ~ny) or not np.array_equal(x[~fin & ~ny],
                                                                             y[~fin & ~ny]):
            return f"{col}: infinities differ"
        if fin.any():
            scale = float(np.mean(np.abs(y[fin])))
            tol = rtol * max(scale, 1e-300)
            err = np.abs(x[fin] - y[fin])
            if not np.all(err <= tol):
                j = int(np.argmax(err))
                i = int(np.flatnonzero(fin)[j])
                return (f"{col}: row {i}: ours {x[i]!r}, ref {y[i]!r}, |diff| {err[j]:.3g} > "
                        f"tol {tol:.3g} (rtol {rtol} x typical magnitude {scale:.3g})")
    return None


def assert_matches(ours, ref, rtol: float = 1e-9) -> None:
    """Raise AssertionError unless `ours` matches `ref` (see `mismatch`)."""
    msg = mismatch(ours, ref, rtol)
    if msg:
        raise AssertionError(msg)


# ---------------------------------------------------------------- TA-Lib peers
@dataclass(frozen=True)
class TalibPeer:
    """TA-Lib's equivalent of one indicator: `call(arrs)` takes a dict of float64 arrays
    (high, low, close, volume) and returns its outputs in our column order. `same`: TA-Lib
    defines it as `ta` does (values agree once TA-Lib's different EMA/RSI/ATR/ADX seeding has
    decayed); `composed`: TA-Lib has no such function and the peer is the same formula made
    of TA-Lib functions and numpy; `scale`: our first output times `scale` is TA-Lib's."""
    fn: Callable
    same: bool = True
    composed: bool = False
    scale: float = 1.0
    note: str = ""

    def call(self, arrs: dict):
        return self.fn(arrs)


def _tl():
    import talib  # imported lazily: an optional test/benchmark dependency
    return talib


def _tl_vwap(a, w=14):
    t = _tl()
    tp = (a["high"] + a["low"] + a["close"]) / 3.0
    with np.errstate(all="ignore"):
        return t.SUM(tp * a["volume"], w) / t.SUM(a["volume"], w)


def _tl_cmf(a, w=20):
    t = _tl()
    h, l, c, v = a["high"], a["low"], a["close"], a["volume"]
    with np.errstate(all="ignore"):
        mfv = ((c - l) - (h - c)) / (h - l)
        return t.SUM(np.where(np.isnan(mfv), 0.0, mfv) * v, w) / t.SUM(v, w)


def _tl_keltner(a, w=20):
    t = _tl()
    h, l, c = a["high"], a["low"], a["close"]
    return (t.SMA((h + l + c) / 3.0, w), t.SMA((4 * h - 2 * l + c) / 3.0, w),
            t.SMA((-2 * h + 4 * l + c) / 3.0, w))


def _tl_donchian(a, w=20):
    t = _tl()
    u, lo = t.MAX(a["high"], w), t.MIN(a["low"], w)
    return (u - lo) / 2.0 + lo, u, lo


def _tl_tsi(a, slow=25, fast=13):
    t = _tl()
    d = np.diff(a["close"], prepend=np.nan)
    return 100.0 * t.EMA(t.EMA(d, slow), fast) / t.EMA(t.EMA(np.abs(d), slow), fast)


def _tl_stoch_rsi(a, w=14):
    t = _tl()
    k, d = t.STOCHRSI(a["close"], w, w, 3, 0)
    return k, d, t.SMA(d, 3)


def _tl_force(a, w=13):
    d = np.diff(a["close"], prepend=np.nan) * a["volume"]
    return _tl().EMA(d, w)


def _tl_eom(a, w=14):
    h, l, v = a["high"], a["low"], a["volume"]
    with np.errstate(all="ignore"):
        e = (np.diff(h, prepend=np.nan) + np.diff(l, prepend=np.nan)) * (h - l) / (2 * v) * 1e8
    return _tl().SMA(e, w)


def _tl_bbands(a):
    up, mid, lo = _tl().BBANDS(a["close"], 20, 2.0, 2.0, 0)
    return mid, up, lo


def _tl_aroon(a):
    down, up = _tl().AROON(a["high"], a["low"], 25)
    return up, down


TALIB: dict[str, TalibPeer] = {
    "sma": TalibPeer(lambda a: _tl().SMA(a["close"], 12)),
    "ema": TalibPeer(lambda a: _tl().EMA(a["close"], 12), note="seeded with the SMA"),
    "wma": TalibPeer(lambda a: _tl().WMA(a["close"], 9)),
    "rsi": TalibPeer(lambda a: _tl().RSI(a["close"], 14), note="seeded with plain means"),
    "macd": TalibPeer(lambda a: _tl().MACD(a["close"], 12, 26, 9)),
    "bbands": TalibPeer(_tl_bbands),
    "atr": TalibPeer(lambda a: _tl().ATR(a["high"], a["low"], a["close"], 14),
                     note="seed skips row 0's true range"),
    "vwap": TalibPeer(_tl_vwap, composed=True),
    "obv": TalibPeer(lambda a: _tl().OBV(a["close"], a["volume"]), same=False,
                     note="TA-Lib leaves OBV unchanged on an equal close; ta adds the volume"),
    "stoch": TalibPeer(lambda a: _tl().STOCHF(a["high"], a["low"], a["close"], 14, 3, 0)),
    "adx": TalibPeer(lambda a: (_tl().ADX(a["high"], a["low"], a["close"], 14),
                                _tl().PLUS_DI(a["high"], a["low"], a["close"], 14),
                                _tl().MINUS_DI(a["high"], a["low"], a["close"], 14))),
    "cci": TalibPeer(lambda a: _tl().CCI(a["high"], a["low"], a["close"], 20)),
    "mfi": TalibPeer(lambda a: _tl().MFI(a["high"], a["low"], a["close"], a["volume"], 14),
                     same=False, note="agrees with ta to ~1e-14 on most rows; differs on a "
                     "few windows (about 2 in 10,000 rows of a 1m walk with zero-volume bars)"),
    "williams_r": TalibPeer(lambda a: _tl().WILLR(a["high"], a["low"], a["close"], 14)),
    "roc": TalibPeer(lambda a: _tl().ROC(a["close"], 12)),
    "kama": TalibPeer(lambda a: _tl().KAMA(a["close"], 10)),
    "keltner": TalibPeer(_tl_keltner, composed=True),
    "donchian": TalibPeer(_tl_donchian, composed=True),
    "tsi": TalibPeer(_tl_tsi, composed=True),
    "trix": TalibPeer(lambda a: _tl().TRIX(a["close"], 15)),
    "stoch_rsi": TalibPeer(_tl_stoch_rsi, scale=100.0),
    "ultimate_oscillator": TalibPeer(lambda a: _tl().ULTOSC(a["high"], a["low"], a["close"],
                                                            7, 14, 28)),
    "aroon": TalibPeer(_tl_aroon, same=False,
                       note="ties: TA-Lib counts the latest of equal highs/lows, ta the earliest"),
    "psar": TalibPeer(lambda a: _tl().SAR(a["high"], a["low"], 0.02, 0.2), same=False,
                      note="TA-Lib starts from a trend chosen by the first two bars' moves; ta "
                      "starts up from the close"),
    "cmf": TalibPeer(_tl_cmf, composed=True),
    "force_index": TalibPeer(_tl_force, composed=True),
    "eom": TalibPeer(_tl_eom, composed=True, same=False,
                     note="TA-Lib's running SMA stays NaN after the first zero-volume bar's "
                     "inf/NaN term; pandas' rolling mean skips it"),
}
