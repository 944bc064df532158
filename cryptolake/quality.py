"""The gap engine: which bars are missing, why, and how complete a table is.

One home for runs, causes, coverage and off-grid counts, used alike by `df.lake.gaps()`
(`cryptolake.ops.gaps`), `Table.gaps()` / `Table.coverage()` and the ingest report, so the
views cannot disagree. Runs come from one kernel (`kernels.gaps.window_runs`) on the bar
grid of `cryptolake.grid`.

What is expected: every grid point inside a symbol's *windows*. For a lake table the windows
are the periods of the source files the manifest knows for that symbol (stored, quarantined,
or planned but absent upstream), clipped to the asked range: bars before a symbol's first
file or after its last (delisting) are not expected. For a frame from elsewhere the window is
its own first to last on-grid bar. Off-grid bars (a 04:05 bar in a 1h series) never count as
present and never make a gap; they are counted (`off_grid`).

Causes (contract): each missing bar is classified by the file that should have held it —
  `missing_file`  no usable file covers its period (absent, failed or quarantined);
  `partial_file`  a file covers its period but stops before it or starts after it;
  `outage`        a file covers it and holds rows on both sides (exchange maintenance);
  `relisting`     a `missing_file` silence of at least `relisting_days(...)` — 14 days where the
                  archive publishes daily files, longer than a month where it publishes only
                  monthly ones (one lost monthly file is not a relisting) — history splits there;
  `halt`          bars present but flat with zero volume for at least HALT_MIN, futures only
                  (spot publishes quiet flat minutes: those are counted as `zero_volume`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import grid
from .kernels import gaps as kg

RELISTING_DAYS = 14                       # a silence this long, then trading again: relisted
MONTHLY_RELISTING_DAYS = 32               # ... where a lost file is a whole month (monthly-only)
HALT_MIN = pd.Timedelta(minutes=15)       # shorter flat stretches are just quiet markets
HALT_MARKETS = ("um", "cm")               # futures publish flat zero-volume bars through halts
CAUSES = ("missing_file", "partial_file", "outage", "halt", "relisting")
GAP_COLUMNS = ["symbol", "start", "end", "missing", "cause"]
_DAY_US = 86_400_000_000
_EPOCH = dt.date(1970, 1, 1)


# ---------------------------------------------------------------- source spans
@dataclass(frozen=True)
class Span:
    """One source file of one symbol (or one the archive should have had): the period it
    covers, [first, last] in µs inclusive, its manifest status, and the first and last row
    time it holds (None when it holds none or they were not recorded)."""
    first: int
    last: int
    status: str
    row_first: int | None = None
    row_last: int | None = None

    @property
    def usable(self) -> bool:
        return self.status == "stored"


def _day_us(d: dt.date) -> int:
    return (d - _EPOCH).days * _DAY_US


def _us(v) -> int | None:
    if v is None or (not isinstance(v, (int, np.integer)) and pd.isna(v)):
        return None
    if isinstance(v, (int, np.integer)):
        return int(v)
    return pd.Timestamp(v).value // 1000


def file_spans(rows) -> dict[str, list[Span]]:
    """symbol -> sorted Spans of every manifest row of one table (any status)."""
    from .layout import parse_archive_key
    from .sources.rest import parse_page_key
    spans: dict[str, list[Span]] = {}
    for r in rows:
        k = parse_archive_key(r["key"])
        if k is not None:
            sym, first, last = k.symbol, k.first_day, k.last_day
        elif str(r["key"]).startswith("rest/"):          # one UTC day of REST pages
            _, _, sym, _, first = parse_page_key(r["key"])
            last = first
        else:
            continue
        spans.setdefault(sym, []).append(Span(
            _day_us(first), _day_us(last) + _DAY_US - 1, str(r["status"]),
            _us(r.get("first_time")), _us(r.get("last_time"))))
    return {s: sorted(v, key=lambda x: (x.first, x.last)) for s, v in spans.items()}


def windows(spans: list[Span], lo_us: int | None = None, hi_us: int | None = None) -> list[tuple[int, int]]:
    """The union of the spans' periods, clipped to [lo, hi]: where bars are expected."""
    out: list[list[int]] = []
    for s in sorted(spans, key=lambda x: x.first):
        a, b = s.first, s.last
        if lo_us is not None:
            a = max(a, lo_us)
        if hi_us is not None:
            b = min(b, hi_us)
        if a > b:
            continue
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


