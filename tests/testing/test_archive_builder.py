"""The archive fixture builder writes what the real archive serves, and says what it wrote.

Checked with stdlib tools only (zipfile, csv, hashlib) and layout.parse_archive_key."""
from __future__ import annotations

import csv as stdcsv
import hashlib
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

from cryptolake import schema
from cryptolake.layout import ArchiveKey, parse_archive_key
from cryptolake.testing.archive import ArchiveBuilder, render_funding, render_klines


def _member(zip_bytes: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        (info,) = zf.infolist()
        return info, zf.read(info)


def _rows(csv: bytes) -> list[list[str]]:
    rows = list(stdcsv.reader(io.StringIO(csv.decode())))
    return rows[1:] if rows and rows[0][0] == "open_time" else rows


# ---------------------------------------------------------------- file format and layout
def test_layout_zip_and_checksum_on_local_dir(local_archive):
    b = local_archive.builder
    key = b.klines("spot", "BTCUSDT", "1m", "2024-01-02")
    assert key.key == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-02.zip"
    fs, root = fsspec.core.url_to_fs(local_archive.url)
    data = fs.cat_file(f"{root}/{key.key}")
    line = fs.cat_file(f"{root}/{key.key}.CHECKSUM")
    assert line == f"{hashlib.sha256(data).hexdigest()}  BTCUSDT-1m-2024-01-02.zip\n".encode()
    info, csv = _member(data)
    assert info.filename == "BTCUSDT-1m-2024-01-02.csv"
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert b"\r" not in csv and csv.endswith(b"\n") and not csv.endswith(b"\n\n")
    assert parse_archive_key(key.key) == key


def test_every_written_key_parses_and_junk_does_not():
    b = ArchiveBuilder("memory://builder-keys")
    keys = [
        b.klines("um", "BTCUSDT", "1h", "2024-01"),
        b.klines("cm", "BTCUSD_PERP", "1d", "2024-01-03", data_type="markPriceKlines"),
        b.klines("cm", "BTCUSD", "1w", "2024-02", data_type="indexPriceKlines"),
        b.klines("spot", "1000SATSUSDT", "1s", "2025-02-03", missing=[slice(0, 80000)]),
        b.funding("um", "BTCUSDT", "2024-01"),
        b.funding("cm", "BTCUSD_PERP", "2024-01"),
    ]
    found = sorted(p.split("builder-keys/", 1)[1] for p in b.fs.find("/builder-keys"))
    assert found == sorted([k.key for k in keys] + [k.checksum_key for k in keys])
    for k in keys:
        assert parse_archive_key(k.key) == k
    d = b.symbol_dir("um", "monthly", "aggTrades", "BTCUSDT")
    junk = [b.junk(d), b.junk(d, seed=1), b.junk(b.symbol_dir("spot", "monthly", "klines", "ADABKRW", "1d"),
                                                  name="ADABKRW-1d-2020-8.zip")]
    assert junk[0] != junk[1] and junk[0].startswith(d + "/part-00000-") and junk[0].endswith("-c000.zip")
    for j in junk:
        assert parse_archive_key(j) is None
        assert b.fs.exists(f"/builder-keys/{j}")
    assert b.keys == sorted(keys)
    b.fs.rm("/builder-keys", recursive=True)


@pytest.mark.parametrize("mode", ["good", "bad", "missing"])
def test_checksum_modes(local_archive, mode):
    b = local_archive.builder
    key = b.funding("um", "ETHUSDT", "2023-11", checksum=mode)
    fs, root = fsspec.core.url_to_fs(local_archive.url)
    data = fs.cat_file(f"{root}/{key.key}")
    if mode == "missing":
        assert not fs.exists(f"{root}/{key.checksum_key}")
        return
    digest, name = fs.cat_file(f"{root}/{key.checksum_key}").decode().rstrip("\n").split("  ")
    assert name == key.filename and len(digest) == 64
    assert (digest == hashlib.sha256(data).hexdigest()) == (mode == "good")


def test_corrupt_zip_has_matching_checksum(local_archive):
    b = local_archive.builder
    key = ArchiveKey("um", "daily", "klines", "BTCUSDT", "1m", "2024-01-02")
    b.corrupt_zip(key)
    fs, root = fsspec.core.url_to_fs(local_archive.url)
    data = fs.cat_file(f"{root}/{key.key}")
    assert not zipfile.is_zipfile(io.BytesIO(data))
    assert fs.cat_file(f"{root}/{key.checksum_key}").split()[0].decode() == hashlib.sha256(data).hexdigest()
    with pytest.raises(KeyError, match="not generated"):
        b.frame(key)


def test_remove_and_raw(local_archive):
    b = local_archive.builder
    key = b.klines("um", "BTCUSDT", "1h", "2024-01-02")
    b.remove(key)
    assert not b.fs.exists(b.path(key)) and key not in b.files
    raw = b.raw(key, b"1,2,3\n")
    fs, root = fsspec.core.url_to_fs(local_archive.url)
    assert _member(fs.cat_file(f"{root}/{raw.key}"))[1] == b"1,2,3\n"


def test_writes_to_s3_and_reads_anonymously(s3_archive):
    b = s3_archive.builder
    key = b.klines("um", "ETHUSDT", "1h", "2024-03-01", checksum="good")
    fs, root = fsspec.core.url_to_fs(s3_archive.url, **s3_archive.storage_options)
    assert fs.anon
    listed = fs.ls(f"{root}/data/futures/um/daily/klines/ETHUSDT/1h/", detail=False)
    assert sorted(p.rsplit("/", 1)[1] for p in listed) == [key.filename, key.filename + ".CHECKSUM"]
    data = fs.cat_file(f"{root}/{key.key}")
    assert fs.info(f"{root}/{key.key}")["size"] == len(data)        # anonymous HEAD works
    assert fs.cat_file(f"{root}/{key.checksum_key}").split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_real_fixtures_uploaded_to_s3(s3_real_archive, real_archive_keys, real_archive_dir):
    fs, root = fsspec.core.url_to_fs(s3_real_archive.url, **s3_real_archive.storage_options)
    for k in real_archive_keys:
        data = fs.cat_file(f"{root}/{k}")
        assert data == (real_archive_dir / k).read_bytes()
        assert fs.cat_file(f"{root}/{k}.CHECKSUM").split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert len(real_archive_keys) >= 4


# ---------------------------------------------------------------- realism of the generated rows
INTERVAL_CASES = [("spot", "1m", "2024-01-02"), ("spot", "1s", "2025-03-01T"), ("um", "15m", "2023-07-04"),
                  ("cm", "4h", "2024-02"), ("um", "1d", "2024-02"), ("um", "1w", "2024-04"),
                  ("spot", "1mo", "2025-06")]


@pytest.mark.parametrize("market,interval,period", INTERVAL_CASES)
def test_bars_are_realistic_and_on_grid(market, interval, period):
    short = period.endswith("T")                      # keep the first hour only (fast)
    period = period.rstrip("T")
    f = render_klines(market, "BTCUSDT" if market != "cm" else "BTCUSD_PERP", interval, period, seed=11,
                      missing=[slice(3600, None)] if short else ())
    rows = _rows(f.csv)
    assert len(rows) == f.rows_written == len(f.frame) > 0
    unit = 1000 if f.unit == "us" else 1
    o, h, low, c = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3, 4))
    assert (low <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all() and (low > 0).all()
    for i in (5, 7, 9, 10):
        assert all(float(r[i]) >= 0 for r in rows)
    assert all(r[8].isdigit() for r in rows) and all(r[11] == "0" for r in rows)
    assert all(float(r[9]) <= float(r[5]) for r in rows)
    opens = pd.DatetimeIndex(pd.to_datetime(np.array([int(r[0]) for r in rows]) // unit, unit="ms", utc=True))
    closes = np.array([int(r[6]) for r in rows])
    if interval == "1mo":
        nxt = opens + pd.DateOffset(months=1)
    else:
        nxt = opens + pd.Timedelta(milliseconds=schema.interval_ms(interval))
    ms = np.asarray(nxt.as_unit("ms").asi8)
    assert (closes == ms * unit - 1).all()                                # close = next open - 1 unit
    if interval == "1w":
        assert (opens.day_of_week == 0).all() and (opens == opens.normalize()).all()
    elif interval == "1mo":
        assert (opens.day == 1).all() and (opens == opens.normalize()).all()
    else:
        first = pd.Timestamp(period if len(period) == 10 else period + "-01", tz="UTC")
        step = pd.Timedelta(milliseconds=schema.interval_ms(interval))
        assert (opens == pd.date_range(first, periods=len(rows), freq=step)).all()
    assert [float(r[1]) for r in rows[1:]] == pytest.approx([float(r[4]) for r in rows[:-1]], rel=0.05)


def test_frame_matches_the_written_text():
    f = render_klines("cm", "BTCUSD_PERP", "1h", "2024-05-05", duplicates=3, shuffle=True, missing=[2])
    rows = sorted({r[0]: r for r in reversed(_rows(f.csv))}.values(), key=lambda r: int(r[0]))
    assert len(rows) == 23 == len(f.frame) and f.rows_written == 26
    fr = f.frame
    assert list(fr.columns) == schema.kline_schema("cm").names
    assert fr.open_time.dtype == "datetime64[us, UTC]" and fr.trades.dtype == np.int64
    assert [t.value // 1_000_000 for t in fr.open_time] == [int(r[0]) for r in rows]
    assert list(fr.base_volume) == [float(r[7]) for r in rows]
    assert list(fr.taker_buy_base_volume) == [float(r[10]) for r in rows]
    assert list(fr.volume) == [float(r[5]) for r in rows]
    assert (fr.source == "archive_daily").all()


def test_defaults_are_realistic():
    assert not render_klines("spot", "BTCUSDT", "1h", "2024-12-31").header
    spot25 = render_klines("spot", "BTCUSDT", "1h", "2025-01-01")
    assert spot25.unit == "us" and int(_rows(spot25.csv)[0][0]) == 1735689600000000
    assert not spot25.header
    assert render_klines("spot", "BTCUSDT", "1h", "2024-12").unit == "ms"
    assert render_klines("spot", "BTCUSDT", "1h", "2025-01").unit == "us"
    um = render_klines("um", "BTCUSDT", "1h", "2025-01-01")
    assert um.header and um.unit == "ms" and um.csv.startswith(b"open_time,open,high,low,close,volume,")
    assert not render_klines("um", "BTCUSDT", "1h", "2021-05-01").header
    assert render_funding("um", "BTCUSDT", "2020-01").header


def test_deterministic_for_a_seed():
    a = render_klines("um", "BTCUSDT", "1m", "2024-01-02", seed=5)
    b = render_klines("um", "BTCUSDT", "1m", "2024-01-02", seed=5)
    c = render_klines("um", "BTCUSDT", "1m", "2024-01-02", seed=6)
    assert a.zip == b.zip and a.sha256 == b.sha256
    assert a.csv != c.csv
    assert render_klines("um", "ETHUSDT", "1m", "2024-01-02", seed=5).csv != a.csv


def test_missing_and_duplicates():
    f = render_klines("spot", "BTCUSDT", "1m", "2024-01-02",
                      missing=[slice(10, 20), "2024-01-02 12:00", ("2024-01-02 23:58", "2024-01-02 23:59")],
                      duplicates=5)
    times = [int(r[0]) for r in _rows(f.csv)]
    assert len(times) == 1440 - 10 - 1 - 2 + 5 and len(set(times)) == 1427
    assert 1704153600000 + 10 * 60_000 not in times and 1704196800000 not in times
    assert max(times) == 1704153600000 + 1437 * 60_000


def test_funding_rows():
    f = render_funding("um", "BTCUSDT", "2024-04", seed=1)
    rows = list(stdcsv.reader(io.StringIO(f.csv.decode())))
    assert rows[0] == ["calc_time", "funding_interval_hours", "last_funding_rate"]
    t = np.array([int(r[0]) for r in rows[1:]])
    assert len(t) == 90 and all(r[1] == "8" for r in rows[1:])
    off = t - (1711929600000 + 8 * 3_600_000 * np.arange(90))
    assert (off >= 0).all() and (off < 14).all() and (off > 0).any()
    assert list(f.frame.funding_rate) == [float(r[2]) for r in rows[1:]]
    assert f.frame.mark_price.isna().all()


def test_bad_requests_raise():
    with pytest.raises(ValueError, match="1s"):
        render_klines("um", "BTCUSDT", "1s", "2024-01-02")
    with pytest.raises(ValueError, match="daily"):
        render_klines("um", "BTCUSDT", "1w", "2024-01-02")
    with pytest.raises(ValueError, match="no 'markPriceKlines'"):
        render_klines("spot", "BTCUSDT", "1m", "2024-01-02", data_type="markPriceKlines")
    with pytest.raises(ValueError, match="checksum"):
        ArchiveBuilder("memory://x").klines("um", "BTCUSDT", "1h", "2024-01-02", checksum="maybe")


# ---------------------------------------------------------------- the bundled sample archive
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-archive"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "data.binance.vision"


def test_bundled_real_files_are_byte_copies():
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    assert manifest["real"], "the sample archive lists no real files"
    for k in manifest["real"]:
        data = (SAMPLE / k).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["sha256"][k]
        if SHARED.is_dir():
            assert data == (SHARED / k).read_bytes()


def test_sample_archive_is_what_the_script_generates(tmp_path):
    """The committed generated files match a fresh run (CSV text; zip bytes may differ across
    zlib builds). If this fails after a builder change, rerun examples/make_sample_archive.py."""
    spec = importlib.util.spec_from_file_location("make_sample_archive", SAMPLE.parent / "make_sample_archive.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    real_root = SHARED if SHARED.is_dir() else SAMPLE
    fixtures = tmp_path / "fixtures"
    for k in manifest["real"]:
        (fixtures / k).parent.mkdir(parents=True, exist_ok=True)
        (fixtures / k).write_bytes((real_root / k).read_bytes())
    mod.main(["--fixtures", str(fixtures), "--out", str(tmp_path / "out"), "--seed", str(manifest["seed"])])
    fresh = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert fresh["generated"] == manifest["generated"]
    for k in manifest["generated"]:
        if k.endswith(".zip"):
            assert _member((SAMPLE / k).read_bytes())[1] == _member((tmp_path / "out" / k).read_bytes())[1], k
    assert all(parse_archive_key(k) for k in manifest["generated"] if k.endswith(".zip"))
