"""The widget behind `cl.explore(lake)` (see `cryptolake.explore`); kept apart so that
`import cryptolake` does not import ipywidgets and matplotlib."""
from __future__ import annotations

import contextlib
import datetime as dt
import html
import io
import logging
import time

import ipywidgets as widgets
import pandas as pd

from .explore import (COLUMNS, DEFAULT_DAYS, MAX_BARS, RULES, _bar_size, _indicator_names,
                      _kline_tables, _label, choose_rule)
from .plot import GAP_COLORS, plot_ohlcv

log = logging.getLogger("cryptolake.explore")


class Explorer(widgets.VBox):
    """The panel `explore` returns. Widgets: `table`, `symbol`, `start`, `end`, `rule`,
    `indicators`, `chart` (PNG image), `info` (HTML), `message` (HTML). After each redraw:
    `figure` (matplotlib Figure or None), `frame` (the bars drawn), `gaps` (gaps in the
    selection), `drawn_rule`, `last_redraw_seconds`, `redraws` (how many so far)."""

    def __init__(self, lake, *, table=None, symbol=None, start=None, end=None, rule="raw",
                 indicators=()):
        self.lake = lake
        self.figure = self.frame = self.gaps = None
        self.drawn_rule = None
        self.last_redraw_seconds = None
        self.redraws = 0
        self._holding = False
        self._facts: dict[tuple[str, str], tuple[dt.date, dt.date, pd.DataFrame]] = {}
        tables = _kline_tables(lake)
        names = _indicator_names()
        self._check("table", table, tables)
        self._check("rule", rule, RULES)
        for name in ([indicators] if isinstance(indicators, str) else list(indicators)):
            self._check("indicator", name, names)
        self.table = widgets.Dropdown(options=tables, description="table")
        self.symbol = widgets.Dropdown(options=[], description="symbol")
        self.start = widgets.DatePicker(description="from")
        self.end = widgets.DatePicker(description="to")
        self.rule = widgets.Dropdown(options=list(RULES), value=rule, description="resample")
        self.indicators = widgets.SelectMultiple(
            options=names, value=[indicators] if isinstance(indicators, str) else list(indicators),
            rows=7, description="indicators")
        self.chart = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
        self.chart.add_class("cryptolake-chart")
        self.info = widgets.HTML()
        self.message = widgets.HTML()
        controls = widgets.VBox([widgets.HBox([self.table, self.symbol, self.rule]),
                                 widgets.HBox([self.start, self.end])])
        super().__init__([widgets.HBox([controls, self.indicators]), self.message, self.chart,
                          self.info])
        self.add_class("cryptolake-explorer")
        if not tables:
            others = ", ".join(lake.silver.tables) or "none"
            self._show_message(
                "This lake has no kline tables to chart yet (silver tables: "
                f"{html.escape(others)}). Ingest some first, e.g. "
                "<code>lake.ingest('um', 'klines', ['BTCUSDT'], interval='1m', "
                "start='2024-01-01')</code>, then call <code>cl.explore(lake)</code> again.")
            for w in (self.table, self.symbol, self.start, self.end, self.rule, self.indicators):
                w.disabled = True
            return
        with self._hold():
            self.table.value = table or tables[0]
            self._table_changed(symbol=symbol, start=start, end=end)
        self.table.observe(lambda _: self._on(self._table_changed), "value")
        self.symbol.observe(lambda _: self._on(self._symbol_changed), "value")
        for w in (self.start, self.end, self.rule, self.indicators):
            w.observe(lambda _: self._on(None), "value")
        self.redraw()

    # ------------------------------------------------------------ plumbing
    @staticmethod
    def _check(what, value, allowed) -> None:
        if value is not None and value not in allowed:
            raise ValueError(f"unknown {what} {value!r}; allowed: {list(allowed)}")

    @contextlib.contextmanager
    def _hold(self):
        """Within: widget changes made by the panel itself do not redraw."""
        prev, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = prev

    def _on(self, update) -> None:
        if self._holding:
            return
        if update is not None:
            with self._hold():
                update()
        self.redraw()

    def _show_message(self, text: str) -> None:
        self.message.value = f"<div style='color:#b71c1c'>{text}</div>" if text else ""

    # ------------------------------------------------------------ cascades
    def _symbol_facts(self, table: str, symbol: str) -> tuple[dt.date, dt.date, pd.DataFrame]:
        """First day, last day and every gap of a symbol, read once per panel (one column of
        that symbol, and `Table.gaps` for it): a selection inside a long gap still shows it."""
        key = (table, symbol)
        if key not in self._facts:
            t = self.lake.silver[table]
            idx = t.read(symbol, columns=["close"]).index
            if len(idx) == 0:
                raise ValueError(f"{symbol} has no rows in {table}")
            self._facts[key] = (idx[0].date(), idx[-1].date(), t.gaps(symbols=[symbol]))
        return self._facts[key]

    def _table_changed(self, symbol=None, start=None, end=None) -> None:
        symbols = self.lake.silver[self.table.value].symbols
        self._check("symbol", symbol, symbols)
        keep = self.symbol.value if self.symbol.value in symbols else None
        self.symbol.options = symbols
        self.symbol.value = symbol or keep or (symbols[0] if symbols else None)
        self._symbol_changed(start, end)

    def _symbol_changed(self, start=None, end=None) -> None:
        if self.symbol.value is None:
            return
        first, last, _ = self._symbol_facts(self.table.value, self.symbol.value)
        old = (self.start.value, self.end.value)
        if start is not None or end is not None:
            s = pd.Timestamp(start).date() if start is not None else first
            e = pd.Timestamp(end).date() if end is not None else last
        elif old[0] and old[1] and old[0] <= last and old[1] >= first:
            s, e = max(old[0], first), min(old[1], last)        # keep the window when it overlaps
        else:
            s, e = max(first, last - dt.timedelta(days=DEFAULT_DAYS - 1)), last
        for w in (self.start, self.end):
            w.min = w.max = None
        self.start.value, self.end.value = s, e
        for w in (self.start, self.end):
            w.min, w.max = first, last

    # ------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Read the selected range, resample if needed, draw; errors go to the message line."""
        t0 = time.perf_counter()
        try:
            self._show_message("")
            self._draw()
        except Exception as e:  # noqa: BLE001 - a widget callback must not raise into the kernel
            log.exception("explore redraw failed")
            self.figure = self.frame = self.drawn_rule = None
            self._show_message(f"could not draw: {html.escape(f'{type(e).__name__}: {e}')}")
        self.last_redraw_seconds = time.perf_counter() - t0
        self.redraws += 1
        log.debug("explore redraw %s %s %s..%s rule=%s drawn=%s: %.3f s", self.table.value,
                  self.symbol.value, self.start.value, self.end.value, self.rule.value,
                  self.drawn_rule, self.last_redraw_seconds)

    def _draw(self) -> None:
        name, sym, s, e = self.table.value, self.symbol.value, self.start.value, self.end.value
        if sym is None or s is None or e is None:
            raise ValueError("pick a table, a symbol and both dates")
        if s > e:
            self.figure = self.frame = self.drawn_rule = None
            self.chart.value = b""
            self.info.value = ""
            self._show_message(f"the start {s} is after the end {e}; pick a start on or before the end")
            return
        table = self.lake.silver[name]
        raw = table.read(sym, start=s.isoformat(), end=e.isoformat(), columns=COLUMNS)
        lo = pd.Timestamp(s, tz="UTC")
        hi = pd.Timestamp(e, tz="UTC") + pd.Timedelta(days=1)
        gaps = self._symbol_facts(name, sym)[2]
        gaps = gaps[(gaps["end"] >= lo) & (gaps["start"] < hi)].reset_index(drop=True)
        self.gaps = gaps
        bar = _bar_size(name, raw.index)
        if raw.empty:
            self.figure = self.frame = self.drawn_rule = None
            self.chart.value = b""
            self.info.value = self._info_html(raw, gaps, bar, "raw", "")
            self._show_message(f"{html.escape(sym)} has no rows in {html.escape(name)} "
                               f"from {s} to {e}")
            return
        span = raw.index[-1] - raw.index[0]
        rule, note = choose_rule(self.rule.value, len(raw), span, bar)
        bars, note = self._resample(raw, rule, note)
        drawn = _label(bar) if rule == "raw" and bar is not None else rule
        auto = " (auto)" if note.startswith("auto") else ""
        title = f"{name} {sym} {drawn}{auto}, {s} .. {e} UTC, {len(bars):,} bars"
        fig = plot_ohlcv(bars, list(self.indicators.value), max_candles=2 * MAX_BARS,
                         title=title, figsize=(11, 6.5), gaps=gaps)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        self.figure, self.frame, self.drawn_rule = fig, bars, rule
        self.chart.value = buf.getvalue()
        self.info.value = self._info_html(raw, gaps, bar, rule, note)

    @staticmethod
    def _resample(raw: pd.DataFrame, rule: str, note: str) -> tuple[pd.DataFrame, str]:
        if rule == "raw":
            return raw, note
        try:
            return raw.lake.resample(rule), note
        except ValueError:
            if rule != "W":
                raise
        # a df.lake without calendar rules: weeks as fixed 7-day bins
        return raw.lake.resample("7D"), (note + "; " if note else "") + "W drawn as 7D bins"

    def _missing_in_selection(self, gaps: pd.DataFrame, bar: pd.Timedelta) -> int:
        """Bars of the non-halt gaps (halts are present, flat bars) inside the selection."""
        lo = pd.Timestamp(self.start.value, tz="UTC")
        hi = pd.Timestamp(self.end.value, tz="UTC") + pd.Timedelta(days=1) - bar
        absent = gaps[gaps["cause"] != "halt"]
        a = absent["start"].clip(lower=lo)
        b = absent["end"].clip(upper=hi)
        n = ((b - a) // bar + 1).clip(lower=0)
        return int(n.sum()) if len(n) else 0

    def _info_html(self, raw: pd.DataFrame, gaps: pd.DataFrame, bar, rule: str, note: str) -> str:
        name, sym = self.table.value, self.symbol.value
        first, last, _ = self._symbol_facts(name, sym)
        rows = len(raw)
        lines = [f"<b>{html.escape(name)} · {html.escape(sym)}</b> — symbol has data "
                 f"{first} .. {last}; selection {self.start.value} .. {self.end.value} (UTC, inclusive)"]
        if bar is not None:
            missing = self._missing_in_selection(gaps, bar)
            expected = rows + missing
            zero = int((raw["volume"] == 0).sum()) if "volume" in raw else 0
            share = f" ({100 * rows / expected:.2f}%)" if expected else ""
            lines.append(f"coverage: {rows:,} of {expected:,} bars{share}, {missing:,} missing "
                         f"(bars in the selection inside the symbol's history); {zero:,} "
                         f"zero-volume bars; bar {_label(bar)}")
        else:
            lines.append(f"coverage: {rows:,} rows in the selection")
        lines.append(f"drawn: {rule}" + (f" — {html.escape(note)}" if note else ""))
        if gaps.empty:
            lines.append("gaps: none overlapping the selection")
        else:
            by = gaps.groupby("cause")["missing"].agg(["count", "sum"])
            parts = [f"<span style='color:{GAP_COLORS.get(c, '#9e9e9e')}'>■</span> "
                     f"{html.escape(str(c))}: {int(r['count'])} gaps, {int(r['sum']):,} bars"
                     for c, r in by.iterrows()]
            lines.append("gaps: " + "; ".join(parts))
            shown = gaps[["start", "end", "missing", "cause"]].head(15)
            table = ("<style>.cryptolake-gaps td, .cryptolake-gaps th {padding: 1px 10px}</style>"
                     + shown.to_html(index=False, border=0, classes="cryptolake-gaps"))
            more = f"<br>… {len(gaps) - 15} more" if len(gaps) > 15 else ""
            lines.append(table + more)
        return "<br>".join(lines)
