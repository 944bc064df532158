"""A gold build SIGKILLed mid-way (before a commit, between a data commit and its catalog
counts), then re-run: the gold table equals pandas' resample of silver, every bar once."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

from .conftest import record, subprocess_env

TODAY = dt.date(2026, 11, 26)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BUILD = ("import sys, cryptolake as cl; lake = cl.Lake(sys.argv[1]); "
         "lake.build_gold('bars', 'um_klines_1m', rule='1h', progress=False)")


@pytest.fixture
def lake(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    for i, s in enumerate(SYMBOLS):
        for d in ("2024-03-01", "2024-03-02"):
            b.klines("um", s, "1m", d, seed=i)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    lake.ingest("um", "klines", list(SYMBOLS), interval="1m", start="2024-03-01", end="2024-03-02",
                progress=False, today=TODAY, top_up=False)
    return lake


def want_bars(lake) -> pd.DataFrame:
    src = lake.silver.um_klines_1m.read(list(SYMBOLS))
    out = []
    for s in SYMBOLS:
        r = src.xs(s).resample("1h").agg({"close": "last", "volume": "sum"}).dropna()
        out.append(r.assign(symbol=s))
    return pd.concat(out).reset_index().rename(columns={"open_time": "t"})


@pytest.mark.parametrize("kill_at", ["silver_commit:1", "silver_commit:2", "silver_committed:1",
                                     "silver_committed:3"])
def test_a_killed_gold_build_heals_on_rerun(lake, kill_at):
    run = subprocess.run([sys.executable, "-c", BUILD, lake.url], env=subprocess_env(
        CRYPTOLAKE_FAULT_KILL_AT=kill_at), capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]                    # it really died there
    lake = cl.Lake(lake.url)
    lake.build_gold("bars", "um_klines_1m", rule="1h", progress=False)   # the re-run heals it
    got = lake.gold.um_bars_1h.read(list(SYMBOLS)).reset_index()
    got = got.rename(columns={got.columns[1]: "t"})
    want = want_bars(lake)
    doubled = int(got.duplicated(["symbol", "t"]).sum())
    m = want.merge(got.drop_duplicates(["symbol", "t"]), on=["symbol", "t"], how="outer",
                   suffixes=("_want", "_got"), indicator=True)
    lost = int((m["_merge"] == "left_only").sum())
    extra = int((m["_merge"] == "right_only").sum())
    both = m[m["_merge"] == "both"]
    wrong = int((both["close_want"] != both["close_got"]).sum())
    ok = lost == doubled == extra == wrong == 0
    record(f"gold build killed ({kill_at.split(':')[0]})", len(want), len(got), lost, doubled, ok)
    assert ok, dict(lost=lost, doubled=doubled, extra=extra, wrong=wrong)