# ---------------------------------------------------------------- runs
def _index_space(interval: str, t: np.ndarray):
    """(ticks, step, origin, back): calendar months become month numbers with step 1."""
    if grid.is_calendar(interval):
        months = t.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)

        def back(m):
            return np.asarray(m, np.int64).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
        return months, 1, 0, back
    return t, grid.step_us(interval), grid.origin_us(interval), lambda x: np.asarray(x, np.int64)


def find_runs(t: np.ndarray, seg: np.ndarray, step: int, origin: int,
              lo: np.ndarray | None = None, hi: np.ndarray | None = None):
    """Runs of absent grid points (origin + k * step) per segment of the sorted times `t`.

    `lo`/`hi` (grid points, one per segment) bound each segment's window; None means each
    segment's own first and last on-grid bar. Off-grid rows are skipped and counted.
    Returns (start, end, missing, seg_of_run, off_grid_per_segment).
    """
    nseg = len(seg) - 1
    auto = lo is None
    if auto:
        lo = hi = np.zeros(nseg, np.int64)
    cap = len(t) + nseg + 1
    start, end, missing, gseg = (np.empty(cap, np.int64) for _ in range(4))
    off = np.zeros(max(nseg, 1), np.int64)
    k = kg.window_runs(np.ascontiguousarray(t, np.int64), np.asarray(seg, np.int64), int(step),
                       int(origin), np.asarray(lo, np.int64), np.asarray(hi, np.int64), auto,
                       start, end, missing, gseg, off)
    return start[:k], end[:k], missing[:k], gseg[:k], off[:nseg]


def runs_in_windows(symbol: str, t_us: np.ndarray, interval: str,
                    wins: list[tuple[int, int]]) -> tuple[pd.DataFrame, int]:
    """Missing-bar runs of one symbol inside its windows (µs, inclusive), and how many rows
    lie off the grid. `t_us` sorted."""
    s, e, m, back = _window_runs(t_us, interval, wins)
    off_grid = int((~grid.on_grid(t_us, interval)).sum())
    runs = pd.DataFrame({"symbol": symbol, "start": back(s), "end": back(e), "missing": m})
    return runs, off_grid


def _window_runs(t_us: np.ndarray, interval: str, wins: list[tuple[int, int]]):
    """(starts, ends, missing, back) of the missing-bar runs inside `wins`, in index space
    (`back` maps them to µs)."""
    ticks, step, origin, back = _index_space(interval, np.asarray(t_us, np.int64))
    if grid.is_calendar(interval):
        ticks = ticks[grid.on_grid(t_us, interval)]
    lo_w = np.array([grid.ceil(np.array([a]), interval)[0] for a, _ in wins], np.int64)
    hi_w = np.array([grid.floor(np.array([b]), interval)[0] for _, b in wins], np.int64)
    keep = lo_w <= hi_w
    lo_w, hi_w = lo_w[keep], hi_w[keep]
    if grid.is_calendar(interval):
        lo_w, hi_w = _index_space(interval, lo_w)[0], _index_space(interval, hi_w)[0]
    cuts = np.searchsorted(ticks, np.ravel(np.column_stack([lo_w, hi_w + 1]))) if len(lo_w) else np.array([], np.int64)
    # every window is a segment over its own slice of rows: lay them out back to back
    pieces = [ticks[cuts[2 * i]:cuts[2 * i + 1]] for i in range(len(lo_w))]
    seg = np.concatenate(([0], np.cumsum([len(p) for p in pieces]))).astype(np.int64)
    flat = np.concatenate(pieces) if pieces else np.empty(0, np.int64)
    s, e, m, _, _ = find_runs(flat, seg, step, origin, lo_w, hi_w)
    return s, e, m, back


# ---------------------------------------------------------------- causes
def relisting_days(market: str, data_type: str, interval: str | None) -> int:
    """How long a silence must be to split a symbol's history (see the module docstring)."""
    from .schema import DAILY_INTERVALS, DATA_TYPES
    daily = "d" in DATA_TYPES[market][data_type] and (interval is None or interval in DAILY_INTERVALS)
    return RELISTING_DAYS if daily else MONTHLY_RELISTING_DAYS


