"""Reading the lake: `Layer` (lake.silver / lake.gold) and `Table` with filter pushdown."""
from __future__ import annotations

import datetime as dt
import html
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from . import layout, schema
from .storage import Storage

_META_COLS = ("symbol", "month")


def _to_timestamp(value, *, end: bool) -> pd.Timestamp | None:
    """A user bound as a UTC Timestamp. A bare date as `end` means the whole day (inclusive)."""
    if value is None:
        return None
    is_date = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if isinstance(value, str):
        is_date = len(value.strip()) <= 10
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    if end and is_date:
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


def _month(ts: pd.Timestamp, shift: int) -> str:
    return str(ts.tz_localize(None).to_period("M") + shift)


class Table:
    """One silver or gold table. Cheap to create; every read goes to storage."""

    def __init__(self, storage: Storage, layer: str, name: str, bronze=None):
        self.storage, self.layer, self.name, self.bronze = storage, layer, name, bronze
        self.market, self.data_type, self.interval = schema.parse_table_name(name)
        self.time_col = schema.time_column(self.data_type)
        self._rel = layout.table_dir(layer, name)

    def __repr__(self) -> str:
        syms = self.symbols
        return f"<Table {self.layer}.{self.name}: {len(syms)} symbols>"

    def _repr_html_(self) -> str:
        files = self._partitions()
        syms = sorted({s for s, _ in files})
        months = sorted({m for _, m in files})
        span = f"{months[0]} … {months[-1]}" if months else "empty"
        shown = ", ".join(syms[:12]) + (f", … ({len(syms)} in all)" if len(syms) > 12 else "")
        return (f"<b>{html.escape(self.layer)}.{html.escape(self.name)}</b> — {len(syms)} symbols, "
                f"{len(files)} partitions, months {html.escape(span)}<br>symbols: {html.escape(shown)}"
                f"<br>next: <code>t.coverage()</code>, <code>t['{html.escape(syms[0] if syms else 'SYMBOL')}']</code>")

    # ------------------------------------------------------------ metadata
    def _partitions(self) -> list[tuple[str, str]]:
        out = []
        for sdir in self.storage.ls(self._rel):
            name = sdir.rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith("symbol="):
                continue
            for mdir in self.storage.ls(f"{self._rel}/{name}"):
                mname = mdir.rstrip("/").rsplit("/", 1)[-1]
                if mname.startswith("month="):
                    out.append((name[7:], mname[6:]))
        return out

    @property
    def symbols(self) -> list[str]:
        """Symbols present in the table (from the partition directories; no data read)."""
        return sorted({s for s, _ in self._partitions()})

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.symbols

    # ------------------------------------------------------------ reads
    def _filter(self, symbols, start, end):
        f = None
        def add(expr):
            nonlocal f
            f = expr if f is None else f & expr
        if symbols is not None:
            add(ds.field("symbol").isin(list(symbols)))
        if start is not None:
            add(ds.field("month") >= _month(start, -1))
            add(ds.field(self.time_col) >= pa.scalar(start.to_pydatetime(), schema.TS))
        if end is not None:
            add(ds.field("month") <= _month(end, 1))
            add(ds.field(self.time_col) <= pa.scalar(end.to_pydatetime(), schema.TS))
        return f

    def read_arrow(self, symbols=None, start=None, end=None, columns=None, where=None) -> pa.Table:
        """Like `read`, as an Arrow table with a `symbol` column (no index). `where`: an extra
        pyarrow dataset expression pushed down with the others."""
        dataset = self.storage.dataset(self._rel)
        s, e = _to_timestamp(start, end=False), _to_timestamp(end, end=True)
        if s is not None and e is not None and s > e:
            raise ValueError(f"start {s} is after end {e}")
        if dataset is None:
            raise KeyError(f"{self.layer}.{self.name} has no data yet")
        if columns is not None:
            unknown = [c for c in columns if c not in dataset.schema.names]
            if unknown:
                raise ValueError(f"unknown column(s) {unknown}; {self.name} has {dataset.schema.names}")
            cols = ["symbol", self.time_col] + [c for c in columns if c not in ("symbol", self.time_col)]
        else:
            cols = [c for c in dataset.schema.names if c != "month"]
        f = self._filter(symbols, s, e)
        if where is not None:
            f = where if f is None else f & where
        t = dataset.to_table(columns=cols, filter=f)
        return t.sort_by([("symbol", "ascending"), (self.time_col, "ascending")])

    def read(self, symbols=None, start=None, end=None, columns=None) -> pd.DataFrame:
        """Rows of the table as a DataFrame.

        `symbols`: one symbol (str) -> indexed by the time column; several (or None on a
        multi-symbol table) -> (`symbol`, time) MultiIndex. `start`/`end`: inclusive bounds
        (a bare date as `end` includes that whole day). `columns`: a subset to read. Symbol,
        month and time filters are pushed down to the Parquet partitions and row groups.
        """
        single = isinstance(symbols, str)
        if single:
            symbols = [symbols]
        elif symbols is not None:
            symbols = list(symbols)
            single = len(symbols) == 1
        if symbols:
            known = set(self.symbols)
            unknown = [s for s in symbols if s not in known]
            if unknown:
                raise KeyError(f"{unknown} not in {self.layer}.{self.name}; "
                               f"symbols: {sorted(known)[:20]}{' …' if len(known) > 20 else ''}")
        elif symbols is None:
            single = len(self.symbols) == 1
        df = self.read_arrow(symbols, start, end, columns).to_pandas()
        if single:
            return df.drop(columns="symbol").set_index(self.time_col)
        df["symbol"] = df["symbol"].astype(str)
        return df.set_index(["symbol", self.time_col])

    def __getitem__(self, key) -> pd.DataFrame:
        """`t["BTCUSDT"]` or `t["BTCUSDT", "2024-01-01":"2024-01-31"]` (inclusive)."""
        if isinstance(key, tuple):
            sym, when = key
            if not isinstance(when, slice):
                return self.read(sym, when, when)
            return self.read(sym, when.start, when.stop)
        return self.read(key)

    def panel(self, field: str = "close", symbols=None, start=None, end=None) -> pd.DataFrame:
        """Wide time x symbol frame of one column (for backtests); NaN where a symbol has no row."""
        t = self.read_arrow(symbols, start, end, columns=[field]).to_pandas()
        t["symbol"] = t["symbol"].astype(str)
        return t.pivot(index=self.time_col, columns="symbol", values=field)

    # ------------------------------------------------------------ quality
    def _step(self) -> pd.Timedelta | None:
        ms = schema.interval_ms(self.interval) if self.interval else None
        return pd.Timedelta(milliseconds=ms) if ms else None

    def coverage(self) -> pd.DataFrame:
        """Per symbol: first, last, rows, expected (bars on the grid from first to last), missing."""
        t = self.read_arrow(columns=[self.time_col] + (["funding_interval_hours"]
                                                       if self.data_type == "fundingRate" else []))
        out = []
        syms = t["symbol"].to_numpy(zero_copy_only=False).astype(str)
        times = t[self.time_col].to_numpy().astype("datetime64[us]").astype(np.int64)
        bounds = np.flatnonzero(np.r_[True, syms[1:] != syms[:-1], True])
        step = self._step()
        for a, b in zip(bounds[:-1], bounds[1:]):
            ts = times[a:b]
            if step is not None:
                expected = int((ts[-1] - ts[0]) // (step.value // 1000)) + 1
            else:
                expected = _funding_expected(ts, t["funding_interval_hours"].to_numpy()[a:b]) \
                    if self.data_type == "fundingRate" else b - a
            out.append((syms[a], pd.Timestamp(ts[0], unit="us", tz="UTC"),
                        pd.Timestamp(ts[-1], unit="us", tz="UTC"), b - a, expected, expected - (b - a)))
        return pd.DataFrame(out, columns=["symbol", "first", "last", "rows", "expected", "missing"])

    def gaps(self, symbols=None, start=None, end=None) -> pd.DataFrame:
        """Every gap of every symbol, with its cause: symbol, start, end, missing, cause.

        `start`/`end` are the open times of the first and last missing (or, for `halt`, flat)
        bar. Causes: missing_file, partial_file, outage, halt, relisting (see
        cryptolake.quality). Kline tables only.
        """
        from . import quality
        step = self._step()
        if step is None:
            raise ValueError(f"gaps() needs a fixed bar size; {self.name} has none")
        t = self.read_arrow(symbols, start, end, columns=[self.time_col])
        step_us = step.value // 1000
        runs = gap_runs(*_symbols_times(t, self.time_col), step_us)
        spans = quality.file_spans(self.bronze.symbol_rows_all(self.name)) if self.bronze else {}
        parts = [quality.classify(runs, spans, step_us)]
        if self.data_type == "klines":   # halts: only zero-volume rows can be part of one
            cols = [self.time_col, "open", "high", "low", "close", "volume"]
            z = self.read_arrow(symbols, start, end, columns=cols, where=ds.field("volume") == 0)
            parts.append(quality.halts(*_symbols_times(z, self.time_col),
                                       *(z[c].to_numpy() for c in cols[1:]), step_us))
        out = pd.concat([p for p in parts if len(p)] or parts, ignore_index=True)
        return out.sort_values(["symbol", "start"], ignore_index=True)


def _symbols_times(t: pa.Table, time_col: str) -> tuple[np.ndarray, np.ndarray]:
    return (t["symbol"].to_numpy(zero_copy_only=False).astype(str),
            t[time_col].to_numpy().astype("datetime64[us]").astype(np.int64))


def _funding_expected(ts_us: np.ndarray, hours: np.ndarray) -> int:
    if len(ts_us) < 2:
        return len(ts_us)
    h = np.where(np.isnan(hours.astype(float)), 8.0, hours.astype(float))[:-1]
    steps = np.rint(np.diff(ts_us) / (h * 3.6e9)).astype(np.int64)
    return int(1 + np.maximum(steps, 1).sum())


def gap_runs(symbols: np.ndarray, times_us: np.ndarray, step_us: int) -> pd.DataFrame:
    """Missing-bar runs between consecutive rows of each symbol (rows sorted by symbol, time)."""
    d = np.diff(times_us)
    same = symbols[1:] == symbols[:-1]
    idx = np.flatnonzero(same & (d > step_us))
    start = times_us[idx] + step_us
    end = times_us[idx + 1] - step_us
    missing = (times_us[idx + 1] - times_us[idx]) // step_us - 1
    return pd.DataFrame({
        "symbol": symbols[idx + 1] if len(idx) else np.array([], dtype=str),
        "start": pd.to_datetime(start, unit="us", utc=True),
        "end": pd.to_datetime(end, unit="us", utc=True),
        "missing": missing.astype(np.int64),
    })


class Layer:
    """`lake.silver` / `lake.gold`: tables by name, by attribute, in SQL."""

    def __init__(self, storage: Storage, layer: str, bronze=None):
        self.storage, self.layer, self.bronze = storage, layer, bronze

    @property
    def tables(self) -> list[str]:
        names = []
        for p in self.storage.ls(self.layer):
            name = p.rstrip("/").rsplit("/", 1)[-1]
            try:
                schema.parse_table_name(name)
            except ValueError:
                continue
            names.append(name)
        return sorted(names)

    def __getitem__(self, name: str) -> Table:
        if name not in self.tables:
            raise KeyError(f"no table {name!r} in {self.layer}; tables: {self.tables or 'none yet'} "
                           "(create one with lake.ingest(market, data_type, ...))")
        return Table(self.storage, self.layer, name, self.bronze)

    def __getattr__(self, name: str) -> Table:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __dir__(self) -> Iterable[str]:
        return sorted(set(super().__dir__()) | set(self.tables))

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def __iter__(self):
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def __repr__(self) -> str:
        return f"<{self.layer}: {', '.join(self.tables) or 'no tables'}>"

    def _repr_html_(self) -> str:
        rows = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in self.tables)
        return (f"<b>{self.layer}</b> — {len(self.tables)} tables<ul>{rows}</ul>"
                f"next: <code>lake.{self.layer}['NAME'].coverage()</code>")
