"""`lake.quality()`: how far to trust each silver table, one row per (table, symbol).

Columns: `table, symbol, rows, expected, missing, coverage` (rows on the grid / expected, from
`Table.coverage()`: metadata only), `off_grid, zero_volume`, gaps by cause (`gaps_<cause>`:
runs, `missing_<cause>`: bars; from `Table.gaps()`, which reads the time column),
`duplicates_removed` (not recorded by ingest yet: 0, see `notes`), `conflicts` (rows of
`silver/_conflicts` for the table and symbol, when that table exists), `republished`
(manifest rows whose upstream file changed, when the manifest records it), parity with the
archive's coarser klines (`parity_with, parity_checked, parity_mismatches`: the fine table
resampled to the coarse interval vs the official coarse bars; mismatches listed in
`report.parity`), and `score`:

    score = 100 * (1 - missing / expected)
            - 100 * parity_mismatches / parity_checked     (when checked)
            - 100 * conflicts / expected
    clipped to [0, 100]; NaN where nothing is expected.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from . import grid
from .quality import CAUSES

PRICE_COLS = ("open", "high", "low", "close", "volume")


class QualityReport:
    """DataFrame-like: `report.frame` (one row per table and symbol; indexing, `len`, column
    access and DataFrame methods pass through), `report.parity` (every mismatch), `report.monthly`
    (coverage per table, symbol and month, for `plot`), `report.notes`, `report.seconds`."""

    def __init__(self, frame, parity, monthly, notes, seconds):
        self.frame, self.parity, self.monthly, self.notes, self.seconds = frame, parity, monthly, notes, seconds

    def __getattr__(self, name):
        if name in ("frame", "parity", "monthly", "notes", "seconds"):
            raise AttributeError(name)
        return getattr(self.frame, name)

    def __getitem__(self, key):
        return self.frame[key]

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (f"<QualityReport: {len(self.frame)} rows, {self.frame['table'].nunique() if len(self.frame) else 0} "
                f"tables, {len(self.parity)} parity mismatches>\n{self.frame.to_string(max_rows=20)}")

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<b>Quality report</b> — {len(self.frame)} table/symbol rows, {len(self.parity)} parity "
                f"mismatches ({self.seconds:.2f} s)" + self.frame.to_html(max_rows=50)
                + (f"<ul>{notes}</ul>" if notes else "")
                + "score = 100·(1 − missing/expected) − 100·parity_mismatches/parity_checked − "
                  "100·conflicts/expected, clipped to [0, 100]")

    def plot(self, table: str | None = None):
        """Two panels: coverage per month (one line per table.symbol, at most 20) and gap
        bars by cause (stacked per table). Returns the matplotlib Figure."""
        import matplotlib.pyplot as plt
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
        mon = self.monthly if table is None else self.monthly[self.monthly["table"] == table]
        for (t, s), g in list(mon.groupby(["table", "symbol"]))[:20]:
            a1.plot(pd.PeriodIndex(g["month"], freq="M").to_timestamp(), g["coverage"], marker="o", label=f"{t}.{s}")
        a1.set_title("coverage over time")
        a1.set_ylim(0, 1.05)
        if len(mon):
            a1.legend(fontsize=7)
        fr = self.frame if table is None else self.frame[self.frame["table"] == table]
        cols = [f"missing_{c}" for c in CAUSES if f"missing_{c}" in fr]
        by = fr.groupby("table")[cols].sum() if len(fr) else pd.DataFrame(columns=cols)
        bottom = np.zeros(len(by))
        for c in cols:
            a2.bar(by.index.astype(str), by[c].to_numpy(), bottom=bottom, label=c[len("missing_"):])
            bottom += by[c].to_numpy()
        a2.set_title("missing bars by cause")
        if cols:
            a2.legend(fontsize=7)
        fig.tight_layout()
        return fig


def _monthly(t, cov: pd.DataFrame) -> pd.DataFrame:
    """Coverage per (symbol, month) from partition stats: on-grid rows / grid points of the
    month inside the symbol's listed span (metadata only)."""
    st = t.partition_stats()
    rows = []
    span = cov.set_index("symbol")
    for r in st.itertuples(index=False):
        if r.symbol not in span.index or pd.isna(span.at[r.symbol, "listed_from"]):
            continue
        p = pd.Period(r.month, "M")
        lo = max(p.start_time.tz_localize("UTC"), span.at[r.symbol, "listed_from"])
        hi = min(p.end_time.tz_localize("UTC"), span.at[r.symbol, "listed_to"])
        exp = grid.count(lo.value // 1000, hi.value // 1000, t.interval) if lo <= hi else 0
        rows.append((t.name, r.symbol, r.month, r.on_grid / exp if exp else np.nan))
    return pd.DataFrame(rows, columns=["table", "symbol", "month", "coverage"])


def _conflicts(lake) -> pd.DataFrame | None:
    if not lake.storage.is_delta("silver/_conflicts"):
        return None
    df = lake.storage.open_table("silver/_conflicts").to_pyarrow_dataset().to_table().to_pandas()
    return df if {"table", "symbol"} <= set(df.columns) else None


def _parity(lake, fine, coarse_name: str, symbols) -> tuple[pd.DataFrame, dict]:
    """The fine kline table resampled to the coarse interval (complete bins only) vs the
    archive's coarse bars, on the open times both have."""
    from .ops.resample import resample
    coarse = lake.silver[coarse_name]
    rows, counts = [], {}
    cols = [c for c in PRICE_COLS]
    for sym in symbols:
        if sym not in coarse.symbols:
            continue
        c = coarse.read(sym, columns=cols)
        if not len(c):
            continue
        f = fine.read(sym, c.index[0], c.index[-1] + pd.Timedelta(grid.step_us(coarse.interval), "us")
                      - pd.Timedelta(1, "us"), columns=cols)
        f.attrs.clear()
        r = resample(f, coarse.interval, partial=False) if len(f) else f
        both = r.index.intersection(c.index)
        a, b = r.loc[both, cols], c.loc[both, cols]
        bad = ~np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12)
        counts[sym] = (len(both), int(bad.any(axis=1).sum()))
        for i, j in zip(*np.nonzero(bad)):
            rows.append((fine.name, coarse_name, sym, both[i], cols[j], a.iat[i, j], b.iat[i, j]))
    df = pd.DataFrame(rows, columns=["table", "coarse", "symbol", "open_time", "column", "resampled", "official"])
    return df, counts


