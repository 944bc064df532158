"""Archive faults from real parts: the moto S3 server holding the archive, the fault proxy in
front of it (status codes, truncation, corruption in transit, stalls, refused connections)
and files spoiled or republished upstream. Each case: the first run keeps every row of the
good files and nothing of the bad one (0 lost, 0 doubled, no foreign row), the re-run after
the fault is gone heals the lake exactly."""
from __future__ import annotations

import re
import threading
import time

import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.proxy import FaultProxy
from cryptolake.testing.s3 import ARCHIVE_BUCKET

from .conftest import check_and_record, compare, expected_rows

import datetime as dt

TODAY = dt.date(2026, 11, 26)
TABLE = "um_klines_1h"
DAYS = ["2024-05-01", "2024-05-02"]
SYMBOLS = ["AAAUSDT", "BBBUSDT"]


@pytest.fixture
def site(s3):
    """(builder writing the archive straight to moto, proxy in front of moto, moto)."""
    url = s3.create_bucket(ARCHIVE_BUCKET, public=True)
    b = ArchiveBuilder(url, s3.auth_options())
    keys = {(s, d): b.klines("um", s, "1h", d, seed=i) for i, s in enumerate(SYMBOLS) for d in DAYS}
    with FaultProxy(s3.endpoint_url, max_stall=20) as px:
        yield b, keys, px, s3


def archive_via(px, s3, retries=1):
    opts = {**s3.anon_options(), "endpoint_url": px.url,
            "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 1},
                              "read_timeout": 1, "connect_timeout": 1}}
    return cl.BinanceArchive(f"s3://{ARCHIVE_BUCKET}", opts, retries=retries, backoff=0.01)


def ingest(lake):
    return lake.ingest("um", "klines", SYMBOLS, interval="1h", start=DAYS[0], end=DAYS[-1],
                       progress=False, today=TODAY)


def first_then_heal(kind, tmp_path, b, keys, px, s3, bad, fix, status_first=None):
    """Run with the fault, check the lake holds exactly the good files' rows, `fix()`, re-run,
    check it holds every file's rows."""
    lake = cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3))
    r1 = ingest(lake)
    st = r1.files.set_index("key")["status"]
    if status_first is not None and bad is not None:
        assert st[bad.key] in status_first, r1.files
    good = [k for k in keys.values() if k != bad]
    c = compare(lake, TABLE, expected_rows(b, good))
    assert c["lost"] == c["doubled"] == c["extra"] == c["wrong"] == 0, (kind, c, r1.files)
    fix()
    px.clear()
    lake2 = cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3))
    r2 = ingest(lake2)
    check_and_record(kind, lake2, TABLE, expected_rows(b, list(keys.values())), healed=r2.ok)
    assert (lake2.bronze.verify()["status"] == "ok").all()
    return r1, r2


def only(key) -> str:
    """The proxy's path pattern of one zip (not its .CHECKSUM)."""
    return re.escape(key.filename) + "$"


def republish(b, key, seed=0):
    """Binance republishes a file (same key, fresh bytes and .CHECKSUM)."""
    return b.klines("um", key.symbol, "1h", key.period, seed=seed)


# ---------------------------------------------------------------- spoiled upstream files
def test_corrupt_zip_is_quarantined_and_a_republished_file_heals(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("AAAUSDT", DAYS[1])]
    b.corrupt_zip(bad)
    first_then_heal("corrupt zip", tmp_path, b, keys, px, s3, bad, lambda: republish(b, bad, 0),
                    {"quarantined"})


def test_checksum_mismatch_is_quarantined_and_a_republished_file_heals(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("BBBUSDT", DAYS[0])]
    b.write(b.file(bad), checksum="bad")
    first_then_heal("checksum mismatch", tmp_path, b, keys, px, s3, bad,
                    lambda: b.write(b.file(bad), checksum="good"), {"quarantined"})


def test_missing_checksum_is_quarantined_until_binance_publishes_it(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("BBBUSDT", DAYS[1])]
    b.write(b.file(bad), checksum="missing")
    first_then_heal("missing .CHECKSUM", tmp_path, b, keys, px, s3, bad,   # the zip is untouched
                    lambda: b._put(bad.checksum_key, b.file(bad).checksum), {"quarantined"})


# ---------------------------------------------------------------- faults in transit
@pytest.mark.parametrize("code", [404, 500, 503])
def test_http_errors_from_the_archive_fail_the_file_and_a_rerun_heals(site, tmp_path, code):
    b, keys, px, s3 = site
    bad = keys[("AAAUSDT", DAYS[0])]
    px.add("status", code, path=only(bad), method="GET", times=None)
    first_then_heal(f"HTTP {code}", tmp_path, b, keys, px, s3, bad, lambda: None, {"failed"})


def test_a_transient_503_is_retried_inside_the_run(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("AAAUSDT", DAYS[1])]
    px.add("status", 503, path=only(bad), method="GET", times=1)
    lake = cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3))
    r = ingest(lake)
    assert r.ok and any(a == "status" for _, _, a in px.hits)
    check_and_record("HTTP 503 once (retried)", lake, TABLE, expected_rows(b, list(keys.values())))


