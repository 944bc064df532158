"""Several symbols per commit: one manifest, one silver and one catalog commit for a batch of
symbols, the same rows and counts as symbol by symbol, and a batch lost to a crash is redone
by the next run from bronze (its files are not fetched again)."""
from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import cryptolake as cl
from cryptolake import schema
from cryptolake.ingest import commit_symbols
from cryptolake.layers import silver
from cryptolake.sources.parse import ParseError, read_zip
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)
REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]
DAYS = ["2024-03-31", "2024-04-01", "2024-04-02"]


@pytest.fixture
def builder(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    b.made = {s: [b.klines("um", s, "1h", d, seed=i) for d in DAYS] for i, s in enumerate(SYMBOLS)}
    return b


def _ingest(lake):
    r = lake.ingest("um", "klines", interval="1h", start=DAYS[0], end=DAYS[-1], progress=False,
                    today=TODAY)
    assert r.ok, r.errors
    return r


def _closes(lake) -> dict:
    df = lake.silver.um_klines_1h.read()
    return {s: g.sort_values("open_time")["close"].to_numpy() for s, g in df.groupby("symbol")}


def test_a_batch_of_symbols_is_one_silver_commit_with_the_rows_and_counts_of_each(tmp_path, builder):
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    _ingest(lake)
    t = lake.silver.um_klines_1h
    before, want = t.version, _closes(lake)
    stats_before = t.partition_stats().sort_values(["symbol", "month"], ignore_index=True)
    # every file "not in silver" again, then the whole table rebuilt as ONE batch
    rows = lake.bronze.symbol_rows_all("um_klines_1h")
    lake.bronze.upsert([{**r, "in_silver": False} for r in rows])
    req = schema.validate_request("um", "klines", "1h")
    with ThreadPoolExecutor(2) as pool:
        n = commit_symbols(pool, lake.storage, lake.bronze, req, [(s, []) for s in SYMBOLS],
                           note="rebuild as one batch")
    lake.bronze.save()
    lake = cl.Lake(str(tmp_path / "lake"))
    t = lake.silver.um_klines_1h
    assert n == 24 * len(DAYS) * len(SYMBOLS)
    assert t.version == before + 1                        # one commit for four symbols
    h = t.history()
    top = h[h["version"] == t.version].iloc[0]
    assert top["rows_added"] == n and top["rows_removed"] == n and "one batch" in top["note"]
    got = _closes(lake)
    assert sorted(got) == SYMBOLS
    for s in SYMBOLS:
        np.testing.assert_array_equal(got[s], want[s])
    stats = t.partition_stats().sort_values(["symbol", "month"], ignore_index=True)
    assert stats[["symbol", "month", "rows", "on_grid"]].equals(stats_before[["symbol", "month", "rows", "on_grid"]])
    assert lake.bronze.files()["in_silver"].all()


KILLED = """
import datetime as dt, sys, cryptolake as cl
lake = cl.Lake(sys.argv[1], archive=cl.BinanceArchive(sys.argv[2]))
lake.ingest("um", "klines", interval="1h", start=sys.argv[3], end=sys.argv[4], progress=False,
            today=dt.date(2026, 11, 26))
"""


def test_a_batch_killed_before_its_silver_commit_is_redone_from_bronze(tmp_path, builder):
    """SIGKILL at the second silver commit (a cap of 40 rows makes each symbol a batch: the
    first is committed, the second has its manifest rows and no silver rows): the next run
    rebuilds the lost batch from bronze, fetches none of its files again, and the lake is
    exact."""
    lake_dir = str(tmp_path / "lake")
    env = {"PYTHONPATH": str(REPO), "CRYPTOLAKE_WORKERS": "2", "CRYPTOLAKE_BATCH_ROWS": "10",
           "CRYPTOLAKE_FAULT_KILL_AT": "silver_commit:2", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-c", KILLED, lake_dir, builder.url, DAYS[0], DAYS[-1]],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    wreck = cl.Lake(lake_dir)
    m = wreck.bronze.files()
    lost = m[~m["in_silver"]]
    assert len(lost) and (lost["status"] == "stored").all()      # the lost batch's files, kept
    held = set(wreck.silver.um_klines_1h.symbols) if "um_klines_1h" in wreck.silver.tables else set()
    assert not set(lost["symbol"]) & held                           # and none of its rows

    lake = cl.Lake(lake_dir, archive=cl.BinanceArchive(builder.url))
    r = _ingest(lake)
    status = r.files.set_index("key")["status"]
    assert (status[lost["key"]] == "unchanged").all(), status[lost["key"]]
    lake = cl.Lake(lake_dir)
    assert lake.bronze.files()["in_silver"].all() and len(lake.bronze.files()) == len(SYMBOLS) * len(DAYS)
    got = _closes(lake)
    assert sorted(got) == SYMBOLS
    for s in SYMBOLS:
        want = np.concatenate([builder.frame(k)["close"].to_numpy() for k in builder.made[s]])
        np.testing.assert_array_equal(got[s], want)


def test_merge_of_files_that_do_not_overlap_sorts_them_by_time():
    sch = pa.schema([("t", pa.int64()), ("v", pa.float64()), ("source", pa.string())])
    days = [pa.table({"t": [d * 10 + i for i in range(3)], "v": [float(d)] * 3,
                      "source": ["archive_daily"] * 3}, schema=sch) for d in range(4)]
    got = silver.merge(days[::-1], "t", sch)                     # given newest first
    assert got["t"].to_pylist() == [d * 10 + i for d in range(4) for i in range(3)]
    overlap = [days[1], pa.table({"t": [10, 11], "v": [9.0, 9.0], "source": ["archive_monthly"] * 2},
                                 schema=sch)]
    got = silver.merge(overlap, "t", sch)                        # shared instants: the monthly file wins
    assert got["t"].to_pylist() == [10, 11, 12] and got["v"].to_pylist() == [9.0, 9.0, 1.0]


def _zip(data: bytes, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.writestr("X-1h-2024-05-01.csv", data)
    return buf.getvalue()


def test_read_zip_checks_crc_size_and_bombs_on_its_one_call_path():
    csv = b"".join(b"%d,1.0\n" % i for i in range(5000))
    assert read_zip(_zip(csv)) == csv
    assert read_zip(_zip(csv, zipfile.ZIP_STORED)) == csv
    z = bytearray(_zip(csv))
    cd = z.rfind(b"PK\x01\x02")                                 # central directory entry
    z[cd + 16:cd + 20] = (zlib.crc32(csv) ^ 1).to_bytes(4, "little")   # a wrong CRC-32
    with pytest.raises(ParseError, match="corrupt zip"):
        read_zip(bytes(z))
    bomb = bytearray(_zip(b"0" * (300 << 20)))                   # 300 MiB of zeros ...
    cd = bomb.rfind(b"PK\x01\x02")
    bomb[cd + 24:cd + 28] = (1000).to_bytes(4, "little")         # ... declared as 1,000 bytes
    with pytest.raises(ParseError, match="zip bomb"):
        read_zip(bytes(bomb))


def test_a_batch_stops_at_its_row_cap(tmp_path, builder, monkeypatch):
    """CRYPTOLAKE_BATCH_ROWS=10 caps a batch at 40 rows: each symbol (72 rows) is its own
    commit, and the rows are the same."""
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", "10")
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    _ingest(lake)
    h = lake.silver.um_klines_1h.history()
    writes = h[h["operation"] == "WRITE"]
    assert writes["rows_added"].tolist() == [24 * len(DAYS)] * len(SYMBOLS)
    got = _closes(lake)
    for s in SYMBOLS:
        np.testing.assert_array_equal(got[s], np.concatenate([builder.frame(k)["close"].to_numpy()
                                                              for k in builder.made[s]]))


def test_a_run_under_the_row_cap_is_one_silver_commit(tmp_path, builder):
    """Symbols are committed together until the batch is full: four symbols of 72 rows (far
    under the default cap) make ONE silver commit, after the last symbol is parsed."""
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    _ingest(lake)
    h = lake.silver.um_klines_1h.history()
    writes = h[h["operation"] == "WRITE"]
    assert writes["rows_added"].tolist() == [24 * len(DAYS) * len(SYMBOLS)]


def test_one_fetch_thread_per_core_when_everything_is_local(monkeypatch):
    from cryptolake import config
    monkeypatch.delenv("CRYPTOLAKE_WORKERS", raising=False)
    cores = os.cpu_count() or 1
    assert config.max_workers(local=True) == cores
    assert config.max_workers() == max(8, 4 * cores)
    monkeypatch.setenv("CRYPTOLAKE_WORKERS", "3")
    assert config.max_workers(local=True) == config.max_workers() == 3


def test_finite_values_whose_sum_overflows_still_parse():
    from cryptolake.sources.parse import parse_csv
    rows = [b"%d,1.0,2.0,0.5,1.5,1e308,%d,15.0,5,4.0,6.0,0\n" % (t, t + 3_599_999)
            for t in (1714521600000, 1714525200000)]
    t = parse_csv(b"".join(rows), "um", "klines", "archive_daily")
    assert t["volume"].to_pylist() == [1e308, 1e308]
    with pytest.raises(ParseError, match="not a number"):
        parse_csv(b"".join(rows).replace(b"1e308", b"inf", 1), "um", "klines", "archive_daily")


@pytest.mark.parametrize("together", ["every file alone", "symbols together"])
def test_the_joint_parse_and_its_byte_cap_leave_the_same_lake(tmp_path, builder, monkeypatch,
                                                               together):
    """A symbol's files parsed as one CSV (Polars), or parsed as soon as each arrives (a cap
    of one byte), give the rows and manifest spans of the careful file-by-file path."""
    from cryptolake import ingest
    from cryptolake.sources import parse_batch
    base = cl.Lake(str(tmp_path / "base"), archive=cl.BinanceArchive(builder.url))
    monkeypatch.setattr(parse_batch, "TOGETHER_MIN_BYTES", 1 << 60)      # never together
    _ingest(base)
    monkeypatch.setattr(parse_batch, "TOGETHER_MIN_BYTES", 0)
    if together == "every file alone":
        monkeypatch.setattr(ingest, "TOGETHER_MAX_BYTES", 1)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    _ingest(lake)
    got, want = _closes(lake), _closes(base)
    assert sorted(got) == sorted(want) == SYMBOLS
    for s in SYMBOLS:
        np.testing.assert_array_equal(got[s], want[s])
    cols = ["key", "rows", "first_time", "last_time", "status"]
    m = lambda lk: lk.bronze.files().sort_values("key")[cols].reset_index(drop=True)  # noqa: E731
    assert m(lake).equals(m(base))
