"""stream.py: iter_parse gives exactly parse_file's rows batch by batch (dedup across batches,
out-of-order rows kept and counted), IdRuns is a set, sha256_stream hashes what it copies."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptolake import schema
from cryptolake.sources.parse import ParseError, parse_file
from cryptolake.sources.stream import IdRuns, iter_parse, sha256_stream
from cryptolake.testing.archive import render_funding, render_klines, zip_csv
from cryptolake.testing.archive_types import (render_agg_trades, render_book_depth,
                                              render_book_ticker, render_liquidation_snapshot,
                                              render_metrics, render_trades)


def _concat(stream, market, data_type) -> pd.DataFrame:
    tables = list(stream)
    target = schema.silver_schema(market, data_type)
    for t in tables:
        assert t.schema == target
    return (pa.concat_tables(tables) if tables else target.empty_table()).to_pandas()


FILES = [
    lambda: render_agg_trades("um", "BTCUSDT", "2024-01-02", rows=3000, duplicates=40, shuffle=True),
    lambda: render_agg_trades("spot", "BTCUSDT", "2025-01-02", rows=3000, duplicates=40),
    lambda: render_trades("cm", "BTCUSD_PERP", "2024-01", rows=3000, duplicates="all"),
    lambda: render_trades("spot", "ETHUSDT", "2021-04-24", rows=2000),
    lambda: render_book_ticker("um", "BTCUSDT", "2023-07-01", rows=2500, duplicates=30),
    lambda: render_metrics("cm", "BTCUSD_PERP", "2024-01-01", duplicates="all", empty=[1, 2]),
    lambda: render_book_depth("um", "BTCUSDT", "2024-01-01", duplicates=11, shuffle=True),
    lambda: render_liquidation_snapshot("cm", "BTCUSD_PERP", "2024-01-01", duplicates=9),
    lambda: render_klines("um", "BTCUSDT", "1m", "2024-01-02", duplicates=5, shuffle=True),
    lambda: render_funding("um", "BTCUSDT", "2024-01", duplicates=2),
]


@pytest.mark.parametrize("make", FILES)
@pytest.mark.parametrize("batch_rows", [1, 97, 1_000_000])
def test_stream_equals_parse_file(make, batch_rows):
    f = make()
    s = iter_parse(f.zip, f.key, batch_rows=batch_rows)
    df = _concat(s, f.key.market, f.key.data_type)
    if s.out_of_order == 0:
        pd.testing.assert_frame_equal(df, f.frame, check_exact=True)
    else:                                                        # batches are each sorted
        tcol = schema.time_column(f.key.data_type)
        keys = list(dict.fromkeys([tcol, *schema.natural_key(f.key.data_type)]))
        pd.testing.assert_frame_equal(df.sort_values(keys, ignore_index=True), f.frame, check_exact=True)
    assert s.rows == len(f.frame)
    assert s.rows_read == f.rows_written
    assert s.duplicates == f.rows_written - len(f.frame)
    if f.key.data_type in ("aggTrades", "trades", "bookTicker") and batch_rows < 1000:
        assert s.batches > 5                                     # really streamed in pieces


def test_duplicates_across_batch_boundaries_are_dropped_and_counted():
    f = render_agg_trades("um", "BTCUSDT", "2022-09", rows=4000, duplicates="all")
    s = iter_parse(f.zip, f.key, batch_rows=333)                 # odd size: pairs straddle
    df = _concat(s, "um", "aggTrades")
    pd.testing.assert_frame_equal(df, f.frame, check_exact=True)
    assert s.duplicates == 4000 and s.out_of_order == 0
    assert "4,000 duplicates" in repr(s)


def test_interleaved_rows_are_kept_and_reported_out_of_order():
    f = render_agg_trades("um", "BTCUSDT", "2023-05", rows=6000, interleave=25, duplicates=10)
    s = iter_parse(f.zip, f.key, batch_rows=500)
    df = _concat(s, "um", "aggTrades")
    assert s.out_of_order > 0 and s.duplicates == 10
    assert len(df) == 6000 and df.agg_trade_id.is_unique
    pd.testing.assert_frame_equal(df.sort_values(["transact_time", "agg_trade_id"], ignore_index=True),
                                  f.frame, check_exact=True)
    # one batch holding everything: globally sorted again
    s = iter_parse(f.zip, f.key, batch_rows=10**6)
    pd.testing.assert_frame_equal(_concat(s, "um", "aggTrades"), f.frame, check_exact=True)
    assert s.out_of_order == 0


def test_paths_and_file_objects(tmp_path):
    f = render_trades("um", "BTCUSDT", "2024-01-03", rows=1500)
    p = tmp_path / f.key.filename
    p.write_bytes(f.zip)
    for src in (p, str(p), io.BytesIO(f.zip), bytearray(f.zip)):
        pd.testing.assert_frame_equal(_concat(iter_parse(src, f.key, batch_rows=200), "um", "trades"),
                                      f.frame, check_exact=True)
    with p.open("rb") as fh:                                     # a caller's file stays open
        list(iter_parse(fh, f.key, batch_rows=200))
        assert not fh.closed


def test_empty_and_header_only_streams():
    for csv in (b"", b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"):
        f = render_agg_trades("um", "BTCUSDT", "2024-01-02", rows=1)
        s = iter_parse(zip_csv(csv, "x.csv"), f.key)
        assert list(s) == [] and s.rows == 0


def test_stream_errors_are_parse_errors_naming_the_file():
    f = render_agg_trades("um", "BTCUSDT", "2024-01-02", rows=20000)
    with pytest.raises(ParseError, match="BTCUSDT-aggTrades-2024-01-02.zip.*corrupt"):
        list(iter_parse(b"not a zip", f.key))
    damaged = bytearray(f.zip)
    mid = len(damaged) // 2
    damaged[mid: mid + 64] = bytes(64)                           # inside the deflate stream
    with pytest.raises(ParseError, match="BTCUSDT-aggTrades-2024-01-02.zip"):
        list(iter_parse(bytes(damaged), f.key, batch_rows=1000))
    bad = f.csv.replace(b"true", b"maybe", 1)
    with pytest.raises(ParseError, match="invalid value 'maybe'"):
        list(iter_parse(zip_csv(bad, "x.csv"), f.key, batch_rows=1000))
    with pytest.raises(ValueError, match="batch_rows must be a positive int"):
        iter_parse(f.zip, f.key, batch_rows=0)
    with pytest.raises(TypeError, match="seekable binary file"):
        list(iter_parse(12345, f.key))


def test_importable_from_parse_module():
    from cryptolake.sources import parse, stream
    assert parse.iter_parse is stream.iter_parse and parse.sha256_stream is stream.sha256_stream
    with pytest.raises(AttributeError):
        parse.no_such_name


# ---------------------------------------------------------------- IdRuns / sha256_stream
def test_id_runs_merge_contiguous_ids():
    r = IdRuns()
    r.add(np.arange(100, 200))
    r.add(np.arange(300, 400))
    assert len(r) == 2 and r.max == 399
    r.add(np.arange(200, 300))                                   # fills the hole exactly
    assert len(r) == 1 and (r.starts[0], r.ends[0]) == (100, 399)
    assert list(r.contains(np.array([99, 100, 250, 399, 400]))) == [False, True, True, True, False]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(st.integers(-50, 300), max_size=40), max_size=8),
       st.lists(st.integers(-60, 320), max_size=50))
def test_id_runs_behave_like_a_set(batches, probes):
    r, ref = IdRuns(), set()
    for b in batches:
        r.add(np.array(b, dtype=np.int64))
        ref |= set(b)
        assert np.all(r.starts[1:] > r.ends[:-1] + 1)            # disjoint, non-adjacent
        assert np.all(r.starts <= r.ends)
    got = r.contains(np.array(probes, dtype=np.int64))
    assert list(got) == [p in ref for p in probes]
    assert sum(int(e - s + 1) for s, e in zip(r.starts, r.ends)) == len(ref)


def test_sha256_stream_hashes_and_copies_in_chunks():
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    dst = io.BytesIO()
    digest, n = sha256_stream(io.BytesIO(data), dst, chunk_size=1 << 16)
    assert digest == hashlib.sha256(data).hexdigest() and n == len(data)
    assert dst.getvalue() == data
    assert sha256_stream(io.BytesIO(b"")) == (hashlib.sha256(b"").hexdigest(), 0)