def test_a_truncated_download_never_reaches_bronze(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("BBBUSDT", DAYS[1])]
    px.add("truncate", path=only(bad), method="GET", times=None)
    first_then_heal("truncated download", tmp_path, b, keys, px, s3, bad, lambda: None, {"failed"})


def test_bytes_corrupted_in_transit_once_are_caught_and_retried(site, tmp_path):
    """botocore checks the response checksum: the flipped bytes are refused and re-read."""
    b, keys, px, s3 = site
    bad = keys[("AAAUSDT", DAYS[0])]
    px.add("corrupt", path=only(bad), method="GET", times=1)
    lake = cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3))
    r = ingest(lake)
    assert [a for _, _, a in px.hits].count("corrupt") == 1
    assert r.ok, r.files
    check_and_record("corrupted in transit (once)", lake, TABLE, expected_rows(b, list(keys.values())))


def test_corruption_in_transit_every_time_quarantines_then_heals(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("AAAUSDT", DAYS[0])]
    px.add("corrupt", path=only(bad), method="GET", times=None)
    r1, _ = first_then_heal("corrupted in transit (always)", tmp_path, b, keys, px, s3, bad,
                            lambda: None, {"quarantined", "failed"})
    print(r1.files)


def test_a_stalled_connection_times_out_and_a_rerun_heals(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("BBBUSDT", DAYS[0])]
    px.add("stall", 4.0, path=only(bad), method="GET", times=None)
    first_then_heal("stalled connection", tmp_path, b, keys, px, s3, bad, lambda: None, {"failed"})
    # bounded: our 2 tries x 1 botocore attempt, not s3fs's nested 5 x 5 retries under them
    stalls = sum(a == "stall" for _, _, a in px.hits)
    assert 1 <= stalls <= 4, stalls


def test_a_refused_connection_fails_the_file_and_a_rerun_heals(site, tmp_path):
    b, keys, px, s3 = site
    bad = keys[("AAAUSDT", DAYS[1])]
    px.add("refuse", path=only(bad), method="GET", times=None)
    first_then_heal("connection dropped", tmp_path, b, keys, px, s3, bad, lambda: None, {"failed"})


# ---------------------------------------------------------------- republished upstream
def test_a_file_republished_between_runs_replaces_its_rows(site, tmp_path):
    b, keys, px, s3 = site
    lake = cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3))
    assert ingest(lake).ok
    check_and_record("republished between runs (1st run)", lake, TABLE, expected_rows(b, list(keys.values())))
    k = keys[("AAAUSDT", DAYS[0])]
    before = b.frame(k)["close"].to_numpy()
    republish(b, k, seed=99)
    assert (b.frame(k)["close"].to_numpy() != before).any()
    r = ingest(cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3)))
    st = r.files.set_index("key")["status"]
    assert st[k.key] == "downloaded" and (st.drop(k.key) == "unchanged").all()
    check_and_record("republished between runs", cl.Lake(str(tmp_path / "lake")), TABLE,
                     expected_rows(b, list(keys.values())))


def test_a_file_republished_during_the_download_never_mixes_versions(site, tmp_path):
    """The .CHECKSUM is read, then the zip's GET stalls while Binance republishes both: the
    run must not store the new bytes under the old checksum nor mix versions; the re-run takes
    the new version."""
    b, keys, px, s3 = site
    k = keys[("BBBUSDT", DAYS[1])]
    px.add("stall", 1.5, path=only(k), method="GET", times=1)
    new = {}

    def republish_during():
        while not any(a == "stall" for _, _, a in px.hits):
            time.sleep(0.01)
        b.klines("um", k.symbol, "1h", k.period, seed=77, duplicates=3)
        new["done"] = True
    from cryptolake.testing.archive import render_klines
    assert len(render_klines("um", k.symbol, "1h", k.period, seed=77, duplicates=3).zip) != len(b.file(k).zip)
    t = threading.Thread(target=republish_during)
    t.start()
    lake = cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3, retries=2))
    old_frame = None
    r1 = ingest(lake)
    t.join(30)
    assert new.get("done")
    row = r1.files.set_index("key").loc[k.key]
    st = row["status"]
    # the bytes no longer match the listing: a fault of this download (retried next run),
    # not a bad file to quarantine
    assert st == "failed" and "listing says" in row["reason"], row
    others = [v for v in keys.values() if v != k]
    c = compare(lake, TABLE, expected_rows(b, others if st != "downloaded" else list(keys.values())))
    assert c["lost"] == c["doubled"] == c["extra"] == c["wrong"] == 0, (st, c, r1.files)
    r2 = ingest(cl.Lake(str(tmp_path / "lake"), archive=archive_via(px, s3)))
    check_and_record("republished during a run", cl.Lake(str(tmp_path / "lake")), TABLE,
                     expected_rows(b, list(keys.values())), healed=r2.ok)
    del old_frame