def _coarser(lake, t) -> str | None:
    """The coarsest other silver table of the same market and kline type (e.g. 1h for 1m)."""
    if t.data_type != "klines" or not t.interval or grid.is_calendar(t.interval):
        return None
    best = None
    for name in lake.silver.tables:
        if name == t.name:
            continue
        o = lake.silver[name]
        if (o.market, o.data_type) != (t.market, t.data_type) or not o.interval or grid.is_calendar(o.interval):
            continue
        a, b = grid.step_us(t.interval), grid.step_us(o.interval)
        if b > a and b % a == 0 and (best is None or b < grid.step_us(lake.silver[best].interval)):
            best = name
    return best


def quality_report(lake, table: str | None = None, parity: bool = True) -> QualityReport:
    """See `Lake.quality` and the module docstring."""
    import time
    t0 = time.perf_counter()
    names = lake.silver.tables
    if table is not None:
        want = table.split(".", 1)[1] if table.startswith("silver.") else table
        if want not in names:
            raise ValueError(f"no silver table {table!r}; tables: {names}")
        names = [want]
    notes = ["duplicates_removed: ingest does not record removed duplicates yet; reported as 0"]
    conflicts = _conflicts(lake)
    if conflicts is None:
        notes.append("conflicts: the lake has no silver/_conflicts table; reported as 0")
    man = lake.bronze.manifest()
    if "republished" not in man.columns:
        notes.append("republished: the manifest does not record republished files; reported as 0")
    frames, monthly, mism = [], [], []
    for name in names:
        t = lake.silver[name]
        if not t.symbols:
            continue
        cov = t.coverage()
        cov.insert(0, "table", name)
        on = cov["expected"] - cov["missing"]
        cov["coverage"] = np.where(cov["expected"] > 0, on / cov["expected"].where(cov["expected"] > 0, 1), np.nan)
        gaps = t.gaps()
        for cause in CAUSES:
            g = gaps[gaps["cause"] == cause].groupby("symbol")["missing"]
            cov[f"gaps_{cause}"] = cov["symbol"].map(g.size()).fillna(0).astype("int64")
            cov[f"missing_{cause}"] = cov["symbol"].map(g.sum()).fillna(0).astype("int64")
        cov["duplicates_removed"] = 0
        if conflicts is not None:
            cc = conflicts[conflicts["table"] == name].groupby("symbol").size()
            cov["conflicts"] = cov["symbol"].map(cc).fillna(0).astype("int64")
        else:
            cov["conflicts"] = 0
        mt = man[man["table"] == name] if "table" in man.columns else man.iloc[:0]
        if "republished" in man.columns:
            rp = mt.groupby("symbol")["republished"].sum()
            cov["republished"] = cov["symbol"].map(rp).fillna(0).astype("int64")
        else:
            cov["republished"] = 0
        coarse = _coarser(lake, t) if parity else None
        cov["parity_with"] = coarse
        cov["parity_checked"] = 0
        cov["parity_mismatches"] = 0
        if coarse is not None:
            df, counts = _parity(lake, t, coarse, list(cov["symbol"]))
            mism.append(df)
            cov["parity_checked"] = cov["symbol"].map({k: v[0] for k, v in counts.items()}).fillna(0).astype("int64")
            cov["parity_mismatches"] = cov["symbol"].map({k: v[1] for k, v in counts.items()}).fillna(0).astype("int64")
        exp = cov["expected"].where(cov["expected"] > 0)
        score = 100 * (1 - cov["missing"] / exp) - 100 * cov["conflicts"] / exp
        score = score - 100 * (cov["parity_mismatches"] / cov["parity_checked"].where(cov["parity_checked"] > 0)).fillna(0)
        cov["score"] = score.clip(0, 100)
        frames.append(cov)
        if t.interval:
            monthly.append(_monthly(t, cov))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["table", "symbol", "score"])
    par = pd.concat(mism, ignore_index=True) if mism else pd.DataFrame(
        columns=["table", "coarse", "symbol", "open_time", "column", "resampled", "official"])
    mon = pd.concat(monthly, ignore_index=True) if monthly else pd.DataFrame(columns=["table", "symbol", "month", "coverage"])
    return QualityReport(frame, par, mon, notes, time.perf_counter() - t0)