def classify(runs: pd.DataFrame, spans: list[Span], interval: str,
             relisting: int = RELISTING_DAYS) -> pd.DataFrame:
    """Give each missing bar of `runs` (µs starts/ends of one symbol) the cause named by the
    file that should have held it, merging neighbours with the same cause into one run."""
    out = []
    usable = [s for s in spans if s.usable]
    for r in runs.itertuples(index=False):
        cuts = {r.start}
        for s in usable:
            for b in (s.first, s.last + 1, s.row_first, None if s.row_last is None else s.row_last + 1):
                if b is not None and r.start < b <= r.end:
                    cuts.add(int(grid.ceil(np.array([b]), interval)[0]))
        cuts = sorted(c for c in cuts if c <= r.end)
        pieces = []
        for i, a in enumerate(cuts):
            b_next = cuts[i + 1] if i + 1 < len(cuts) else None
            b = r.end if b_next is None else _prev_point(b_next, interval)
            cause = _cause_at(a, usable)
            if pieces and pieces[-1][2] == cause:
                pieces[-1][1] = b
            else:
                pieces.append([a, b, cause])
        for a, b, cause in pieces:
            if cause == "missing_file" and b - a >= relisting * _DAY_US:
                cause = "relisting"
            out.append((r.symbol, a, b, grid.count(a, b, interval), cause))
    return _frame(out)


def _prev_point(t: int, interval: str) -> int:
    """The grid point just before grid point `t`."""
    if grid.is_calendar(interval):
        return int(grid.floor(np.array([t - 1]), interval)[0])
    return t - grid.step_us(interval)


def _cause_at(t: int, usable: list[Span]) -> str:
    covering = [s for s in usable if s.first <= t <= s.last]
    if not covering:
        return "missing_file"
    for s in covering:
        if s.row_first is None and s.row_last is None:
            return "outage"        # row span not recorded: absent inside a file
        if s.row_first is not None and s.row_last is not None and s.row_first <= t <= s.row_last:
            return "outage"
    return "partial_file"


def halts(symbols: np.ndarray, times_us: np.ndarray, o, h, l, c, v, step: int) -> pd.DataFrame:
    """Runs of consecutive flat, zero-volume bars at least HALT_MIN long (futures publish these
    through trading halts, so open-time gaps never show them). Rows sorted by symbol, time."""
    flat = (v == 0) & (o == h) & (h == l) & (l == c)
    idx = np.flatnonzero(flat)
    si, ti = symbols[idx], times_us[idx]
    a, b = _long_runs(si, ti, idx, step)
    return _frame([(si[x], int(ti[x]), int(ti[y]), int(y - x + 1), "halt") for x, y in zip(a, b)])


def halt_candidates(symbols: np.ndarray, times_us: np.ndarray, step: int) -> list[str]:
    """The symbols whose zero-volume rows (`symbols`, `times_us`: those rows alone, sorted by
    symbol and time) hold a run of consecutive bars long enough to be a halt: the only ones
    whose prices `halts` needs to see."""
    a, _ = _long_runs(symbols, times_us, np.arange(len(times_us)), step)
    return sorted(set(symbols[a].tolist()))


