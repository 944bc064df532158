"""REST top-up: the days the archive lacks, fetched through `BinanceREST` into bronze.

Which days: inside the asked range, every day the archive plan could not cover — days it
should have had (holes inside the symbol's listed life), days it has not published yet (after
its last file, up to today), and, for a symbol the archive does not list at all, the whole
range. A day whose REST page was fetched after the day ended is complete and not fetched
again; a day an archive file covers is never fetched. Raw responses land in bronze, one file
per symbol and day (`rest/...json`), with the same manifest as archive files.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import schema

REST_TYPES = schema.KLINE_TYPES + ("fundingRate",)


@dataclass(frozen=True)
class PageKey:
    """A REST page file named like an archive key, for the report and the commit."""
    key: str
    symbol: str
    period: str
    cadence: str = "rest"


@dataclass(frozen=True)
class PageRemote:
    key: PageKey


def _days(a: dt.date, b: dt.date) -> list[dt.date]:
    return [a + dt.timedelta(d) for d in range((b - a).days + 1)] if a <= b else []


def days_to_fetch(req, plan, symbol: str, today: dt.date, manifest_rows: dict) -> list[dt.date]:
    """The UTC days of `symbol` to ask REST for (see the module docstring)."""
    end = min(req.end or today, today)
    life = (plan.life or {}).get(symbol)
    if life is None:
        days = _days(req.start, end) if req.start else []
    else:
        days = []
        for k in plan.holes.get(symbol, []):
            days += _days(max(k.first_day, req.start or k.first_day), min(k.last_day, end))
        days += _days(max(life[1] + dt.timedelta(1), req.start or life[1]), end)
    covered = set()
    for r in manifest_rows.values():
        if r["status"] != "stored":
            continue
        if r["cadence"] == "rest":
            day = dt.date.fromisoformat(r["period"])
            fetched = r["fetched_at"]
            if fetched is not None and fetched.date() > day:          # fetched after it ended
                covered.add(day)
        else:
            from .layout import parse_archive_key
            k = parse_archive_key(r["key"])
            if k is not None:
                covered.update(_days(k.first_day, k.last_day))
    return sorted(d for d in set(days) if d not in covered)


def runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) runs: one REST call each."""
    out: list[list[dt.date]] = []
    for d in sorted(days):
        if out and (d - out[-1][1]).days == 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]


def fetch(rest, bronze, req, symbol: str, days: list[dt.date], outcome_cls, now=None):
    """Fetch `days` of `symbol`, keep each day's pages in bronze; returns (outcomes, errors,
    rejected rows)."""
    from .sources.parse import row_span
    from .sources.rest import parse_pages
    outcomes, errors, rejected = [], [], []
    for a, b in runs(days):
        if req.data_type == "fundingRate":
            got = rest.funding(req.market, symbol, a, b, now=now)
        else:
            got = rest.klines(req.market, req.data_type, symbol, req.interval, a, b, now=now)
        errors += [f"REST {symbol} {a}..{b}: {e}" for e in got.errors]
        rejected += [{**r, "symbol": symbol} for r in got.rejected]
        for key, data in got.pages:
            day = dt.date.fromisoformat(key[-15:-5])
            table = parse_pages(req.market, req.data_type, [(key, data)], now=now)
            row = bronze.store_page(key, data, req.table, market=req.market, data_type=req.data_type,
                                    symbol=symbol, interval=req.interval, day=day)
            row.update(row_span(table, req.data_type))
            outcomes.append(outcome_cls(PageRemote(PageKey(key, symbol, day.isoformat())), row, table,
                                        status="downloaded"))
    return outcomes, errors, rejected
