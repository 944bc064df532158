"""Two writers at once, as real processes, on local disk and on S3 (moto in its own process):
both finish and every row is stored exactly once (Delta commits + retries on fresh state)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

REPO = Path(__file__).resolve().parents[1]
WRITER = """
import json, logging, os, sys, time, datetime as dt
import cryptolake as cl
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
url, opts, archive, go, jobs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
lake = cl.Lake(url, storage_options=opts or None, archive=cl.BinanceArchive(archive))
while not os.path.exists(go):            # start both writers at the same instant
    time.sleep(0.005)
out = []
for market, dtype, symbols, interval, start, end in jobs:
    r = lake.ingest(market, dtype, symbols, interval=interval, start=start, end=end, progress=False,
                    today=dt.date(2026, 11, 26))
    out.append([r.ok, r.errors, r.rows])
print(json.dumps(out))
"""


def run_writers(url, opts, archive_url, jobs_per_writer, tmp_path) -> list:
    go = tmp_path / f"go-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "CRYPTOLAKE_WORKERS": "4"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, json.dumps(opts or {}), archive_url,
                               str(go), json.dumps(jobs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for jobs in jobs_per_writer]
    time.sleep(4)                         # let both import and open the lake
    go.write_text("go")
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
        RETRIES.append(err.count("commit conflict"))
    return outs


RETRIES: list[int] = []    # conflicts the writers retried (printed; the rows are what is asserted)


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "lake"), None
    site = request.getfixturevalue("s3_lake")
    return site.url, site.storage_options


DAYS = ["2024-03-30", "2024-03-31", "2024-04-01", "2024-04-02"]


def test_two_ingests_of_the_same_table_with_overlapping_symbols_and_months(where, tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    keys = {(s, d): b.klines("um", s, "1h", d, seed=i) for i, s in enumerate(["AAAUSDT", "BBBUSDT", "CCCUSDT"])
            for d in DAYS}
    url, opts = where
    outs = run_writers(url, opts, root.as_uri(), [
        [["um", "klines", ["AAAUSDT", "BBBUSDT"], "1h", DAYS[0], DAYS[2]]],
        [["um", "klines", ["BBBUSDT", "CCCUSDT"], "1h", DAYS[1], DAYS[3]]],
    ], tmp_path)
    assert all(ok for o in outs for ok, _, _ in o), outs
    lake = cl.Lake(url, storage_options=opts)
    t = lake.silver.um_klines_1h
    spans = {"AAAUSDT": DAYS[0:3], "BBBUSDT": DAYS, "CCCUSDT": DAYS[1:]}
    for sym, days in spans.items():
        got = t[sym]
        want = pd.concat([b.frame(keys[(sym, d)]) for d in days]).set_index("open_time")
        assert got.index.is_unique, sym
        assert list(got.index) == list(want.index), sym
        np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
    m = lake.bronze.files()
    assert len(m) == len(m["key"].unique()) == 3 + 4 + 3 and m["in_silver"].all()
    stats = t.partition_stats()
    assert stats["rows"].sum() == 24 * 10
    n = lake.sql("select count(*) n, count(distinct (symbol, open_time)) u from silver.um_klines_1h")
    assert n["n"].item() == n["u"].item() == 240
    print(f"conflicts retried by the writers so far: {RETRIES}")


def test_two_ingests_of_different_tables_at_once(where, tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    hourly = [b.klines("um", s, "1h", d) for s in ("AAAUSDT", "BBBUSDT") for d in DAYS[:2]]
    minute = [b.klines("um", s, "1m", d) for s in ("AAAUSDT", "BBBUSDT") for d in DAYS[:2]]
    url, opts = where
    outs = run_writers(url, opts, root.as_uri(), [
        [["um", "klines", None, "1h", DAYS[0], DAYS[1]]],
        [["um", "klines", None, "1m", DAYS[0], DAYS[1]]],
    ], tmp_path)
    assert all(ok for o in outs for ok, _, _ in o), outs
    lake = cl.Lake(url, storage_options=opts)
    assert len(lake.silver.um_klines_1h.read()) == 4 * 24
    assert len(lake.silver.um_klines_1m.read()) == 4 * 1440
    m = lake.bronze.files()
    assert sorted(m["key"]) == sorted(k.key for k in hourly + minute) and m["in_silver"].all()
    stats = lake.silver.um_klines_1m.partition_stats()
    assert stats["rows"].tolist() == [2 * 1440, 2 * 1440]


def test_a_commit_that_keeps_conflicting_fails_with_a_clear_error(tmp_path):
    from deltalake.exceptions import CommitFailedError
    from cryptolake.storage import CommitConflictError, Storage
    st = Storage(str(tmp_path / "lake"))
    calls = []

    def always_conflicts():
        calls.append(1)
        raise CommitFailedError("a concurrent transaction added new data")
    with pytest.raises(CommitConflictError, match="silver.x BTCUSDT.*3 attempts"):
        st.commit(always_conflicts, "silver.x BTCUSDT", attempts=3)
    assert len(calls) == 3
