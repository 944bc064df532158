"""Why bars are missing: classify gap runs by what bronze holds, and find trading halts.

Causes (contract): `missing_file` (no archive file covers the span), `partial_file` (a file
that stops early or starts late), `outage` (bars absent inside a file's span: exchange
maintenance), `halt` (bars present but flat with zero volume), `relisting` (a silence of at
least RELISTING_DAYS after which the symbol trades again).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

RELISTING_DAYS = 30
HALT_MIN = pd.Timedelta(minutes=15)       # shorter flat stretches are just quiet markets
_DAY_US = 86_400_000_000
_EPOCH = dt.date(1970, 1, 1)


def _day(us: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(us // _DAY_US))


def _day_us(d: dt.date) -> int:
    return (d - _EPOCH).days * _DAY_US


def file_spans(rows: list[dict]) -> dict[str, list[tuple[dt.date, dt.date]]]:
    """symbol -> sorted (first_day, last_day) of every stored file (from manifest rows)."""
    from .layout import parse_archive_key
    spans: dict[str, list] = {}
    for r in rows:
        k = parse_archive_key(r["key"])
        if k is not None and r["status"] == "stored":
            spans.setdefault(k.symbol, []).append((k.first_day, k.last_day))
    return {s: sorted(v) for s, v in spans.items()}


def _covered(spans, day: dt.date) -> bool:
    return any(a <= day <= b for a, b in spans)


def classify(gaps: pd.DataFrame, spans: dict[str, list], step_us: int) -> pd.DataFrame:
    """Split every gap run (symbol, start, end, missing) where file coverage changes and give
    each piece its cause."""
    out = []
    for g in gaps.itertuples(index=False):
        s_us, e_us = g.start.value // 1000, g.end.value // 1000
        long_silence = (e_us - s_us) >= RELISTING_DAYS * _DAY_US
        sym_spans = spans.get(g.symbol, [])
        edges = {_day_us(a) for a, _ in sym_spans} | {_day_us(b) + _DAY_US - step_us for _, b in sym_spans}
        piece_start, d = s_us, _day(s_us)
        state = _covered(sym_spans, d)
        while True:
            nxt = _day_us(d) + _DAY_US
            if nxt > e_us or _covered(sym_spans, _day(nxt)) != state:
                piece_end = min(e_us, nxt - step_us)
                if state:
                    cause = "partial_file" if piece_start in edges or piece_end in edges else "outage"
                else:
                    cause = "relisting" if long_silence else "missing_file"
                out.append((g.symbol, piece_start, piece_end, (piece_end - piece_start) // step_us + 1, cause))
                if nxt > e_us:
                    break
                piece_start, state = nxt, not state
            d = _day(nxt)
    return _frame(out)


def halts(symbols: np.ndarray, times_us: np.ndarray, o, h, l, c, v, step_us: int) -> pd.DataFrame:
    """Runs of consecutive flat, zero-volume bars at least HALT_MIN long (futures publish these
    through trading halts, so open_time gaps never show them)."""
    flat = (v == 0) & (o == h) & (h == l) & (l == c)
    min_bars = max(3, int(np.ceil(HALT_MIN.value / 1000 / step_us)))
    out = []
    i = 0
    idx = np.flatnonzero(flat)
    while i < len(idx):
        j = i
        while (j + 1 < len(idx) and idx[j + 1] == idx[j] + 1 and symbols[idx[j + 1]] == symbols[idx[j]]
               and times_us[idx[j + 1]] - times_us[idx[j]] == step_us):
            j += 1
        if j - i + 1 >= min_bars:
            a, b = idx[i], idx[j]
            out.append((symbols[a], int(times_us[a]), int(times_us[b]), j - i + 1, "halt"))
        i = j + 1
    return _frame(out)


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["symbol", "start", "end", "missing", "cause"])
    for col in ("start", "end"):
        df[col] = pd.to_datetime(df[col].astype("int64"), unit="us", utc=True)
    df["missing"] = df["missing"].astype("int64")
    return df
