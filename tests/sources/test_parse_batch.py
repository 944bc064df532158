"""parse_batch: many files parsed together give exactly what parse_csv gives file by file —
the same tables bit for bit, or the same ParseError — whatever the files hold."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from cryptolake.layout import ArchiveKey
from cryptolake.sources import parse_batch
from cryptolake.sources.parse import KLINE_COLUMNS, ParseError, parse_csv, parse_file, source_of
from cryptolake.testing.archive import render_funding, render_klines

HEADER = ",".join(KLINE_COLUMNS).encode() + b"\n"
MINUTE_MS = 60_000


@pytest.fixture
def together_always(monkeypatch):
    """Parse groups together however small they are (the default waits for 1 MiB)."""
    monkeypatch.setattr(parse_batch, "TOGETHER_MIN_BYTES", 0)


def _one_by_one(items):
    out = []
    for csv, key in items:
        try:
            out.append(parse_csv(csv, key.market, key.data_type, source_of(key), key.symbol))
        except ParseError as e:
            out.append(ParseError(f"{key.key}: {e}"))
    return out


def _assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, ParseError):
            assert isinstance(g, ParseError) and str(g) == str(w)
            continue
        assert not isinstance(g, ParseError), g
        assert g.schema == w.schema
        assert g.num_rows == w.num_rows
        for name in w.schema.names:          # bit for bit: floats compared as integers
            a, b = g.column(name).combine_chunks(), w.column(name).combine_chunks()
            if pa.types.is_floating(a.type):
                assert a.is_null().equals(b.is_null()), name
                np.testing.assert_array_equal(a.fill_null(0.0).to_numpy().view(np.int64),
                                              b.fill_null(0.0).to_numpy().view(np.int64))
            else:
                assert a.equals(b), name


def _day_key(symbol: str, day: int) -> ArchiveKey:
    return ArchiveKey("um", "daily", "klines", symbol, "1m", f"2024-04-{day:02d}")


def test_a_month_of_generated_files_equals_parse_file_and_takes_the_joint_path():
    files = [render_klines("um", "BTCUSDT", "1m", f"2024-04-{d:02d}", seed=d,
                           duplicates=d % 3, shuffle=d % 4 == 0, missing=range(d % 5))
             for d in range(1, 31)]
    assert sum(len(f.csv) for f in files) > parse_batch.TOGETHER_MIN_BYTES
    got = parse_batch.parse_zips([(f.zip, f.key) for f in files])
    _assert_same(got, [parse_file(f.zip, f.key) for f in files])
    # the joint path really ran (not the one-by-one fallback)
    from cryptolake.sources.parse import _plan
    done = parse_batch._together(_plan("um", "klines"), "archive_daily",
                                 list(enumerate(f.csv for f in files)))
    assert sorted(done) == list(range(30))


@pytest.mark.usefixtures("together_always")
def test_headers_units_cadences_and_funding_mixed_in_one_call():
    files = [render_klines("um", "ETHUSDT", "1h", "2024-05-03", header=False),
             render_klines("spot", "ETHUSDT", "1h", "2025-02-03", unit="us"),
             render_klines("spot", "ETHUSDT", "1h", "2025-02-04", unit="us", header=False),
             render_klines("um", "ETHUSDT", "1h", "2024-05", duplicates=3),
             render_klines("cm", "ETHUSD_PERP", "1h", "2024-05-04", data_type="markPriceKlines"),
             render_funding("um", "ETHUSDT", "2024-05", duplicates=2, shuffle=True),
             render_funding("um", "ETHUSDT", "2024-06", header=False)]
    items = [(f.csv, f.key) for f in files]
    _assert_same(parse_batch.parse_csvs(items), _one_by_one(items))


def _lines(day: int, n: int) -> list[bytes]:
    start = 1_711_929_600_000 + (day - 1) * 86_400_000
    return [f"{start + i * MINUTE_MS},1.5,2.5,0.5,1.25,10.0,{start + i * MINUTE_MS + 59_999},"
            f"12.5,7,5.0,6.25,0\n".encode() for i in range(n)]


BAD = {
    "nan": lambda ls: ls[:1] + [ls[1].replace(b",1.5,", b",nan,")] + ls[2:],
    "inf": lambda ls: ls[:1] + [ls[1].replace(b",10.0,", b",inf,")] + ls[2:],
    "blank line": lambda ls: ls[:2] + [b"\n"] + ls[2:],
    "float count": lambda ls: ls[:1] + [ls[1].replace(b",7,", b",7.5,")] + ls[2:],
    "empty value": lambda ls: ls[:1] + [ls[1].replace(b",7,", b",,")] + ls[2:],
    "short row": lambda ls: ls[:1] + [b",".join(ls[1].split(b",")[:8]) + b"\n"] + ls[2:],
    "long row": lambda ls: ls[:1] + [ls[1][:-1] + b",9\n"] + ls[2:],
    "quoted": lambda ls: ls[:1] + [ls[1].replace(b",1.5,", b',"1.5",')] + ls[2:],
    "crlf": lambda ls: [x.replace(b"\n", b"\r\n") for x in ls],
    "bad header": lambda ls: [b"open_time,open,high\n"] + ls,
    "header only": lambda ls: [HEADER],
    "blank file": lambda ls: [b"  \n"],
    "no final newline": lambda ls: ls[:-1] + [ls[-1][:-1]],
    "time in 1970": lambda ls: [b"5" + ls[0][ls[0].index(b","):]] + ls[1:],
    "negative time": lambda ls: [b"-1" + ls[0][ls[0].index(b","):]] + ls[1:],
    "word": lambda ls: ls[:1] + [ls[1].replace(b",2.5,", b",abc,")] + ls[2:],
}


@pytest.mark.usefixtures("together_always")
@pytest.mark.parametrize("bad", sorted(BAD))
def test_an_odd_file_among_good_ones_gives_what_it_gives_alone(bad):
    """Each odd file (malformed or only unusual) gets the very table or ParseError it gets
    alone, and its good neighbours still parse."""
    items = []
    for day in range(1, 6):
        lines = _lines(day, 50)
        if day == 3:
            lines = BAD[bad](lines)
        if day % 2:
            lines = [HEADER] + lines
        items.append((b"".join(lines), _day_key("BTCUSDT", day)))
    got = parse_batch.parse_csvs(items)
    want = _one_by_one(items)
    _assert_same(got, want)
    assert all(not isinstance(g, ParseError) for i, g in enumerate(got) if i != 2)


def _float_text(draw, x: float) -> str:
    style = draw(st.sampled_from(["repr", "%.17g", "%.8f", "%.3e", "%.12g", "%.1f"]))
    return repr(x) if style == "repr" else style % x


@st.composite
def _kline_files(draw):
    """Files of kline rows whose prices and volumes are written in assorted decimal styles."""
    values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False) | \
        st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 0.1, 0.30000000000000004, 123456789.12345678])
    files = []
    for day in range(1, draw(st.integers(1, 4)) + 1):
        start = 1_711_929_600_000 + (day - 1) * 86_400_000
        lines = [HEADER] if draw(st.booleans()) else []
        for i in range(draw(st.integers(1, 12))):
            t = start + i * MINUTE_MS
            nums = [_float_text(draw, draw(values)) for _ in range(8)]
            lines.append(f"{t},{','.join(nums[:5])},{t + 59_999},{nums[5]},"
                         f"{draw(st.integers(0, 2**62))},{nums[6]},{nums[7]},0\n".encode())
        files.append((b"".join(lines), _day_key("SOLUSDT", day)))
    return files


@pytest.mark.usefixtures("together_always")
@settings(max_examples=60, deadline=None)
@given(_kline_files())
def test_polars_and_pyarrow_read_every_decimal_to_the_same_bits(items):
    got = parse_batch.parse_csvs(items)
    _assert_same(got, _one_by_one(items))
    from cryptolake.sources.parse import _plan
    assert len(parse_batch._together(_plan("um", "klines"), "archive_daily",
                                     list(enumerate(c for c, _ in items)))) == len(items)


def test_corrupt_zip_and_unknown_cadence_are_that_files_errors():
    good = render_klines("um", "BTCUSDT", "1m", "2024-04-01")
    bad_key = ArchiveKey("um", "weekly", "klines", "BTCUSDT", "1m", "2024-04-02")
    got = parse_batch.parse_zips([(good.zip, good.key), (b"PK\x03\x04 not a zip", good.key),
                                  (good.zip, bad_key)])
    _assert_same(got[:1], [parse_file(good.zip, good.key)])
    with pytest.raises(ParseError) as corrupt:
        parse_file(b"PK\x03\x04 not a zip", good.key)
    assert isinstance(got[1], ParseError) and str(got[1]) == str(corrupt.value)
    assert isinstance(got[2], ParseError) and "weekly" in str(got[2])
    assert parse_batch.parse_csvs([]) == []


@pytest.mark.parametrize("max_bytes", [1, 150_000, 400_000])
def test_runs_capped_in_bytes_give_the_same_tables(monkeypatch, max_bytes):
    """Groups are parsed in runs of at most TOGETHER_MAX_BYTES (a bigger file alone), and
    parse_zips parses whenever that much CSV is waiting: the tables do not change."""
    monkeypatch.setattr(parse_batch, "TOGETHER_MIN_BYTES", 0)
    monkeypatch.setattr(parse_batch, "TOGETHER_MAX_BYTES", max_bytes)
    files = [render_klines("um", "BTCUSDT", "1m", f"2024-04-{d:02d}", seed=d, duplicates=d % 2)
             for d in range(1, 8)]
    files.insert(3, render_funding("um", "BTCUSDT", "2024-04"))
    want = [parse_file(f.zip, f.key) for f in files]
    _assert_same(parse_batch.parse_zips([(f.zip, f.key) for f in files]), want)
    _assert_same(parse_batch.parse_csvs([(f.csv, f.key) for f in files]), want)