def _long_runs(si: np.ndarray, ti: np.ndarray, idx: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) positions of the runs of consecutive bars (one symbol, times `step`
    apart, adjacent rows `idx`) at least HALT_MIN long."""
    if not len(ti):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    brk = np.flatnonzero((np.diff(ti) != step) | (si[1:] != si[:-1]) | (np.diff(idx) != 1)) + 1
    a = np.r_[0, brk]
    b = np.r_[brk, len(ti)] - 1
    long = (b - a + 1) >= halt_min_bars(step)
    return a[long], b[long]


def halt_min_bars(step: int) -> int:
    """Bars (`step` µs apart) in the shortest halt: HALT_MIN of them, and at least 3."""
    return max(3, int(np.ceil(HALT_MIN.value / 1000 / step)))


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=GAP_COLUMNS)
    for col in ("start", "end"):
        df[col] = pd.to_datetime(df[col].astype("int64"), unit="us", utc=True)
    df["missing"] = df["missing"].astype("int64")
    df["symbol"] = df["symbol"].astype(object)
    return df


# ---------------------------------------------------------------- one table, many symbols
def table_gaps(interval: str, times: dict[str, np.ndarray], spans: dict[str, list[Span]],
               lo_us: int | None, hi_us: int | None, flat: pd.DataFrame | None = None,
               relisting: int = RELISTING_DAYS) -> pd.DataFrame:
    """Every gap of every symbol with its cause. `times`: symbol -> sorted µs of its rows in
    [lo, hi]; `spans`: symbol -> source Spans (symbols without spans are expected from their
    first to their last bar); `flat`: halt runs already found (or None)."""
    parts = []
    for sym in sorted(set(times) | set(spans)):
        t = times.get(sym, np.empty(0, np.int64))
        wins = _symbol_windows(t, spans.get(sym), lo_us, hi_us)
        s, e, m, back = _window_runs(t, interval, wins)
        if len(s):                 # no run, no gap: skip building frames
            runs = pd.DataFrame({"symbol": sym, "start": back(s), "end": back(e), "missing": m})
            parts.append(classify(runs, spans.get(sym, []), interval, relisting))
    if flat is not None and len(flat):
        parts.append(flat)
    parts = [p for p in parts if len(p)]
    if not parts:
        return _frame([])
    return pd.concat(parts, ignore_index=True).sort_values(["symbol", "start"], ignore_index=True)


def _symbol_windows(t, spans, lo_us, hi_us) -> list[tuple[int, int]]:
    if spans:
        return windows(spans, lo_us, hi_us)
    if not len(t):
        return []
    return [(int(t[0]), int(t[-1]))]


COVERAGE_COLUMNS = ["symbol", "listed_from", "listed_to", "first", "last", "rows", "expected",
                    "missing", "off_grid", "zero_volume"]


def coverage(interval: str | None, stats: pd.DataFrame, spans: dict[str, list[Span]]) -> pd.DataFrame:
    """Per symbol: listed_from/listed_to (the span bars are expected in: the requested part of
    the symbol's listed life), first, last, rows, expected (grid points in that span),
    missing (expected bars absent), off_grid and zero_volume bars.

    `stats` has one row per partition (symbol, rows, on_grid, off_grid, zero_volume, first,
    last; µs) — counts recorded at write time, so no data is read here. Needs a fixed or
    calendar `interval`; see `funding_coverage` for funding tables.
    """
    out = []
    if len(stats):
        agg = stats.groupby("symbol", sort=True).agg(
            rows=("rows", "sum"), on_grid=("on_grid", "sum"), off_grid=("off_grid", "sum"),
            zero_volume=("zero_volume", "sum"), first=("first", "min"), last=("last", "max"))
    else:
        agg = pd.DataFrame(columns=["rows", "on_grid", "off_grid", "zero_volume", "first", "last"])
    for sym in sorted(set(agg.index) | set(spans)):
        row = agg.loc[sym] if sym in agg.index else None
        t = np.array([row["first"], row["last"]], np.int64) if row is not None and row["rows"] else np.empty(0, np.int64)
        wins = _symbol_windows(t, spans.get(sym), None, None)
        expected = sum(grid.count(a, b, interval) for a, b in wins)
        on_grid = int(row["on_grid"]) if row is not None else 0
        out.append((sym, _ts(wins[0][0]) if wins else pd.NaT, _ts(wins[-1][1]) if wins else pd.NaT,
                    _ts(row["first"]) if row is not None and row["rows"] else pd.NaT,
                    _ts(row["last"]) if row is not None and row["rows"] else pd.NaT,
                    int(row["rows"]) if row is not None else 0, expected, max(expected - on_grid, 0),
                    int(row["off_grid"]) if row is not None else 0,
                    int(row["zero_volume"]) if row is not None else 0))
    return _coverage_frame(out)


def _ts(us) -> pd.Timestamp:
    return pd.Timestamp(int(us), unit="us", tz="UTC")


def _coverage_frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COVERAGE_COLUMNS)
    for c in ("listed_from", "listed_to", "first", "last"):
        df[c] = pd.to_datetime(df[c], utc=True).dt.as_unit("us")
    for c in ("rows", "expected", "missing", "off_grid", "zero_volume"):
        df[c] = df[c].astype("int64")
    return df


# ---------------------------------------------------------------- funding
def funding_runs(symbol: str, t_us: np.ndarray, hours: np.ndarray,
                 wins: list[tuple[int, int]]) -> pd.DataFrame:
    """Missing funding settlements of one symbol. Funding has no fixed grid: the interval
    changes (8h -> 4h -> 1h) and times jitter by milliseconds. Between two settlements the
    expected step is the longer of their two `funding_interval_hours` (so a switch of interval
    is never mistaken for a miss); a step of k such intervals means k - 1 settlements missing.
    Window edges: settlements missing between a window's start and the first event, and
    between the last event and the window's end, at the nearest event's interval."""
    t = np.asarray(t_us, np.int64)
    h = np.where(np.isnan(np.asarray(hours, float)), 8.0, np.asarray(hours, float))
    hu = (h * 3.6e9).astype(np.int64)
    out = []
    for a, b in wins:
        i, j = np.searchsorted(t, a), np.searchsorted(t, b, side="right")
        tt, hh = t[i:j], hu[i:j]
        if not len(tt):
            step = int(hu[min(i, len(hu) - 1)]) if len(hu) else 8 * 3_600_000_000
            n = (b + 1 - a) // step
            if n:
                out.append((symbol, a, a + (n - 1) * step, int(n), "missing_file"))
            continue
        lead = (tt[0] - a) // hh[0]
        if lead:
            out.append((symbol, int(tt[0] - lead * hh[0]), int(tt[0] - hh[0]), int(lead), None))
        hstep = np.maximum(hh[1:], hh[:-1])
        steps = np.rint(np.diff(tt) / hstep).astype(np.int64)
        for k in np.flatnonzero(steps > 1):
            out.append((symbol, int(tt[k] + hstep[k]), int(tt[k + 1] - hstep[k]), int(steps[k] - 1), None))
        trail = (b + 1 - tt[-1] - 1) // hh[-1]
        if trail:
            out.append((symbol, int(tt[-1] + hh[-1]), int(tt[-1] + trail * hh[-1]), int(trail), None))
    return pd.DataFrame(out, columns=GAP_COLUMNS)


def funding_gaps(times: dict, hours: dict, spans: dict[str, list[Span]], lo_us, hi_us,
                 relisting: int = MONTHLY_RELISTING_DAYS) -> pd.DataFrame:
    """`table_gaps` for funding tables (see `funding_runs`); causes as for bars."""
    parts = []
    for sym in sorted(set(times) | set(spans)):
        t = times.get(sym, np.empty(0, np.int64))
        wins = _symbol_windows(t, spans.get(sym), lo_us, hi_us)
        runs = funding_runs(sym, t, hours.get(sym, np.empty(0)), wins)
        for r in runs.itertuples(index=False):
            cause = r.cause or _cause_at(r.start, [s for s in spans.get(sym, []) if s.usable])
            if cause == "missing_file" and r.end - r.start >= relisting * _DAY_US:
                cause = "relisting"
            parts.append((r.symbol, r.start, r.end, r.missing, cause))
    return _frame(parts).sort_values(["symbol", "start"], ignore_index=True)


def funding_coverage(times: dict, hours: dict, spans: dict[str, list[Span]]) -> pd.DataFrame:
    """`coverage` for funding tables: expected = settlements present + missing."""
    g = funding_gaps(times, hours, spans, None, None)
    miss = g.groupby("symbol")["missing"].sum() if len(g) else pd.Series(dtype="int64")
    out = []
    for sym in sorted(set(times) | set(spans)):
        t = times.get(sym, np.empty(0, np.int64))
        wins = _symbol_windows(t, spans.get(sym), None, None)
        m = int(miss.get(sym, 0))
        out.append((sym, _ts(wins[0][0]) if wins else pd.NaT, _ts(wins[-1][1]) if wins else pd.NaT,
                    _ts(t[0]) if len(t) else pd.NaT, _ts(t[-1]) if len(t) else pd.NaT,
                    len(t), len(t) + m, m, 0, 0))
    return _coverage_frame(out)


# ---------------------------------------------------------------- event tables (no bar grid)
def covered_day_starts(spans: list[Span]) -> np.ndarray:
    """µs starts of the days usable files cover (trades, metrics, …: events have no grid, so
    their completeness is counted in days of data)."""
    days = set()
    for s in spans:
        if s.usable:
            days.update(range(s.first // _DAY_US, s.last // _DAY_US + 1))
    return np.array(sorted(days), np.int64) * _DAY_US


def event_gaps(spans: dict[str, list[Span]], lo_us, hi_us, relisting: int = RELISTING_DAYS) -> pd.DataFrame:
    """Gaps of an event table: runs of days inside the listed span that no usable file covers
    (`start`/`end` are the first and last such day, `missing` counts days)."""
    times = {sym: covered_day_starts(v) for sym, v in spans.items()}
    return table_gaps("1d", times, spans, lo_us, hi_us, None, relisting)


def event_coverage(stats: pd.DataFrame, spans: dict[str, list[Span]]) -> pd.DataFrame:
    """`coverage` of an event table: rows, first and last from the partition stats; expected
    and missing count days (days in the listed span, and those no usable file covers)."""
    days = pd.DataFrame([{"symbol": sym, "rows": len(d), "on_grid": len(d), "off_grid": 0,
                          "zero_volume": 0, "first": int(d[0]), "last": int(d[-1])}
                         for sym, v in spans.items() if len(d := covered_day_starts(v))])
    cov = coverage("1d", days, spans)
    if len(stats):
        agg = stats.groupby("symbol").agg(rows=("rows", "sum"), first=("first", "min"), last=("last", "max"))
        for c in ("rows", "first", "last"):
            mapped = cov["symbol"].map(agg[c])
            cov[c] = mapped.fillna(0).astype("int64") if c == "rows" else \
                pd.to_datetime(mapped, unit="us", utc=True).dt.as_unit("us")
    return cov
