"""Which symbols traded when: the point-in-time universe, free of survivorship bias.

Built from the archive listing (which keeps delisted symbols and moves settled contracts to
`…SETTLED` directories) plus the files the lake already holds — never from `exchangeInfo`,
which forgets delisted symbols. A symbol's history is the set of days its files cover; a
silence of at least `quality.RELISTING_DAYS` splits it into trading segments (a relisting,
or a reused name such as LUNA).
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt

import pandas as pd

from .layout import KLINE_TYPES, parse_archive_key
from .quality import RELISTING_DAYS
from .schema import _as_date, validate_request

STALE_DAYS = 7            # daily files can stall for days: younger than this still trades
UNIVERSE_COLUMNS = ["symbol", "first_day", "last_day", "segments", "n_segments", "status"]


def _days(key) -> list[dt.date]:
    d, out = key.first_day, []
    while d <= key.last_day:
        out.append(d)
        d += dt.timedelta(days=1)
    return out


def covered_days(keys) -> set[dt.date]:
    """Days covered by archive files: every daily file's day, and the days of monthly files
    whose month has no daily file at all (a monthly file says little about which days)."""
    keys = list(keys)
    daily = {k.first_day for k in keys if k.cadence == "daily"}
    months_with_daily = {d.strftime("%Y-%m") for d in daily}
    out = set(daily)
    for k in keys:
        if k.cadence == "monthly" and k.period not in months_with_daily:
            out.update(_days(k))
    return out


def segments(days: set[dt.date], gap_days: int = RELISTING_DAYS) -> list[tuple[dt.date, dt.date]]:
    """Sorted days -> [(first, last)] trading segments split at silences >= `gap_days`."""
    out: list[list[dt.date]] = []
    for d in sorted(days):
        if out and (d - out[-1][1]).days < gap_days:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]


def status(symbol: str, last: dt.date | None, today: dt.date) -> str:
    if symbol.endswith("SETTLED"):
        return "settled"
    if last is not None and (today - last).days <= STALE_DAYS:
        return "trading"
    return "delisted"


def _interval_for(archive, market: str, data_type: str, symbol: str) -> str | None:
    """The kline interval to read a symbol's history from: 1d when listed, else the coarsest
    interval directory it has (fewest files to list)."""
    from .layout import type_dir
    from .schema import INTERVALS
    found = set()
    for cad in ("daily", "monthly"):
        found |= archive._dirnames(f"{type_dir(market, cad, data_type)}/{symbol}")
    ranked = [i for i in INTERVALS if i in found]
    if "1d" in ranked:
        return "1d"
    return ranked[-1] if ranked else None


def build(archive, market: str, data_type: str = "klines", *, lake_keys=(), today=None,
          symbols=None) -> pd.DataFrame:
    """The universe table of one market (see `Lake.universe`)."""
    validate_request(market, data_type, "1d" if data_type in KLINE_TYPES else None,
                     ingestible_only=False)
    today = _as_date(today, "today") or dt.datetime.now(dt.timezone.utc).date()
    listed = archive.symbols(market, data_type) if symbols is None else list(symbols)
    held: dict[str, list] = {}
    for key in lake_keys:
        k = parse_archive_key(key) if isinstance(key, str) else key
        if k is not None and k.market == market:
            held.setdefault(k.symbol, []).append(k)

    def one(sym: str):
        keys = list(held.get(sym, []))
        interval = _interval_for(archive, market, data_type, sym) if data_type in KLINE_TYPES else None
        if data_type not in KLINE_TYPES or interval is not None:
            keys += [f.key for f in archive.files(market, data_type, sym, interval)]
        segs = segments(covered_days(keys))
        first = segs[0][0] if segs else None
        last = segs[-1][1] if segs else None
        return (sym, first, last, segs, len(segs), status(sym, last, today))

    names = sorted(set(listed) | set(held))
    with cf.ThreadPoolExecutor(max_workers=max(1, min(16, len(names)))) as ex:
        rows = list(ex.map(one, names))
    return pd.DataFrame(rows, columns=UNIVERSE_COLUMNS)


def on_day(table: pd.DataFrame, day) -> list[str]:
    """Symbols with a trading segment covering `day` (a date or 'YYYY-MM-DD')."""
    d = _as_date(day, "on")
    return sorted(r.symbol for r in table.itertuples(index=False)
                  if any(a <= d <= b for a, b in r.segments))
