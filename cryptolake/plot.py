"""Matplotlib figures for OHLCV frames: candles, a volume panel, indicators.

Built on `matplotlib.figure.Figure` (no pyplot state, works under Agg and in Jupyter, where a
returned Figure renders inline). Candles are two collections (wicks: one LineCollection;
bodies: one PolyCollection), so drawing cost does not grow with a Python loop per candle.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from .ops._frame import time_index
from .ops._time import infer_step, segments, time_axis
from .ops.resample import resample

# Indicators drawn on the price axis; every other one gets its own panel.
OVERLAYS = frozenset({"sma", "ema", "wma", "bbands", "vwap", "kama", "keltner", "donchian"})
UP, DOWN = "#26a69a", "#ef5350"
# Gap shading by cause (Table.gaps() causes); anything else is drawn grey.
GAP_COLORS = {"missing_file": "#e53935", "partial_file": "#fb8c00", "outage": "#8e24aa",
              "halt": "#607d8b", "relisting": "#1e88e5"}
_GAP_OTHER = "#9e9e9e"


def _label(ticks: int, unit: str) -> str:
    """Short text for a bar size (`1min`, `4h`, `1D`)."""
    td = pd.Timedelta(ticks, unit=unit)
    for name, size in (("D", "1D"), ("h", "1h"), ("min", "1min"), ("s", "1s")):
        if td >= pd.Timedelta(size) and td % pd.Timedelta(size) == pd.Timedelta(0):
            return f"{td // pd.Timedelta(size)}{name}"
    return str(td)


def _downsample(df: pd.DataFrame, max_candles: int) -> tuple[pd.DataFrame, str]:
    """At most `max_candles` bars: resample by a whole multiple of the bar size when longer."""
    if len(df) <= max_candles:
        return df, ""
    t, idx = time_axis(df)
    bar = infer_step(t, segments(df))
    k = int(np.ceil((t[-1] - t[0] + bar) / bar / max_candles))
    rule = pd.Timedelta(k * bar, unit=idx.unit)
    out = resample(df, rule)
    note = (f" (resampled {_label(bar, idx.unit)} -> {_label(k * bar, idx.unit)} for display: "
            f"{len(out)} of {len(df)} bars)")
    return out, note


def _spec(spec) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    name, params = spec
    return name, dict(params or {})


def _candles(ax, x, df: pd.DataFrame, width: float) -> None:
    o, h, lo, c = (df[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    colors = np.where(c >= o, UP, DOWN)
    wicks = np.stack([np.column_stack([x, lo]), np.column_stack([x, h])], axis=1)
    ax.add_collection(LineCollection(wicks, colors=colors, linewidths=0.8))
    ax.add_collection(_rects(x, np.minimum(o, c), np.maximum(o, c), width, colors))
    ax.update_datalim(np.column_stack([np.r_[x - width, x + width], np.r_[lo, h]]))
    ax.autoscale_view()


def _rects(x, bottom, top, width, colors) -> PolyCollection:
    left, right = x - width / 2, x + width / 2
    verts = np.stack([np.column_stack(p) for p in
                      ((left, bottom), (left, top), (right, top), (right, bottom))], axis=1)
    return PolyCollection(verts, facecolors=colors, edgecolors=colors, linewidths=0.5)


def _lines(ax, x, result, name: str) -> None:
    frame = result.to_frame() if isinstance(result, pd.Series) else result
    for col in frame.columns:
        ax.plot(x, frame[col].to_numpy(np.float64), linewidth=1.0, label=str(col or name))
    ax.legend(loc="upper left", fontsize=8)


def _gap_spans(gaps, symbol, lo: float, hi: float, pad: float) -> list[tuple[float, float, str]]:
    """(x0, x1, cause) in date numbers for every gap that overlaps [lo, hi], clipped to it and
    widened by `pad` each side so a one-bar gap stays visible between coarse candles."""
    if not isinstance(gaps, pd.DataFrame):
        raise ValueError(f"gaps must be a DataFrame like Table.gaps() returns, got {type(gaps).__name__}")
    need = [c for c in ("start", "end", "cause") if c not in gaps.columns]
    if need:
        raise ValueError(f"gaps lacks column(s) {need}; it needs start, end, cause "
                         "(as Table.gaps() returns)")
    if symbol is not None and "symbol" in gaps.columns:
        gaps = gaps[gaps["symbol"].astype(str) == str(symbol)]
    if gaps.empty:
        return []
    def num(col):
        return date2num(pd.to_datetime(gaps[col], utc=True).dt.tz_localize(None).to_numpy())
    x0, x1 = num("start") - pad, num("end") + pad
    keep = (x1 >= lo) & (x0 <= hi)
    return [(max(a, lo), min(b, hi), str(c)) for a, b, c, k in
            zip(x0, x1, gaps["cause"].to_numpy(), keep) if k]


def _shade(axes, spans) -> None:
    """One translucent band per gap on every axis, coloured by cause; one legend entry per cause."""
    seen = set()
    for x0, x1, cause in spans:
        color = GAP_COLORS.get(cause, _GAP_OTHER)
        for i, ax in enumerate(axes):
            label = f"gap: {cause}" if i == 0 and cause not in seen else None
            ax.axvspan(x0, x1, color=color, alpha=0.25, linewidth=0, zorder=0, label=label)
        seen.add(cause)
    if spans:
        axes[0].legend(loc="upper left", fontsize=8)


def plot_ohlcv(df: pd.DataFrame, indicators=(), *, max_candles: int = 1500,
               title: str | None = None, figsize=(12, 7), gaps=None) -> Figure:
    """A Figure with candles, a volume panel (when `volume` exists) and `indicators`.

    `indicators`: names or `(name, params)` pairs from `cryptolake.ops.indicators.INDICATORS`;
    price-scale ones (`sma, ema, wma, bbands, vwap, kama, keltner, donchian`) are overlaid on
    the candles, the rest get a panel each. Frames longer than `max_candles` are resampled to
    a coarser bar first (the title says so) and indicators are computed on the drawn bars.
    A (symbol, time) MultiIndex must hold one symbol.

    `gaps`: optional DataFrame with `start, end, cause` (and `symbol`), as `Table.gaps()`
    returns; each gap overlapping the drawn range is shaded on every panel, coloured by cause
    (`GAP_COLORS`), with one legend entry per cause. Rows of other symbols are ignored when the
    frame has a (symbol, time) MultiIndex.
    """
    symbol = None
    if isinstance(df.index, pd.MultiIndex):
        syms = df.index.get_level_values(0).unique()
        if len(syms) != 1:
            raise ValueError(f"plot draws one symbol, the frame has {len(syms)}; "
                             f"select one with df.xs('{syms[0]}', level=0)")
        symbol = syms[0]
        df = df.droplevel(0)
    df, note = _downsample(df, max_candles)
    specs = [_spec(s) for s in indicators]
    results = []
    if specs:
        from .ops.indicators import INDICATORS

        results = [(n, INDICATORS[n](df, **p)) for n, p in specs]
    panels = [(n, r) for n, r in results if n not in OVERLAYS]
    has_vol = "volume" in df.columns
    ratios = [4] + ([1] if has_vol else []) + [1.5] * len(panels)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(len(ratios), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios})[:, 0]
    idx = time_index(df)
    x = date2num(idx.tz_convert("UTC").tz_localize(None).to_numpy())
    width = 0.7 * (float(np.median(np.diff(x))) if len(x) > 1 else 1 / 1440)
    _candles(axes[0], x, df, width)
    for n, r in results:
        if n in OVERLAYS:
            _lines(axes[0], x, r, n)
    if has_vol:
        o, c = df["open"].to_numpy(np.float64), df["close"].to_numpy(np.float64)
        vol = df["volume"].to_numpy(np.float64)
        axes[1].add_collection(_rects(x, np.zeros_like(vol), vol, width,
                                      np.where(c >= o, UP, DOWN)))
        axes[1].autoscale_view()
        axes[1].set_ylabel("volume")
    for ax, (n, r) in zip(axes[1 + has_vol:], panels):
        _lines(ax, x, r, n)
        ax.set_ylabel(n)
    if gaps is not None and len(x):
        _shade(axes, _gap_spans(gaps, symbol, x[0] - width, x[-1] + width, width / 2))
    loc = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(loc)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(loc))
    if title is None and len(idx):
        title = f"{idx[0]:%Y-%m-%d %H:%M} .. {idx[-1]:%Y-%m-%d %H:%M} UTC, {len(idx)} bars"
    axes[0].set_title((title or "") + note)
    axes[0].set_ylabel("price")
    return fig
