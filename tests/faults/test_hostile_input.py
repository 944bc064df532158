"""Hostile input: zip members with `..`/absolute names, a zip bomb, hostile symbols and table
names, enormous or malformed CSV, non-numeric prices, timestamps out of range, SQL that tries
to write or read outside the lake. Each is a clear error (ValueError/ParseError) or a
quarantined file, the ingest of the other files goes on, and nothing is written outside the
lake (a temp "outside" dir and the filesystem root are snapshotted before and after)."""
from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cryptolake as cl
from cryptolake.layout import ArchiveKey
from cryptolake.sources.parse import ParseError, parse_csv, parse_file, read_zip
from cryptolake.testing.archive import ArchiveBuilder, checksum_line

from .conftest import check_and_record, expected_rows

TODAY = dt.date(2026, 11, 26)
REPO = Path(__file__).resolve().parents[2]


def snapshot(*dirs) -> dict:
    out = {}
    for d in dirs:
        d = Path(d)
        if d == Path("/"):
            out["/"] = sorted(os.listdir("/"))
            continue
        out[str(d)] = sorted((str(p), p.stat().st_size) for p in d.rglob("*")) if d.exists() else []
    return out


@pytest.fixture
def outside(tmp_path):
    """A directory next to the lake that nothing may write into; checked with `/` after."""
    o = tmp_path / "outside"
    o.mkdir()
    (o / "keep.txt").write_text("untouched")
    before = snapshot(o, "/")
    yield o
    after = snapshot(o, "/")
    assert after[str(o)] == before[str(o)], "something was written next to the lake"
    assert after["/"] == before["/"], "something was written at the filesystem root"
    assert not [n for n in os.listdir("/tmp") if n.startswith(("pwned", "evil"))]


def zip_of(members: dict[str, bytes], ratio_member=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data,
                        compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


# ---------------------------------------------------------------- zips
@pytest.mark.parametrize("name", ["../../evil.csv", "/tmp/evil.csv", "a/../../evil.csv",
                                  "..\\..\\evil.csv", "C:/evil.csv", "dir/BTCUSDT-1h-2024-05-01.csv"])
def test_zip_member_with_a_path_is_a_parse_error(name):
    data = zip_of({name: b"1,2,3\n"})
    with pytest.raises(ParseError, match="member name"):
        read_zip(data)


def test_zip_bomb_is_refused_before_inflating():
    bomb = zip_of({"BTCUSDT-1h-2024-05-01.csv": b"0" * (300 << 20)})     # 300 MiB of zeros
    assert len(bomb) < 1 << 20
    with pytest.raises(ParseError, match="zip bomb|inflates"):
        read_zip(bomb)


def test_hostile_zips_in_an_archive_are_quarantined_and_the_rest_ingested(tmp_path, outside):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    good = [b.klines("um", "AAAUSDT", "1h", d) for d in ("2024-05-01", "2024-05-02")]
    hostile = {"2024-05-03": zip_of({"../../outside/pwned": b"1,2\n"}),
               "2024-05-04": zip_of({"AAAUSDT-1h-2024-05-04.csv": b"0" * (300 << 20)}),
               "2024-05-05": zip_of({str(outside / "pwned"): b"1,2\n"})}
    for day, data in hostile.items():
        k = ArchiveKey("um", "daily", "klines", "AAAUSDT", "1h", day)
        b._put(k.key, data)
        b._put(k.checksum_key, checksum_line(data, k.filename))
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    r = lake.ingest("um", "klines", "AAAUSDT", interval="1h", start="2024-05-01", end="2024-05-05",
                    progress=False, today=TODAY)
    st_ = r.files.set_index("key")["status"]
    assert (st_[[k.key for k in good]] == "downloaded").all()
    assert (st_.drop([k.key for k in good]) == "quarantined").all(), r.files
    check_and_record("hostile zips (path, bomb)", lake, "um_klines_1h", expected_rows(b, good))


# ---------------------------------------------------------------- CSV
KLINE = b"1714521600000,1.0,2.0,0.5,1.5,10.0,1714525199999,15.0,5,4.0,6.0,0\n"


@pytest.mark.parametrize("csv, match", [
    (KLINE.replace(b"1.5", b"abc"), "malformed"),                      # non-numeric price
    (KLINE.replace(b"1.5", b"NaN"), "not a number|NaN|malformed"),       # NaN price
    (KLINE.replace(b"1.5", b"inf"), "not a number|inf|malformed"),       # infinite price
    (KLINE.replace(b"1714521600000", b"99999999999999999999"), "malformed"),   # > int64
    (KLINE.replace(b"1714521600000", b"9000000000000000000"), "out of range|outside 2000"),  # year 287,000
    (KLINE.replace(b"1714521600000", b"1"), "out of range|outside 2000"),             # 1970
    (KLINE.replace(b"1714521600000", b"-5"), "negative|out of range"),
    (KLINE[:-1] + b"," + b"x" * (8 << 20) + b"\n", "malformed"),         # one 8 MiB line
    (KLINE.replace(b",", b";"), "malformed"),
    (b"\x00\xff\xfe" * 1000 + b"\n", "malformed|header"),
    (KLINE + b'"unterminated,1,2\n', "malformed"),
])
def test_hostile_csv_is_a_parse_error(csv, match):
    with pytest.raises(ParseError, match=match):
        parse_csv(csv, "um", "klines", "archive_daily")


def _real_rows(real_archive_dir) -> list[tuple[str, bytes]]:
    out = []
    for p in sorted(Path(real_archive_dir).rglob("*.zip")):
        rel = p.relative_to(real_archive_dir).as_posix()
        from cryptolake.layout import parse_archive_key
        k = parse_archive_key(rel)
        if k is None or k.data_type not in ("klines", "fundingRate"):
            continue
        out.append((rel, read_zip(p.read_bytes())))
    return out


@pytest.fixture(scope="module")
def real_csvs(tmp_path_factory):
    import json
    import shutil
    root = tmp_path_factory.mktemp("real")
    sample = REPO / "examples" / "sample-archive"
    for key in json.loads((sample / "manifest.json").read_text())["real"]:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample / key, root / key)
    return _real_rows(root)


