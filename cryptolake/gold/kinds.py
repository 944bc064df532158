"""What each gold kind computes, one symbol at a time: pandas frames in, pandas frames out.

- `bars`: klines resampled to a fixed rule at one or more phases (offsets on the source grid)
  through the numba path `cryptolake.ops.resample`, or to a calendar rule ("W", "ME") with
  pandas' bins (label = the period's last day at midnight, as `df.resample("W")` labels it).
- `funding_bars`: the same bars joined with every funding event inside each bar.
- `trade_bars`: time bars (`ops.bars.trades_to_bars`) or tick/volume/dollar bars
  (`ops.info_bars.bars`, with the unfinished bar carried over).
- `features`: `df.lake.indicators` on one phase of a gold bars table, warm-up rows marked.

Orchestration (which months, records, commits) lives in `cryptolake.gold.build`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..ops import indicators as oind
from ..ops.resample import SUM_COLUMNS, resample

CALENDAR_RULES = {"W": "w", "W-SUN": "w", "ME": "me"}
_DAY_US = 86_400_000_000


# ---------------------------------------------------------------- rules and phases
def rule_spec(rule) -> tuple[str, int | None]:
    """`rule` -> (name token, length in microseconds; None for calendar rules).

    Fixed rules are anything `pd.Timedelta` reads ("1h", "15min", "4h", "1D"); calendar rules
    are "W" (weeks ending Sunday) and "ME" (calendar months). Anything else -> ValueError."""
    if isinstance(rule, str) and rule.upper() in CALENDAR_RULES:
        return CALENDAR_RULES[rule.upper()], None
    bad = (f"unknown rule {rule!r}; allowed: fixed rules like '5min', '15min', '1h', '4h', '8h', "
           f"'1D' (multiples of the source interval) or calendar rules {sorted(set(CALENDAR_RULES) - {'W-SUN'})}")
    if isinstance(rule, str) and rule.strip()[-1:] in ("M", "Y", "Q", "W", "E", "B"):
        raise ValueError(bad)
    try:
        td = pd.Timedelta(rule)
    except (ValueError, TypeError):
        raise ValueError(bad) from None
    us = td.value // 1000
    if us <= 0 or td.value % 1000:
        raise ValueError(bad)
    for unit, n in (("d", _DAY_US), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000)):
        if us % n == 0:
            return f"{us // n}{unit}", us
    raise ValueError(bad)


def phase_label(offset) -> str:
    """An offset as the `phase` column spells it: "0min", "5min", "90s"."""
    try:
        td = pd.Timedelta(offset)
    except (ValueError, TypeError):
        raise ValueError(f"phase {offset!r} is not an offset; use e.g. '0min', '5min' or a Timedelta") from None
    s = td.value // 1_000_000_000
    if td.value % 1_000_000_000 or s < 0:
        raise ValueError(f"phase {offset!r} must be a whole, non-negative number of seconds")
    return f"{s // 60}min" if s % 60 == 0 else f"{s}s"


def phase_list(phases, rule_us: int | None, step_us: int) -> list[str]:
    """The phases to build: "all" -> every multiple of the source step below the rule; a
    list -> those (validated); None -> ["0min"]. Calendar rules have the one phase "0min"."""
    allowed = ["0min"] if rule_us is None else [phase_label(pd.Timedelta(k, "us"))
                                                 for k in range(0, rule_us, step_us)]
    if phases is None:
        return ["0min"]
    if isinstance(phases, str) and phases == "all":
        return allowed
    if isinstance(phases, (str, pd.Timedelta)):
        phases = [phases]
    out = [phase_label(p) for p in phases]
    bad = [p for p in out if p not in allowed]
    if bad or not out:
        shown = allowed if len(allowed) <= 6 else allowed[:3] + ["…"] + allowed[-2:]
        raise ValueError(f"unknown phase(s) {bad or phases}; allowed: 'all' or offsets on the source grid "
                         f"below the rule: {', '.join(shown)}")
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- bars
def _single(df: pd.DataFrame, time_col: str) -> pd.DataFrame:
    extra = [c for c in ("source", "symbol", "month") if c in df.columns]
    out = df.drop(columns=extra) if extra else df
    return out.set_index(time_col) if time_col in out.columns else out


def calendar_resample(df: pd.DataFrame, token: str) -> pd.DataFrame:
    """pandas' `df.resample("W" | "ME")` bins (closed/label right: a bin holds whole days up
    to and including its label day, labelled at that day's midnight), non-empty bins only,
    with a `bars` column (source rows per bin). OHLC first/max/min/last, volumes summed,
    other numeric and datetime columns last."""
    t = df.index.as_unit("us").asi8
    day = t // _DAY_US
    if token == "w":
        label_day = day + (6 - (day + 3) % 7)                 # 1970-01-01 was a Thursday
    else:
        m = day.astype("datetime64[D]").astype("datetime64[M]")
        label_day = ((m + 1).astype("datetime64[D]") - 1).astype(np.int64)
    cuts = np.flatnonzero(np.r_[True, label_day[1:] != label_day[:-1]])
    ends = np.r_[cuts[1:], len(t)]
    cols = {}
    for c in df.columns:
        x = df[c]
        if c == "open":
            cols[c] = x.to_numpy()[cuts]
        elif c == "high":
            cols[c] = np.fmax.reduceat(x.to_numpy(float), cuts) if len(t) else x.to_numpy()
        elif c == "low":
            cols[c] = np.fmin.reduceat(x.to_numpy(float), cuts) if len(t) else x.to_numpy()
        elif c in SUM_COLUMNS and pd.api.types.is_numeric_dtype(x.dtype):
            cols[c] = np.add.reduceat(np.nan_to_num(x.to_numpy()), cuts) if len(t) else x.to_numpy()
        elif pd.api.types.is_numeric_dtype(x.dtype) or isinstance(x.dtype, pd.DatetimeTZDtype):
            cols[c] = x.iloc[ends - 1].to_numpy() if len(t) else x.to_numpy()
    cols["bars"] = (ends - cuts).astype(np.int64)
    idx = pd.DatetimeIndex((label_day[cuts] * _DAY_US).astype("datetime64[us]"), name=df.index.name)
    return pd.DataFrame(cols, index=idx.tz_localize("UTC"))


def _expected_calendar(index: pd.DatetimeIndex, token: str, step_us: int) -> np.ndarray:
    end = index.as_unit("us").asi8 + _DAY_US               # the bin holds days up to its label day
    if token == "w":
        start = end - 7 * _DAY_US
    else:
        start = index.tz_localize(None).to_period("M").to_timestamp().as_unit("us").asi8
    return (end - start) // step_us


def bars(klines: pd.DataFrame, rule: str, phases: list[str], step_us: int, partial: bool,
         time_col: str = "open_time") -> tuple[pd.DataFrame, int]:
    """Resampled bars of one symbol for every phase: a frame indexed by `open_time` with a
    `phase` and a `bars` column, and the number of partial bars dropped (0 when `partial`)."""
    df = _single(klines, time_col)
    token, rule_us = rule_spec(rule)
    frames, dropped = [], 0
    if not len(df):
        return _empty_bars(df, time_col), 0
    if rule_us is not None and len(phases) > 2:
        fast = all_phases(df, rule_us, step_us, phases, partial)
        if fast is not None:
            res, dropped = fast
            res.index = res.index.as_unit("us").rename(time_col)
            return res, dropped
    for ph in phases:
        if rule_us is None:
            out = calendar_resample(df, token)
            expected = _expected_calendar(out.index, token, step_us)
        else:
            out = resample(df, rule, offset=None if ph == "0min" else ph, partial=True, bars=True)
            expected = np.full(len(out), rule_us // step_us)
        if not partial:
            keep = out["bars"].to_numpy() >= expected
            dropped += int((~keep).sum())
            out = out[keep]
        out = out.copy()
        out["phase"] = pd.Categorical([ph] * len(out), categories=phases)
        frames.append(out)
    res = pd.concat(frames) if len(frames) > 1 else frames[0]
    res.index = res.index.as_unit("us").rename(time_col)
    return res.sort_index(kind="stable"), dropped


def all_phases(df: pd.DataFrame, rule_us: int, step_us: int, phases: list[str],
               partial: bool) -> tuple[pd.DataFrame, int] | None:
    """Every phase of a fixed rule in one pass (None when a row is off the source grid: the
    caller then resamples phase by phase).

    The rows are laid on the full source grid from the first day's midnight minus one rule
    (NaN where a bar is missing); the bar opening at grid point i covers points [i, i+n)
    (n = rule / step), which is the trailing window of length n ending at i+n-1. So high,
    low and the sums of every bar of every phase come from one rolling max/min/sum (numba,
    `kernels.rolling`), open and close from the next/previous present row. Bins are those
    of `df.resample(rule, offset=phase)` (origin start_day): phase k holds the bars with
    i % n == k."""
    from ..kernels import rolling as kro
    t = df.index.as_unit("us").asi8
    if not len(t):
        return None
    n = rule_us // step_us
    g0 = (t[0] // _DAY_US) * _DAY_US - rule_us
    pos = t - g0
    if (pos % step_us).any():
        return None
    pos //= step_us
    L = int(pos[-1]) + n + 1
    p0, N = int(pos[0]), len(pos)
    dense = int(pos[-1]) - p0 + 1 == N                 # no missing bar: slices instead of scatters
    put = (lambda g, v: g.__setitem__(slice(p0, p0 + N), v)) if dense else (lambda g, v: g.__setitem__(pos, v))
    valid = np.zeros(L, bool)
    put(valid, True)
    cnt = np.r_[0, np.cumsum(valid)]
    count = cnt[n:] - cnt[:-n]                          # count[i]: rows in [i, i+n)
    nstart = len(count)
    want = np.zeros(n, bool)
    want[[int(pd.Timedelta(p).value // 1000 // step_us) for p in phases]] = True
    keep = count > 0
    if not want.all():
        keep &= want[np.arange(nstart) % n]
    dropped = 0
    if not partial:
        full = count == n
        dropped = int((keep & ~full).sum())
        keep &= full
    idx = np.flatnonzero(keep)
    ends = idx + n - 1
    if dense:                                           # rows are grid points p0 .. p0+N-1
        first_row = np.maximum(idx, p0) - p0
        last_row = np.minimum(ends, p0 + N - 1) - p0
    else:
        nxt = np.full(L + 1, L, np.int64)               # next present grid point at or after i
        nxt[pos] = pos
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]
        prv = np.full(L, -1, np.int64)                  # previous present grid point at or before i
        prv[pos] = pos
        prv = np.maximum.accumulate(prv)
        row_of = np.full(L, -1, np.int64)
        row_of[pos] = np.arange(len(pos))
        first_row, last_row = row_of[nxt[idx]], row_of[prv[ends]]
    cols = {}
    for c in df.columns:
        x = df[c]
        if c == "open":
            cols[c] = x.to_numpy(float)[first_row]
        elif c in ("high", "low") or (c in SUM_COLUMNS and pd.api.types.is_float_dtype(x.dtype)):
            v = x.to_numpy(float)
            finite = bool(np.isfinite(v).all())
            # empty grid points get a value that cannot change a window's result (the column's
            # min for max, max for min, 0 for sums) so the kernels take their all-finite path;
            # every window kept holds at least one real row
            fill = np.nan if not finite else (v.min() if c == "high" else v.max() if c == "low" else 0.0)
            g = np.full(L, fill)
            put(g, v)
            out = np.empty(L)
            {"high": kro.rolling_max, "low": kro.rolling_min}.get(c, kro.rolling_sum)(g, n, 1, out)
            cols[c] = out[ends]
        elif c in SUM_COLUMNS and pd.api.types.is_integer_dtype(x.dtype):
            g = np.zeros(L, np.int64)
            put(g, x.to_numpy(np.int64))
            cs = np.r_[0, np.cumsum(g)]
            cols[c] = cs[idx + n] - cs[idx]
        elif isinstance(x.dtype, pd.DatetimeTZDtype):
            cols[c] = x.array.take(last_row)
        elif pd.api.types.is_numeric_dtype(x.dtype):
            cols[c] = x.to_numpy()[last_row]
    cols["bars"] = count[idx].astype(np.int64)
    lab = [phase_label(pd.Timedelta(k * step_us, "us")) for k in range(n)]
    cols["phase"] = pd.Categorical.from_codes(idx % n, lab)
    times = pd.DatetimeIndex((g0 + idx * step_us).astype("datetime64[us]"), name=df.index.name).tz_localize("UTC")
    return pd.DataFrame(cols, index=times), dropped


def _empty_bars(df: pd.DataFrame, time_col: str) -> pd.DataFrame:
    out = df.iloc[:0].copy()
    out["bars"] = np.zeros(0, np.int64)
    out["phase"] = pd.Categorical([], categories=["0min"])
    out.index = pd.DatetimeIndex([], tz="UTC", name=time_col).as_unit("us")
    return out


# ---------------------------------------------------------------- funding bars
FUNDING_COLUMNS = ("funding_count", "funding_rate_sum", "funding_rate_first", "funding_rate_last",
                   "mark_price_first", "mark_price_last", "funding_time_first", "funding_time_last",
                   "funding_interval_hours", "funding_rates", "funding_mark_prices", "funding_times")


def join_funding(bars_df: pd.DataFrame, funding: pd.DataFrame, rule_us: int) -> pd.DataFrame:
    """Every funding event with open_time <= funding_time < open_time + rule, per bar:
    `funding_count` (0: no settlement in the bar), `funding_rate_sum`, first/last rate, mark
    price and time (NaN/NaT when none), the lists `funding_rates`, `funding_mark_prices`,
    `funding_times` (every event, in time order), and `funding_interval_hours`: the interval
    of the last event at or before the bar's end (the schedule in force; <NA> before the
    first event seen)."""
    out = bars_df.copy()
    ft = funding.index.as_unit("us").asi8 if len(funding) else np.zeros(0, np.int64)
    rate = funding["funding_rate"].to_numpy(float) if len(funding) else np.zeros(0)
    mark = funding["mark_price"].to_numpy(float) if len(funding) else np.zeros(0)
    hours = funding["funding_interval_hours"].to_numpy(np.int64) if len(funding) else np.zeros(0, np.int64)
    o = out.index.as_unit("us").asi8
    lo = np.searchsorted(ft, o, "left")
    hi = np.searchsorted(ft, o + rule_us, "left")
    n = hi - lo
    has = n > 0
    csum = np.r_[0.0, np.cumsum(rate)]
    out["funding_count"] = n.astype(np.int64)
    out["funding_rate_sum"] = csum[hi] - csum[lo]
    first, last = np.where(has, lo, 0), np.where(has, hi - 1, 0)
    nan = np.full(len(o), np.nan)
    pick = (lambda a, i: np.where(has, a[i], np.nan)) if len(ft) else (lambda a, i: nan)
    out["funding_rate_first"], out["funding_rate_last"] = pick(rate, first), pick(rate, last)
    out["mark_price_first"], out["mark_price_last"] = pick(mark, first), pick(mark, last)
    for name, i in (("funding_time_first", first), ("funding_time_last", last)):
        v = np.where(has, ft[i] if len(ft) else 0, np.iinfo(np.int64).min)
        out[name] = pd.DatetimeIndex(v.view("datetime64[us]")).tz_localize("UTC")
        out.loc[~has, name] = pd.NaT
    prior = hi - 1
    out["funding_interval_hours"] = pd.array(np.where(prior >= 0, hours[np.maximum(prior, 0)] if len(ft) else 0, 0),
                                             dtype="Int64")
    out.loc[prior < 0, "funding_interval_hours"] = pd.NA
    out["funding_rates"] = [rate[a:b].tolist() for a, b in zip(lo, hi)]
    out["funding_mark_prices"] = [mark[a:b].tolist() for a, b in zip(lo, hi)]
    out["funding_times"] = [list(pd.DatetimeIndex(ft[a:b].view("datetime64[us]")).tz_localize("UTC"))
                            for a, b in zip(lo, hi)]
    return out


# ---------------------------------------------------------------- features
def warmup_rows(values: pd.DataFrame, params: dict) -> int:
    """Rows an indicator needs before its values are trusted: the later of the first row at
    which every output is a number and (sum of its integer parameters - their count), a
    conservative bound for chained windows (macd 12/26/9 -> 44)."""
    ints = [v for v in params.values() if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]
    bound = sum(ints) - len(ints)
    ok = values.notna().all(axis=1).to_numpy()
    first = int(np.argmax(ok)) if ok.any() else len(values)
    return max(first, bound)


def features(bars_df: pd.DataFrame, specs) -> pd.DataFrame:
    """Indicator columns for one symbol's bars plus `warmup_<indicator>` booleans (True on
    the warm-up rows, see `warmup_rows`). Causal: every kernel reads only earlier rows."""
    parsed = [oind._parse(s) for s in specs]
    out = bars_df.copy()
    for name, params in parsed:
        defaults = {k: v.default for k, v in _signature(oind.INDICATORS[name]).items()
                    if k != "df"}
        full = {**defaults, **params}
        try:
            res = oind.INDICATORS[name](bars_df, **params)
        except TypeError as e:
            raise ValueError(f"bad parameters for {name}: {e}") from None
        res = res.to_frame() if isinstance(res, pd.Series) else res
        key = res.columns[0] if len(res.columns) == 1 else name
        for c in res.columns:
            out[c] = res[c].to_numpy()
        w = warmup_rows(res, full)
        out[f"warmup_{key}"] = np.arange(len(out)) < w
    return out


def _signature(fn) -> dict:
    import inspect
    return dict(inspect.signature(fn).parameters)


def source_kind(table: str) -> tuple[str, str, str | None]:
    """(market, data_type, interval) of a silver source name, ValueError if it is not one."""
    return schema.parse_table_name(table)
