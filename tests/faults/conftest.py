"""Fault-injection suite (issue #11): shared helpers and the counts table.

Every case ends by comparing the lake with the rows of the *good* files it was given
(`ArchiveBuilder.frame(key)`, computed by the builder, never by the code under test) and
records one row in COUNTS: fault kind, runs, rows expected, rows found, lost, doubled, healed.
`pytest_terminal_summary` prints the table at the end of the session; README's Reliability
section shows it as last printed.

`faults_full` (registered in pyproject.toml) marks the long kill-point sweep: it runs only
with `-m faults_full` or CRYPTOLAKE_FAULTS_FULL=1 (`make test-faults`); CI runs a seeded subset.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Tally:
    runs: int = 0
    expected: int = 0
    found: int = 0
    lost: int = 0
    doubled: int = 0
    healed: int = 0


COUNTS: "OrderedDict[str, Tally]" = OrderedDict()


def record(kind: str, expected: int, found: int, lost: int, doubled: int, healed: bool) -> None:
    t = COUNTS.setdefault(kind, Tally())
    t.runs += 1
    t.expected += expected
    t.found += found
    t.lost += lost
    t.doubled += doubled
    t.healed += bool(healed)


def counts_table() -> str:
    head = ("fault kind", "runs", "rows expected", "rows found", "lost", "doubled", "healed")
    rows = [(k, t.runs, t.expected, t.found, t.lost, t.doubled, f"{t.healed}/{t.runs}")
            for k, t in COUNTS.items()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.section("fault-injection counts (issue #11)")
        terminalreporter.write_line(counts_table())


def pytest_collection_modifyitems(config, items):
    full = os.environ.get("CRYPTOLAKE_FAULTS_FULL") == "1" or "faults_full" in (config.option.markexpr or "")
    if full:
        return
    skip = pytest.mark.skip(reason="long kill-point sweep: `make test-faults` (CRYPTOLAKE_FAULTS_FULL=1)")
    for item in items:
        if "faults_full" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------- comparing a lake
def expected_rows(builder, keys) -> pd.DataFrame:
    """(symbol, time) -> close of the good files, as the builder wrote them (one row per
    instant; a monthly and a daily file of the same day overlap by design)."""
    frames = []
    for k in keys:
        f = builder.frame(k)
        tcol = "open_time" if "open_time" in f.columns else "funding_time"
        frames.append(pd.DataFrame({"symbol": k.symbol, "t": f[tcol].to_numpy(),
                                    "close": f["close" if "close" in f.columns else "funding_rate"].to_numpy()}))
    df = pd.concat(frames, ignore_index=True).drop_duplicates(["symbol", "t"])
    return df.sort_values(["symbol", "t"], ignore_index=True)


def lake_rows(lake, table: str) -> pd.DataFrame:
    """Every row of a silver table as (symbol, t, close); empty when the table does not exist."""
    if table not in lake.silver.tables:
        return pd.DataFrame({"symbol": pd.Series(dtype=str), "t": pd.Series(dtype="datetime64[us, UTC]"),
                             "close": pd.Series(dtype=float)})
    df = lake.silver[table].read_arrow().to_pandas()
    tcol = "open_time" if "open_time" in df.columns else "funding_time"
    val = "close" if "close" in df.columns else "funding_rate"
    return pd.DataFrame({"symbol": df["symbol"].astype(str), "t": df[tcol], "close": df[val]})


def compare(lake, table: str, want: pd.DataFrame) -> dict:
    """found / lost / doubled / extra (rows of no good file) / wrong (values that differ)."""
    got = lake_rows(lake, table)
    doubled = int(got.duplicated(["symbol", "t"]).sum())
    g = got.drop_duplicates(["symbol", "t"])
    m = want.merge(g, on=["symbol", "t"], how="outer", suffixes=("_want", "_got"), indicator=True)
    both = m[m["_merge"] == "both"]
    return {"expected": len(want), "found": len(got), "doubled": doubled,
            "lost": int((m["_merge"] == "left_only").sum()),
            "extra": int((m["_merge"] == "right_only").sum()),
            "wrong": int((both["close_want"] != both["close_got"]).sum())}


def exact(c: dict) -> bool:
    return c["lost"] == c["doubled"] == c["extra"] == c["wrong"] == 0


def check_and_record(kind: str, lake, table: str, want: pd.DataFrame, healed: bool | None = None) -> dict:
    """Compare, record one run of `kind`, and assert the lake is exact."""
    c = compare(lake, table, want)
    ok = exact(c)
    record(kind, c["expected"], c["found"], c["lost"], c["doubled"], ok if healed is None else (healed and ok))
    assert ok, f"{kind}: {c}"
    return c


def subprocess_env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "CRYPTOLAKE_WORKERS": "2"}
    env.pop("CRYPTOLAKE_FAULT_KILL_AT", None)
    env.pop("CRYPTOLAKE_FAULT_COUNT", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env