_MUTATIONS = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10**6), st.binary(min_size=0, max_size=8)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("field"), st.integers(0, 10**6),
              st.sampled_from([b"", b"-1", b"abc", b"1e400", b"NaN", b"9" * 25, b"0x10", b'"', b"\r",
                               b"1,2", b"\n", b"-0", b"1e-400", b"99999999999999999"])),
)


def _mutate(csv: bytes, muts) -> bytes:
    b = bytearray(csv)
    for kind, pos, arg in muts:
        i = pos % (len(b) + 1)
        if kind == "replace":
            b[i:i + len(arg)] = arg
        elif kind == "insert":
            b[i:i] = arg
        elif kind == "delete":
            del b[i:i + arg]
        else:   # replace one comma-separated field
            j = b.find(b",", i)
            k = b.find(b",", j + 1) if j >= 0 else -1
            if j >= 0 and k >= 0:
                b[j + 1:k] = arg
    return bytes(b)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_parser_with_mutated_real_rows(real_csvs, data):
    """Any mutation of a real archive file gives a table or a ParseError, never another
    exception (and never rows with out-of-range times or non-finite prices)."""
    import numpy as np
    from cryptolake.layout import parse_archive_key
    rel, csv = data.draw(st.sampled_from(real_csvs))
    key = parse_archive_key(rel)
    lines = csv.splitlines(keepends=True)
    lo = data.draw(st.integers(0, max(0, len(lines) - 1)))
    csv = b"".join(lines[lo:lo + 6])          # a few real rows (a header stays when drawn)
    mutated = _mutate(csv, data.draw(st.lists(_MUTATIONS, min_size=1, max_size=4)))
    try:
        t = parse_csv(mutated, key.market, key.data_type, "archive_daily")
    except ParseError:
        return
    tcol = "open_time" if "open_time" in t.column_names else "funding_time"
    if t.num_rows:
        us = t[tcol].cast("int64").to_numpy()
        assert us.min() >= 946_684_800_000_000 and us.max() < 4_102_444_800_000_000
        for c in ("open", "high", "low", "close", "funding_rate"):
            if c in t.column_names:
                assert np.isfinite(t[c].to_numpy(zero_copy_only=False)).all(), c


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("symbol", ["../BTCUSDT", "BTC/USDT", "..", "BTCUSDT; rm -rf /",
                                    "$(touch /tmp/pwned)", "`id`", "BTC USDT", "BTCUSDT\x00",
                                    "/etc/passwd", "BTCUSDT|cat", "*", "BTC%2FUSDT", ""])
def test_hostile_symbols_are_value_errors_before_any_io(tmp_path, outside, symbol):
    lake = cl.Lake(str(tmp_path / "lake"),
                   archive=cl.BinanceArchive("file:///nonexistent-cryptolake-archive"))
    with pytest.raises(ValueError, match="symbol"):
        lake.ingest("um", "klines", [symbol], interval="1h", start="2024-05-01", end="2024-05-01",
                    progress=False, today=TODAY)
    with pytest.raises(ValueError, match="symbol"):
        lake.archive.files("um", "klines", symbol, "1h")
    assert not (tmp_path / "lake" / "silver").exists()


