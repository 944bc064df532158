"""Archive-format files for the non-kline data types: aggTrades, trades, metrics, bookDepth,
bookTicker, liquidationSnapshot (the ArchiveBuilder's methods of the same names call these).

Each ``render_*`` returns an :class:`~cryptolake.testing.archive.ArchiveFile` whose CSV follows
docs/binance-archive.md §3-§5: headers per market and date (spot never; futures aggTrades and
trades from 2022-08-11; metrics, bookDepth, bookTicker, liquidationSnapshot always), booleans
per market (spot ``True``/``False``, futures ``true``/``false``), spot times in µs for files
dated 2025-01-01 and later, date-string times in metrics/bookDepth, quoted empty ratio fields
in metrics, doubled and shuffled/interleaved rows on request.

The expected silver frame is computed here from the generated values, never by the parser:
rows unique by construction, sorted by time then key with pandas, floats taken as Python's
``float()`` of the exact decimal string written (the correctly rounded double).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

import numpy as np
import pandas as pd

from cryptolake import schema
from cryptolake.layout import ArchiveKey
from cryptolake.testing.archive import (_CM_CONTRACT_USD, _START_PRICE, ArchiveFile, _base,
                                        _csv_bytes, _dec, _period_bounds, _source, _utc_us,
                                        _written_order, realistic_header, realistic_unit,
                                        zip_csv)

__all__ = ["render_agg_trades", "render_trades", "render_metrics", "render_book_depth",
           "render_book_ticker", "render_liquidation_snapshot"]

# price decimals / quantity decimals, per market, for trade-like files
_PX = {"spot": 8, "um": 2, "cm": 1}
_QTY = {"spot": 8, "um": 3, "cm": 0}
_TICK = {"spot": 10**6, "um": 10, "cm": 1}          # price tick in 10**-_PX units


# ---------------------------------------------------------------- shared helpers
def _setup(market: str, data_type: str, symbol: str, period: str, cadence: str | None):
    """(key, first day, start µs, end µs, rng) after validating the request."""
    cadence = cadence or ("daily" if len(period) == 10 else "monthly")
    schema.validate_request(market, data_type, ingestible_only=False)
    allowed = schema.DATA_TYPES[market][data_type]
    if cadence[0] not in allowed:
        have = " and ".join({"d": "daily", "m": "monthly"}[c] for c in allowed)
        raise ValueError(f"{market} {data_type} has only {have} files, not {cadence}")
    if len(period) != (10 if cadence == "daily" else 7):
        raise ValueError(f"a {cadence} {data_type} file needs a period like "
                         f"{'2024-01-31' if cadence == 'daily' else '2024-01'}, got {period!r}")
    key = ArchiveKey(market, cadence, data_type, symbol, None, period)
    first_day, start_ms, end_ms = _period_bounds(cadence, period)
    return key, first_day, start_ms * 1000, end_ms * 1000


def _rng(seed: int, *parts: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *"|".join(parts).encode()]))


def _bool(values: np.ndarray, market: str) -> list[str]:
    t, f = ("True", "False") if market == "spot" else ("true", "false")
    return [t if v else f for v in values.tolist()]


def _floats(strings: list[str]) -> np.ndarray:
    """What a correct decimal parser returns: the correctly rounded double of each string."""
    return np.array([float(s) if s not in ("", '""') else np.nan for s in strings], dtype=np.float64)


def _times(rng, start_us: int, end_us: int, n: int, unit: str) -> np.ndarray:
    """n sorted epoch times in [start, end): µs with sub-ms digits, or whole ms (as µs)."""
    t = np.sort(rng.integers(start_us, end_us, n, dtype=np.int64))
    return t if unit == "us" else t // 1000 * 1000


def _render_times(t_us: np.ndarray, unit: str) -> list[str]:
    return [str(v) for v in (t_us if unit == "us" else t_us // 1000).tolist()]


def _date_strings(t_us: np.ndarray) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS`` (UTC, naive, as the archive writes them)."""
    return [v.replace("T", " ") for v in t_us.astype("datetime64[us]").astype("datetime64[s]")
            .astype(str).tolist()]


