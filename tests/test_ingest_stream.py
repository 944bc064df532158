"""Big files stream through lake.ingest (aggTrades, trades, bookTicker): batches of
$CRYPTOLAKE_BATCH_ROWS rows, deduplicated across batches and across the files that feed a
month, in ONE Delta commit; a bad download leaves nothing behind; merge_sorted is exact."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cryptolake as cl
from cryptolake import layout
from cryptolake.layout import parse_archive_key
from cryptolake.sources.stream import Unsorted, merge_sorted
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.archive_types import render_agg_trades, render_trades

TODAY = dt.date(2026, 11, 26)


def _by_day(f, time_index: int):
    """{day: CSV data lines} of a rendered file, and its header line (or None)."""
    lines = f.csv.rstrip(b"\n").split(b"\n")
    header = lines[0] if f.header else None
    days: dict[str, list[bytes]] = {}
    for line in lines[1:] if f.header else lines:
        t = int(line.split(b",")[time_index])
        day = str(np.datetime64(t, "ms" if f.unit == "ms" else "us").astype("datetime64[D]"))
        days.setdefault(day, []).append(line)
    return header, days


def _csv(header, lines) -> bytes:
    return b"\n".join(([header] if header is not None else []) + lines) + b"\n"


def _silver(lake, table, symbol, tcol, key):
    return lake.silver[table].read(symbol).reset_index().sort_values([tcol, key], ignore_index=True)


@pytest.mark.parametrize("batch_rows", ["97", "1000000"])
def test_month_fed_by_monthly_and_daily_files_streams_exactly_in_one_commit(tmp_path, monkeypatch, batch_rows):
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", batch_rows)
    full = render_agg_trades("um", "BTCUSDT", "2024-01", rows=6000, duplicates=300, seed=3)
    header, days = _by_day(full, 5)
    last = max(days)
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    daily = {d: parse_archive_key(f"data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-{d}.zip")
             for d in ("2024-01-02", "2024-01-03", last)}
    for d, k in daily.items():          # days the monthly file repeats, and one it lacks
        b.raw(k, _csv(header, days[d]))
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    r1 = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-01-01", end="2024-01-31",
                     progress=False, today=TODAY, top_up=False)
    assert set(r1.files["status"]) == {"downloaded"}
    v1 = lake.storage.open_table("silver/um_agg_trades").version()

    monthly = parse_archive_key("data/futures/um/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01.zip")
    b.raw(monthly, _csv(header, [x for d in sorted(days) if d != last for x in days[d]]))
    r2 = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-01-01", end="2024-01-31",
                     progress=False, today=TODAY, top_up=False)
    assert r2.ok, r2.errors
    assert list(r2.files.loc[r2.files.status == "downloaded", "key"]) == [monthly.key]
    assert lake.storage.open_table("silver/um_agg_trades").version() == v1 + 1   # one commit

    # independent expectation: the builder's rows; archive_first keeps the monthly file's row
    # where both hold it, the daily file's rows on the day the monthly file lacks
    want = full.frame.copy()
    on_last = want["transact_time"].dt.strftime("%Y-%m-%d") == last
    want["source"] = np.where(on_last, "archive_daily", "archive_monthly")
    got = _silver(lake, "um_agg_trades", "BTCUSDT", "transact_time", "agg_trade_id")
    assert len(got) == len(want) == 6000 and r2.rows["um_agg_trades"] == 6000
    for col in want.columns:
        pd.testing.assert_series_equal(got[col], want[col], check_names=False, check_dtype=False)
    raw = lake.silver["um_agg_trades"].read("BTCUSDT").reset_index()       # stored in time order
    assert raw["transact_time"].is_monotonic_increasing

    stats = lake.silver["um_agg_trades"].partition_stats().set_index("month").loc["2024-01"]
    assert stats["rows"] == 6000 and stats["off_grid"] == 0
    assert pd.Timestamp(stats["first"]) == want["transact_time"].min()
    assert pd.Timestamp(stats["last"]) == want["transact_time"].max()
    m = lake.bronze.files(key=monthly.key).iloc[0]
    assert m["rows"] == 6000 - int(on_last.sum()) and bool(m["in_silver"])   # span noted while streaming
    assert pd.Timestamp(m["last_time"]) == want.loc[~on_last, "transact_time"].max()

    again = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-01-01", end="2024-01-31",
                        progress=False, today=TODAY, top_up=False)
    assert set(again.files["status"]) == {"unchanged"}
    assert len(lake.silver["um_agg_trades"].read("BTCUSDT")) == 6000


def test_streamed_trades_dedup_across_batches_and_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", "50")
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    keys = [b.trades("spot", "ETHUSDT", d, rows=700, duplicates="all", seed=i)
            for i, d in enumerate(("2025-02-01", "2025-02-02", "2025-03-01"))]
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    r = lake.ingest("spot", "trades", "ETHUSDT", start="2025-02-01", end="2025-03-01",
                    progress=False, today=TODAY, top_up=False)
    assert r.ok and r.rows["spot_trades"] == 2100
    want = pd.concat([b.frame(k) for k in keys]).sort_values(["time", "id"], ignore_index=True)
    got = _silver(lake, "spot_trades", "ETHUSDT", "time", "id")
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    from cryptolake.ingest import rebuild_table          # every partition again, from bronze
    assert rebuild_table(lake, "spot_trades", progress=False) == 2100
    got = _silver(lake, "spot_trades", "ETHUSDT", "time", "id")
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_interleaved_file_beyond_one_batch_is_merged_exactly(tmp_path, monkeypatch):
    """Rows that go back in time across batches (gotcha 9 in a big file): still exact."""
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", "500")
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    key = b.agg_trades("um", "BTCUSDT", "2023-05", rows=6000, interleave=25, duplicates=10)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    r = lake.ingest("um", "aggTrades", "BTCUSDT", start="2023-05-01", end="2023-05-31",
                    progress=False, today=TODAY, top_up=False)
    assert r.ok and r.rows["um_agg_trades"] == 6000
    got = _silver(lake, "um_agg_trades", "BTCUSDT", "transact_time", "agg_trade_id")
    want = b.frame(key)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def _leftovers(lake) -> list[str]:
    return [p for p in lake.storage.find("bronze") if ".tmp-" in p]


def test_checksum_mismatch_in_a_streamed_file_leaves_nothing_in_bronze_or_silver(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", "100")
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    bad = b.agg_trades("um", "BTCUSDT", "2024-03-01", rows=3000, checksum="bad")
    good = b.agg_trades("um", "BTCUSDT", "2024-03-02", rows=1000)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    r = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-03-01", end="2024-03-02",
                    progress=False, today=TODAY, top_up=False)
    st_ = dict(zip(r.files["key"], r.files["status"]))
    assert st_ == {bad.key: "quarantined", good.key: "downloaded"}
    assert "sha256 mismatch" in " ".join(r.errors)
    assert not lake.storage.exists(layout.bronze_path(bad.key))
    assert lake.storage.exists(layout.quarantine_path(bad.key))
    assert _leftovers(lake) == []
    got = lake.silver["um_agg_trades"].read("BTCUSDT")
    assert len(got) == 1000 and set(got["source"]) == {"archive_daily"}
    assert got.index.min() >= pd.Timestamp("2024-03-02", tz="UTC")


def test_streamed_file_failing_part_way_is_quarantined_whole(tmp_path, monkeypatch):
    """A verified file whose CSV breaks after many good batches: none of its rows land."""
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", "100")
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    f = render_agg_trades("um", "BTCUSDT", "2024-03-01", rows=3000)
    lines = f.csv.rstrip(b"\n").split(b"\n")
    lines[2500] = b"not,a,trade"
    broken = b.raw(f.key, b"\n".join(lines) + b"\n")
    good = b.agg_trades("um", "BTCUSDT", "2024-03-02", rows=1000)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    r = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-03-01", end="2024-03-02",
                    progress=False, today=TODAY, top_up=False)
    st_ = dict(zip(r.files["key"], r.files["status"]))
    assert st_ == {broken.key: "quarantined", good.key: "downloaded"}
    assert any("does not parse" in e for e in r.errors)
    assert not lake.storage.exists(layout.bronze_path(broken.key))
    assert len(lake.silver["um_agg_trades"].read("BTCUSDT")) == 1000
    assert lake.bronze.files(key=broken.key).iloc[0]["status"] == "quarantined"


def test_streamed_ingest_from_and_to_moto_s3(s3_archive, s3_lake, monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_BATCH_ROWS", "200")
    b = s3_archive.builder
    k1 = b.agg_trades("um", "BTCUSDT", "2024-03-01", rows=1500, duplicates=40)
    k2 = b.agg_trades("um", "BTCUSDT", "2024-03-02", rows=900, checksum="bad")
    lake = cl.Lake(s3_lake.url, storage_options=s3_lake.storage_options,
                   archive=cl.BinanceArchive(s3_archive.url, s3_archive.storage_options))
    r = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-03-01", end="2024-03-02",
                    progress=False, today=TODAY, top_up=False)
    assert dict(zip(r.files["key"], r.files["status"])) == {k1.key: "downloaded", k2.key: "quarantined"}
    got = _silver(lake, "um_agg_trades", "BTCUSDT", "transact_time", "agg_trade_id")
    want = b.frame(k1)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    assert not lake.storage.exists(layout.bronze_path(k2.key)) and _leftovers(lake) == []
    assert (lake.bronze.verify().set_index("key").loc[k1.key, "status"]) == "ok"


# ---------------------------------------------------------------- merge_sorted
def _stream(df: pd.DataFrame, cuts: list[int]):
    edges = [0, *sorted(c for c in cuts if 0 < c < len(df)), len(df)]
    return [pa.Table.from_pandas(df.iloc[a:b], preserve_index=False) for a, b in zip(edges, edges[1:])]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), max_size=40),
                          st.lists(st.integers(0, 40), max_size=6)), min_size=1, max_size=4))
def test_merge_sorted_equals_concat_sort_dedup(spec):
    frames, streams = [], []
    for prio, (rows, cuts) in enumerate(spec):
        df = pd.DataFrame(rows, columns=["t", "id"]).drop_duplicates().sort_values(["t", "id"])
        df = df.reset_index(drop=True).assign(src=prio)
        frames.append(df)
        streams.append(_stream(df, cuts))
    got = [t for t in merge_sorted(streams, "t", ("id",))]
    got = pa.concat_tables(got).to_pandas() if got else pd.DataFrame(columns=["t", "id", "src"])
    want = (pd.concat(frames).sort_values(["t", "id", "src"], kind="stable")
            .drop_duplicates(["t", "id"]).reset_index(drop=True))
    assert got["t"].tolist() == want["t"].tolist()
    assert got["id"].tolist() == want["id"].tolist()
    assert got["src"].tolist() == want["src"].tolist()       # the first stream wins


def test_merge_sorted_refuses_a_stream_that_goes_back_in_time():
    a = [pa.table({"t": [1, 5], "id": [1, 2]}), pa.table({"t": [3], "id": [3]})]
    with pytest.raises(Unsorted):
        list(merge_sorted([a, [pa.table({"t": [2], "id": [9]})]], "t", ("id",)))
    with pytest.raises(Unsorted):
        list(merge_sorted([a], "t", ("id",)))


def test_stream_partitions_retries_a_conflict_by_streaming_again(tmp_path):
    """Another writer commits the same partition between our snapshot and our write: the
    commit is retried on fresh state, and the retry re-opens the stream (build runs again)."""
    from deltalake import write_deltalake

    from cryptolake.layers import silver
    from cryptolake.storage import Storage

    storage = Storage(str(tmp_path / "lake"))
    sch = pa.schema([("t", pa.timestamp("us", tz="UTC")), ("x", pa.int64())])
    silver.ensure_table(storage, "silver", "demo", sch)
    uri = storage.table_uri("silver/demo")
    calls = []

    def rows(n, base):
        return pa.table({"t": pa.array(np.arange(n) * 1_000_000 + 1_700_000_000_000_000,
                                       pa.timestamp("us", tz="UTC")), "x": np.arange(n) + base})

    def build():
        calls.append(1)
        if len(calls) == 1:      # a concurrent writer lands first, on the same partition
            other = rows(5, 1000).append_column("symbol", pa.array(["S"] * 5)) \
                .append_column("month", pa.array(["2023-11"] * 5))
            write_deltalake(uri, other, mode="append")

        def gen():
            for i in range(4):
                yield "2023-11", rows(50, 100 * i).slice(i * 10, 10)
        return ["2023-11"], gen()

    n, version = silver.stream_partitions(storage, "silver", "demo", "S", sch, "t", None, build)
    assert len(calls) == 2 and n == 40
    got = storage.open_table("silver/demo").to_pyarrow_table()
    assert got.num_rows == 40 and sorted(got["x"].to_pylist()) == sorted(
        sum((list(range(100 * i + i * 10, 100 * i + i * 10 + 10)) for i in range(4)), []))