def test_hostile_symbol_directories_upstream_are_ignored(tmp_path, outside):
    root = tmp_path / "archive"
    b = ArchiveBuilder(root.as_uri())
    good = b.klines("um", "AAAUSDT", "1h", "2024-05-01")
    sym_dir = root / "data/futures/um/daily/klines"
    for bad in ("..", "BTC;USDT", "a b", "$(x)"):
        d = sym_dir / bad / "1h"
        if bad == "..":
            continue
        d.mkdir(parents=True)
        (d / f"{bad}-1h-2024-05-01.zip").write_bytes(b.file(good).zip)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    assert lake.archive.symbols("um", "klines") == ["AAAUSDT"]
    r = lake.ingest("um", "klines", None, interval="1h", start="2024-05-01", end="2024-05-01",
                    progress=False, today=TODAY)
    assert r.ok and r.files["key"].tolist() == [good.key]
    check_and_record("hostile symbol dirs upstream", lake, "um_klines_1h", expected_rows(b, [good]))


@pytest.mark.parametrize("table", ["../../etc", "silver.x", "um_klines_1h; DROP", "../bronze/_manifest",
                                   "um_trades", "um_klines_7m", "", "/abs"])
def test_a_table_name_that_is_not_ours_is_a_clear_error(tmp_path, outside, table):
    lake = cl.Lake(str(tmp_path / "lake"))
    with pytest.raises((KeyError, ValueError)):
        lake.silver[table]
    with pytest.raises(ValueError):
        lake.ingest("um", table, None, interval="1h", progress=False, today=TODAY)
    assert not any((tmp_path / "lake").rglob("*.parquet"))


# ---------------------------------------------------------------- SQL
@pytest.fixture
def small_lake(tmp_path):
    root = tmp_path / "archive"
    b = ArchiveBuilder(root.as_uri())
    b.klines("um", "AAAUSDT", "1h", "2024-05-01")
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    lake.ingest("um", "klines", None, interval="1h", start="2024-05-01", end="2024-05-01",
                progress=False, today=TODAY)
    return lake


def hostile_sql(out: Path) -> list[str]:
    f = str(out / "pwned")
    return [
        f"COPY (SELECT * FROM silver.um_klines_1h) TO '{f}.csv'",
        f"COPY silver.um_klines_1h TO '{f}.parquet' (FORMAT parquet)",
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{f}.csv'",
        f"EXPLAIN ANALYZE SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM '/etc/passwd'",
        f"SELECT * FROM read_parquet('{out}/*.parquet')",
        f"ATTACH '{f}.db' AS x",
        f"ATTACH '{f}.db' AS x; CREATE TABLE x.t AS SELECT 1",
        "INSTALL httpfs", "LOAD httpfs", "INSTALL '/tmp/evil.duckdb_extension'",
        "CREATE TABLE t AS SELECT 1", "CREATE VIEW v AS SELECT 1",
        "CREATE MACRO m(x) AS x", "DROP VIEW silver.um_klines_1h",
        "PRAGMA enable_external_access", "SET enable_external_access=true",
        "RESET enable_external_access", "SET lock_configuration=false",
        "CALL pragma_version()", f"EXPORT DATABASE '{out}/db'",
        "SELECT 1; COPY (SELECT 1) TO '/tmp/pwned.csv'",
        "INSERT INTO silver.um_klines_1h SELECT * FROM silver.um_klines_1h",
        "DELETE FROM silver.um_klines_1h", "UPDATE silver.um_klines_1h SET close = 0",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM parquet_metadata('/etc/passwd')",
        "SELECT getenv('HOME')",
        f"SELECT * FROM duckdb_secrets()",
        "VACUUM", "CHECKPOINT", "DETACH memory", "USE silver",
    ]


def test_hostile_sql_is_refused_and_writes_nothing(small_lake, outside):
    lake = small_lake
    before = snapshot(lake.storage.url if "://" not in lake.storage.url else "/nonexistent")
    refused, answered = [], []
    for q in hostile_sql(outside):
        try:
            df = lake.sql(q)
        except ValueError as e:
            refused.append((q, str(e)[:80]))
            continue
        answered.append((q, df.head(3).to_dict()))
    assert not answered, answered
    assert snapshot(lake.storage.url if "://" not in lake.storage.url else "/nonexistent") == before
    n = lake.sql("SELECT count(*) AS n FROM silver.um_klines_1h")
    assert n["n"].item() == 24                  # still readable, unchanged
