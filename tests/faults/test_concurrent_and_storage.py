"""Concurrent ingests of one table (2 and 4 processes, local disk and S3 on moto in its own
process) and a storage endpoint that fails a share of writes (the fault proxy in front of
moto): the lake ends exact, and a re-run heals what a failed run left."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.proxy import FaultProxy
from cryptolake.testing.s3 import LAKE_BUCKET

from .conftest import check_and_record, compare, expected_rows, subprocess_env

TODAY = dt.date(2026, 11, 26)
TABLE = "um_klines_1h"
DAYS = ["2024-03-30", "2024-03-31", "2024-04-01", "2024-04-02"]
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
WRITER = """
import json, os, sys, time, datetime as dt
import cryptolake as cl
url, opts, archive, go, symbols = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
lake = cl.Lake(url, storage_options=opts or None, archive=cl.BinanceArchive(archive))
while not os.path.exists(go):
    time.sleep(0.005)
r = lake.ingest("um", "klines", symbols, interval="1h", start="2024-03-30", end="2024-04-02",
                progress=False, today=dt.date(2026, 11, 26))
print(json.dumps([r.ok, r.errors]))
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    b = ArchiveBuilder(root.as_uri())
    keys = [b.klines("um", s, "1h", d, seed=i) for i, s in enumerate(SYMBOLS) for d in DAYS]
    return b, keys


def where(kind, tmp_path, request):
    if kind == "local":
        return str(tmp_path / "lake"), None
    site = request.getfixturevalue("s3_lake")
    return site.url, site.storage_options


@pytest.mark.parametrize("n, kind", [
    (4, "local"), (2, "s3"),
    pytest.param(2, "local", marks=pytest.mark.faults_full),
    pytest.param(4, "s3", marks=pytest.mark.faults_full)])
def test_concurrent_ingests_of_the_same_table(archive, tmp_path, request, n, kind):
    b, keys = archive
    url, opts = where(kind, tmp_path, request)
    go = tmp_path / "go"
    # overlapping symbol sets: every symbol is written by at least two writers
    sets = [[SYMBOLS[i % 3], SYMBOLS[(i + 1) % 3]] for i in range(n)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, json.dumps(opts or {}), b.url, str(go),
                               json.dumps(s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=subprocess_env()) for s in sets]
    time.sleep(3)
    go.write_text("go")
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]
        ok, errors = json.loads(out.strip().splitlines()[-1])
        assert ok, errors
    lake = cl.Lake(url, storage_options=opts)
    check_and_record(f"{n} concurrent ingests ({kind})", lake, TABLE, expected_rows(b, keys))
    m = lake.bronze.files()
    assert m["key"].is_unique and len(m) == len(keys) and m["in_silver"].all()
    assert int(lake.silver[TABLE].partition_stats()["rows"].sum()) == len(expected_rows(b, keys))


@pytest.fixture
def proxied_lake(s3_delta):
    url = s3_delta.create_bucket(LAKE_BUCKET)
    with FaultProxy(s3_delta.endpoint_url) as px:
        yield url, {**s3_delta.auth_options(), "endpoint_url": px.url}, s3_delta.auth_options(), px


def test_storage_failing_a_share_of_writes_with_500_is_retried_to_an_exact_lake(archive, proxied_lake):
    b, keys = archive
    url, opts, direct, px = proxied_lake
    px.add("status", 500, method="PUT", times=None, share=0.3, seed=3)
    lake = cl.Lake(url, storage_options=opts, archive=cl.BinanceArchive(b.url))
    r = lake.ingest("um", "klines", SYMBOLS[:2], interval="1h", start=DAYS[0], end=DAYS[-1],
                    progress=False, today=TODAY)
    assert sum(a == "status" for _, _, a in px.hits) >= 3, px.hits[:20]
    assert r.ok, r.errors
    good = [k for k in keys if k.symbol in SYMBOLS[:2]]
    check_and_record("storage: 30% of PUTs answer 500", cl.Lake(url, storage_options=direct), TABLE,
                     expected_rows(b, good))


def test_storage_refusing_a_share_of_writes_fails_the_run_and_a_rerun_heals(archive, proxied_lake):
    b, keys = archive
    url, opts, direct, px = proxied_lake
    px.add("status", 403, method="PUT", times=None, share=0.25, seed=5)
    lake = cl.Lake(url, storage_options=opts, archive=cl.BinanceArchive(b.url))
    good = [k for k in keys if k.symbol in SYMBOLS[:2]]
    want = expected_rows(b, good)
    try:
        r = lake.ingest("um", "klines", SYMBOLS[:2], interval="1h", start=DAYS[0], end=DAYS[-1],
                        progress=False, today=TODAY)
        failed = not r.ok
    except Exception:   # noqa: BLE001 - a write the store refuses may end the run
        failed = True
    assert sum(a == "status" for _, _, a in px.hits) >= 1
    c = compare(cl.Lake(url, storage_options=direct), TABLE, want)
    assert c["doubled"] == c["extra"] == c["wrong"] == 0, c
    px.clear()
    r2 = cl.Lake(url, storage_options=opts, archive=cl.BinanceArchive(b.url)).ingest(
        "um", "klines", SYMBOLS[:2], interval="1h", start=DAYS[0], end=DAYS[-1], progress=False,
        today=TODAY)
    check_and_record("storage: 25% of PUTs refused (403)", cl.Lake(url, storage_options=direct), TABLE,
                     want, healed=r2.ok and (failed or c["lost"] == 0))