def _order(n: int, duplicates, shuffle: bool, interleave: int, rng) -> np.ndarray:
    """Written row order: ``duplicates`` rows doubled (adjacent; "all" doubles every row),
    optionally shuffled, and ``interleave`` rows moved far earlier (the archive's
    interleaved monthly aggTrades)."""
    if duplicates == "all":
        order = np.repeat(np.arange(n, dtype=np.int64), 2)
        if shuffle:
            rng.shuffle(order)
    else:
        order = _written_order(n, int(duplicates), shuffle, rng)
    if interleave and len(order) > 2:
        order = order.tolist()
        for _ in range(interleave):
            src = int(rng.integers(len(order) // 2, len(order)))
            order.insert(int(rng.integers(0, len(order) // 2)), order.pop(src))
        order = np.array(order, dtype=np.int64)
    return order


def _frame(market: str, data_type: str, cols: dict, source: str) -> pd.DataFrame:
    """A DataFrame with the silver schema's names and pandas dtypes, sorted by
    ``(time_column, *natural_key)`` (stable)."""
    sch = schema.silver_schema(market, data_type)
    out = {}
    for f in sch:
        if f.name == "source":
            continue
        v = cols[f.name]
        if f.type == schema.TS:
            out[f.name] = _utc_us(v)
        elif f.type == "string":
            out[f.name] = pd.array(list(v), dtype="str")
        elif f.type == "bool":
            out[f.name] = np.asarray(v, dtype=bool)
        elif f.type == "int64":
            out[f.name] = np.asarray(v, dtype=np.int64)
        else:
            out[f.name] = np.asarray(v, dtype=np.float64)
    n = len(next(iter(out.values()))) if out else 0
    out["source"] = pd.array([source] * n, dtype="str")
    df = pd.DataFrame(out)
    tcol = schema.time_column(data_type)
    by = list(dict.fromkeys([tcol, *schema.natural_key(data_type)]))
    return df.sort_values(by, kind="mergesort", ignore_index=True)


def _file(key: ArchiveKey, header_cols, cols: list[list[str]], order, frame, header: bool,
          unit: str, when: dt.datetime | None) -> ArchiveFile:
    csv = _csv_bytes(tuple(header_cols) if header else None, cols, order)
    when = when or dt.datetime.combine(key.last_day + dt.timedelta(days=1), dt.time(6, 13))
    return ArchiveFile(key, csv, zip_csv(csv, key.filename[:-4] + ".csv", when), frame, header,
                       unit, len(order))


def _price_path(rng, symbol: str, market: str, n: int) -> np.ndarray:
    """A random walk of prices in integer units of 10**-_PX[market], on the market's tick."""
    tick = _TICK[market]
    p0 = max(int(round(_START_PRICE.get(_base(symbol), 100.0) * 10**_PX[market] / tick)), 1000)
    steps = rng.choice([-1, 0, 0, 0, 1], size=n)
    return np.maximum(p0 + np.cumsum(steps), 1).astype(np.int64) * tick


def _quantities(rng, market: str, n: int) -> np.ndarray:
    """Quantities in units of 10**-_QTY (cm: whole contracts)."""
    if market == "cm":
        return np.maximum(np.round(rng.lognormal(1.5, 1.2, n)), 1).astype(np.int64)
    lot = 10**3 if market == "spot" else 1
    return (np.maximum(np.round(rng.lognormal(np.log(50), 1.5, n)), 1).astype(np.int64) * lot)


def _header_unit(market, data_type, key, first_day, header, unit):
    header = realistic_header(market, data_type, key.cadence, first_day) if header is None else header
    unit = realistic_unit(market, first_day) if unit is None else unit
    if unit not in ("ms", "us"):
        raise ValueError(f"unit must be 'ms' or 'us', got {unit!r}")
    return header, unit


# ---------------------------------------------------------------- trades
def render_agg_trades(market: str, symbol: str, period: str, cadence: str | None = None, *,
                      rows: int = 2000, header: bool | None = None, unit: str | None = None,
                      duplicates=0, shuffle: bool = False, interleave: int = 0, seed: int = 0,
                      first_id: int | None = None, when: dt.datetime | None = None) -> ArchiveFile:
    """One aggTrades file: consecutive agg ids, contiguous first/last trade ids, times
    increasing with the id (several trades may share an instant)."""
    key, first_day, s_us, e_us = _setup(market, "aggTrades", symbol, period, cadence)
    header, unit = _header_unit(market, "aggTrades", key, first_day, header, unit)
    rng = _rng(seed, market, "aggTrades", symbol, period)
    ids = (first_id if first_id is not None else int(rng.integers(10**8, 10**9))) + np.arange(rows)
    t = _times(rng, s_us, e_us, rows, unit)
    price, qty = _price_path(rng, symbol, market, rows), _quantities(rng, market, rows)
    per = rng.geometric(0.5, rows).astype(np.int64)
    first_trade = int(rng.integers(10**9, 2 * 10**9)) + np.r_[0, np.cumsum(per)[:-1]]
    last_trade = first_trade + per - 1
    maker = rng.uniform(0, 1, rows) < 0.5
    qd = _QTY[market]
    qty_s = [f"{q}.0" for q in qty.tolist()] if market == "cm" else _dec(qty, qd)
    cols = [[str(v) for v in ids.tolist()], _dec(price, _PX[market]), qty_s,
            [str(v) for v in first_trade.tolist()], [str(v) for v in last_trade.tolist()],
            _render_times(t, unit), _bool(maker, market)]
    values = {"agg_trade_id": ids, "price": _floats(cols[1]), "quantity": _floats(cols[2]),
              "first_trade_id": first_trade, "last_trade_id": last_trade, "transact_time": t,
              "is_buyer_maker": maker}
    if market == "spot":
        best = np.ones(rows, dtype=bool)                       # "reserved", always True
        cols.append(_bool(best, market))
        values["is_best_match"] = best
    order = _order(rows, duplicates, shuffle, interleave, rng)
    frame = _frame(market, "aggTrades", values, _source(key.cadence))
    names = [n for n in schema.agg_trades_schema(market).names if n != "source"]
    return _file(key, names, cols, order, frame, header, unit, when)


def render_trades(market: str, symbol: str, period: str, cadence: str | None = None, *,
                  rows: int = 2000, header: bool | None = None, unit: str | None = None,
                  duplicates=0, shuffle: bool = False, interleave: int = 0, seed: int = 0,
                  first_id: int | None = None, when: dt.datetime | None = None) -> ArchiveFile:
    """One trades file: consecutive ids; spot ``quoteQty`` rounded to 8 decimals, um
    ``quote_qty`` the exact product, cm ``base_qty`` = contracts x contract size / price
    (8 decimals) with ``qty`` in contracts."""
    key, first_day, s_us, e_us = _setup(market, "trades", symbol, period, cadence)
    header, unit = _header_unit(market, "trades", key, first_day, header, unit)
    rng = _rng(seed, market, "trades", symbol, period)
    ids = (first_id if first_id is not None else int(rng.integers(10**8, 5 * 10**9))) + np.arange(rows)
    t = _times(rng, s_us, e_us, rows, unit)
    price, qty = _price_path(rng, symbol, market, rows), _quantities(rng, market, rows)
    pd_, qd = _PX[market], _QTY[market]
    if market == "spot":
        value = (price * qty + 5 * 10**7) // 10**8                # 8 decimals, rounded
        value_s = _dec(value, 8)
    elif market == "um":
        value_s = _dec(price * qty, pd_ + qd)                     # exact product
    else:
        contract = _CM_CONTRACT_USD.get(_base(symbol), 10)
        value_s = _dec(qty * contract * 10**(8 + pd_) // price, 8)
    maker = rng.uniform(0, 1, rows) < 0.5
    qty_s = [f"{q}.0" for q in qty.tolist()] if market == "cm" else _dec(qty, qd)
    cols = [[str(v) for v in ids.tolist()], _dec(price, pd_), qty_s, value_s,
            _render_times(t, unit), _bool(maker, market)]
    vname = "base_qty" if market == "cm" else "quote_qty"
    values = {"id": ids, "price": _floats(cols[1]), "qty": _floats(cols[2]),
              vname: _floats(value_s), "time": t, "is_buyer_maker": maker}
    if market == "spot":
        best = np.ones(rows, dtype=bool)
        cols.append(_bool(best, market))
        values["is_best_match"] = best
    order = _order(rows, duplicates, shuffle, interleave, rng)
    frame = _frame(market, "trades", values, _source(key.cadence))
    names = [n for n in schema.trades_schema(market).names if n != "source"]
    return _file(key, names, cols, order, frame, header, unit, when)


# ---------------------------------------------------------------- futures-only types
def render_metrics(market: str, symbol: str, day: str, *, header: bool = True,
                   missing: Iterable[int] = (), empty: Iterable[int] = (),
                   long_decimals: bool | None = None, shift: bool = False, duplicates=0,
                   shuffle: bool = False, seed: int = 0,
                   when: dt.datetime | None = None) -> ArchiveFile:
    """One daily metrics file: 288 five-minute rows with ``create_time`` as a
    ``YYYY-MM-DD HH:MM:SS`` string. ``missing``: slot indices not written; ``empty``: slot
    indices whose three long/short ratio fields are written as ``""`` (expected null);
    ``long_decimals``: ratios with 16 decimals (default: for days 2021-12-01..2023-07-31);
    ``shift``: slots run 00:05 -> next day 00:00 (BTCUSDT-metrics-2025-12-31);
    ``duplicates="all"`` doubles every row (2020-09..2021-05 files)."""
    key, first_day, s_us, _ = _setup(market, "metrics", symbol, day, "daily")
    rng = _rng(seed, market, "metrics", symbol, day)
    if long_decimals is None:
        long_decimals = dt.date(2021, 12, 1) <= first_day <= dt.date(2023, 7, 31)
    slot = 300_000_000
    t_all = s_us + (np.arange(288) + (1 if shift else 0)) * slot
    keep = np.ones(288, dtype=bool)
    keep[list(missing)] = False
    blank = np.zeros(288, dtype=bool)
    blank[list(empty)] = True
    sel = np.flatnonzero(keep)
    n = len(sel)
    oi = np.round(rng.uniform(5e4, 2e5) * 1000 + np.cumsum(rng.normal(0, 300_000, 288))).astype(np.int64)
    px = rng.uniform(20_000, 80_000)
    oi_s = [s + "0" * 13 for s in _dec(oi[sel], 3)]                    # 16 decimals, padded
    val = np.round(oi[sel] * px * 10).astype(np.int64)                 # 4 decimals -> padded
    val_s = [s + "0" * 12 for s in _dec(val, 4)]
    rd = 16 if long_decimals else 8
    ratios = [np.round(rng.uniform(0.5, 3.0, n) * 10**8).astype(np.int64) * 10**(rd - 8)
              + (rng.integers(0, 10**(rd - 8), n) if rd > 8 else 0) for _ in range(4)]
    ratio_s = [_dec(r, rd) for r in ratios]
    for j in range(3):
        ratio_s[j] = ['""' if blank[i] else s for i, s in zip(sel, ratio_s[j])]
    cols = [_date_strings(t_all[sel]), [symbol] * n, oi_s, val_s, *ratio_s]
    names = ["create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
             "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
             "count_long_short_ratio", "sum_taker_long_short_vol_ratio"]
    values = {"create_time": t_all[sel]}
    values.update({nm: _floats(c) for nm, c in zip(names[2:], cols[2:])})
    order = _order(n, duplicates, shuffle, 0, rng)
    frame = _frame(market, "metrics", values, "archive_daily")
    return _file(key, names, cols, order, frame, header, "date", when)


_LEVELS = np.array([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5], dtype=np.int64)


def render_book_depth(market: str, symbol: str, day: str, *, snapshots: int = 200,
                      header: bool = True, duplicates=0, shuffle: bool = False, seed: int = 0,
                      when: dt.datetime | None = None) -> ArchiveFile:
    """One daily bookDepth file: ``snapshots`` instants (whole seconds, irregular), each with
    ten rows at percentages -5..-1, 1..5 (cumulative depth in coin, notional in quote)."""
    key, _, s_us, e_us = _setup(market, "bookDepth", symbol, day, "daily")
    rng = _rng(seed, market, "bookDepth", symbol, day)
    secs = np.sort(rng.choice((e_us - s_us) // 1_000_000, snapshots, replace=False))
    t = s_us + secs.astype(np.int64) * 1_000_000
    tt = np.repeat(t, len(_LEVELS))
    pct = np.tile(_LEVELS, snapshots)
    px = _START_PRICE.get(_base(symbol), 100.0)
    depth = np.round(np.abs(pct) * rng.uniform(200, 2000, len(pct)) * 10**8 / px * 1000).astype(np.int64)
    notional = np.round(depth * px).astype(np.int64)
    cols = [_date_strings(tt), [str(v) for v in pct.tolist()], _dec(depth, 8), _dec(notional, 8)]
    values = {"timestamp": tt, "percentage": pct.astype(np.float64),
              "depth": _floats(cols[2]), "notional": _floats(cols[3])}
    order = _order(len(tt), duplicates, shuffle, 0, rng)
    frame = _frame(market, "bookDepth", values, "archive_daily")
    return _file(key, ["timestamp", "percentage", "depth", "notional"], cols, order, frame,
                 header, "date", when)


def render_book_ticker(market: str, symbol: str, period: str, cadence: str | None = None, *,
                       rows: int = 2000, header: bool = True, duplicates=0,
                       shuffle: bool = False, seed: int = 0,
                       when: dt.datetime | None = None) -> ArchiveFile:
    """One bookTicker file: increasing ``update_id`` (with gaps), best bid/ask one tick
    apart or more, ``event_time`` a few ms after ``transaction_time`` (both ms)."""
    key, _, s_us, e_us = _setup(market, "bookTicker", symbol, period, cadence)
    rng = _rng(seed, market, "bookTicker", symbol, period)
    ids = int(rng.integers(10**12, 5 * 10**12)) + np.cumsum(rng.integers(1, 50, rows))
    t = _times(rng, s_us, e_us, rows, "ms")
    bid = _price_path(rng, symbol, market, rows)
    ask = bid + _TICK[market] * rng.integers(1, 3, rows)
    pd_ = 8                                                    # bookTicker prints 8 decimals
    scale = 10**(pd_ - _PX[market])
    bq, aq = (rng.integers(1, 10**6, rows) * 10**5 for _ in range(2))
    ev = t + rng.integers(0, 12, rows) * 1000
    cols = [[str(v) for v in ids.tolist()], _dec(bid * scale, pd_), _dec(bq, 8),
            _dec(ask * scale, pd_), _dec(aq, 8), _render_times(t, "ms"), _render_times(ev, "ms")]
    values = {"update_id": ids, "best_bid_price": _floats(cols[1]), "best_bid_qty": _floats(cols[2]),
              "best_ask_price": _floats(cols[3]), "best_ask_qty": _floats(cols[4]),
              "transaction_time": t, "event_time": ev}
    order = _order(rows, duplicates, shuffle, 0, rng)
    frame = _frame(market, "bookTicker", values, _source(key.cadence))
    names = [n for n in schema.BOOK_TICKER_SCHEMA.names if n != "source"]
    return _file(key, names, cols, order, frame, header, "ms", when)


def render_liquidation_snapshot(market: str, symbol: str, day: str, *, rows: int = 300,
                                same_instant: int = 10, header: bool = True, duplicates=0,
                                shuffle: bool = False, seed: int = 0,
                                when: dt.datetime | None = None) -> ArchiveFile:
    """One daily liquidationSnapshot file (COIN-M): ``rows`` distinct liquidations, of which
    ``same_instant`` share their millisecond with the previous one (told apart by their
    fields); ``duplicates`` rows doubled like the archive's."""
    key, _, s_us, e_us = _setup(market, "liquidationSnapshot", symbol, day, "daily")
    rng = _rng(seed, market, "liquidationSnapshot", symbol, day)
    t = _times(rng, s_us, e_us, rows, "ms")
    for i in np.sort(rng.choice(np.arange(1, rows), min(same_instant, rows - 1), replace=False)):
        t[i] = t[i - 1]
    t = np.sort(t)
    side = np.where(rng.uniform(0, 1, rows) < 0.5, "BUY", "SELL")
    status = np.where(rng.uniform(0, 1, rows) < 0.9, "FILLED", "PARTIALLY_FILLED")
    orig = rng.integers(1, 500, rows)
    acc = np.where(status == "FILLED", orig, np.maximum(orig // 2, 1))
    last = np.minimum(rng.integers(1, 50, rows), acc)
    price = _price_path(rng, symbol, "cm", rows) + rng.integers(-300, 300, rows)
    avg = price - rng.integers(0, 200, rows) * np.where(side == "BUY", 1, -1)
    cols = [_render_times(t, "ms"), side.tolist(), ["LIMIT"] * rows, ["IOC"] * rows,
            [str(v) for v in orig.tolist()], _dec(price, 1), _dec(avg, 1), status.tolist(),
            [str(v) for v in last.tolist()], [str(v) for v in acc.tolist()]]
    names = [n for n in schema.LIQUIDATION_SNAPSHOT_SCHEMA.names if n != "source"]
    values = dict(zip(names, [t, side, cols[2], cols[3], orig, _floats(cols[5]), _floats(cols[6]),
                              status, last, acc]))
    order = _order(rows, duplicates, shuffle, 0, rng)
    frame = _frame(market, "liquidationSnapshot", values, "archive_daily")
    if frame.duplicated(subset=names).any():                   # vanishingly rare; keep unique
        raise AssertionError("generated liquidations are not unique; change the seed")
    return _file(key, names, cols, order, frame, header, "ms", when)
