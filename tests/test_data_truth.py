"""Issue #6, lake side: no silent wrong answer at the edges. Each test builds the archive
scenario, ingests it, and compares `report.gaps`, `t.gaps()`, `t.coverage()` and
`df.lake.gaps()` with the truth the test itself constructed."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)
H = pd.Timedelta(hours=1)


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def make(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    return b, lake


def ingest(lake, market, symbols, interval, start, end, data_type="klines"):
    return lake.ingest(market, data_type, symbols, interval=interval, start=start, end=end,
                       progress=False, today=TODAY, top_up=False)


def rows_of(gaps: pd.DataFrame) -> list[tuple]:
    return list(gaps[["symbol", "start", "end", "missing", "cause"]].itertuples(index=False, name=None))


def edit_rows(b: ArchiveBuilder, key, fn):
    """Rewrite a generated file's CSV rows with `fn(rows) -> rows` (header kept)."""
    lines = b.file(key).csv.decode().splitlines()
    head = [lines[0]] if lines[0].startswith("open_time") else []
    body = fn(lines[len(head):])
    b.raw(key, ("\n".join(head + body) + "\n").encode())


# ---------------------------------------------------------------- defect 2: range edges
def test_gaps_at_the_edges_of_the_range_are_reported(tmp_path):
    b, lake = make(tmp_path)
    for day in ("2024-02-28", "2024-03-02", "2024-03-05"):    # files before and after the range
        b.klines("um", "BTCUSDT", "1h", day)
    report = ingest(lake, "um", "BTCUSDT", "1h", "2024-03-01", "2024-03-03")
    want = [("BTCUSDT", ts("2024-03-01 00:00"), ts("2024-03-01 23:00"), 24, "missing_file"),
            ("BTCUSDT", ts("2024-03-03 00:00"), ts("2024-03-03 23:00"), 24, "missing_file")]
    t = lake.silver.um_klines_1h
    assert rows_of(report.gaps) == want
    assert rows_of(t.gaps()) == want
    cov = t.coverage().set_index("symbol").loc["BTCUSDT"]
    assert (cov["rows"], cov["expected"], cov["missing"]) == (24, 72, 48)
    assert cov["listed_from"] == ts("2024-03-01") and cov["listed_to"].floor("D") == ts("2024-03-03")
    assert not report.ok or report.gaps["missing"].sum() == 48


def test_bars_outside_the_listed_life_are_not_gaps(tmp_path):
    b, lake = make(tmp_path)
    b.klines("um", "NEWUSDT", "1h", "2024-03-02")       # listed on 03-02
    b.klines("um", "NEWUSDT", "1h", "2024-03-03")
    b.klines("um", "OLDUSDT", "1h", "2024-03-01")       # delisted after 03-01
    report = ingest(lake, "um", ["NEWUSDT", "OLDUSDT"], "1h", "2024-03-01", "2024-03-03")
    assert report.gaps.empty
    cov = lake.silver.um_klines_1h.coverage().set_index("symbol")
    assert cov.loc["NEWUSDT", "listed_from"] == ts("2024-03-02")
    assert cov.loc["OLDUSDT", "listed_to"].floor("D") == ts("2024-03-01")
    assert (cov["missing"] == 0).all() and list(cov["expected"]) == [48, 24]


def test_a_symbol_with_every_file_absent_in_range_is_all_gap(tmp_path):
    b, lake = make(tmp_path)
    b.klines("um", "BTCUSDT", "1h", "2024-03-01")
    b.klines("um", "BTCUSDT", "1h", "2024-03-04")
    report = ingest(lake, "um", "BTCUSDT", "1h", "2024-03-02", "2024-03-03")
    assert rows_of(report.gaps) == [("BTCUSDT", ts("2024-03-02"), ts("2024-03-03 23:00"), 48, "missing_file")]


# ---------------------------------------------------------------- defect 3: short files
def test_a_truncated_monthly_file_is_completed_by_the_daily_files(tmp_path):
    b, lake = make(tmp_path)
    monthly = b.klines("um", "BTCUSDT", "1h", "2024-01", missing=[slice(240, 744)])   # 10 days only
    dailies = [b.klines("um", "BTCUSDT", "1h", f"2024-01-{d:02d}") for d in range(1, 32)]
    report = ingest(lake, "um", "BTCUSDT", "1h", "2024-01-01", "2024-01-31")
    got = lake.silver.um_klines_1h["BTCUSDT"]
    assert len(got) == 744 and got.index.is_unique
    first_ten = got.loc[:"2024-01-10"]
    assert (first_ten["source"] == "archive_monthly").all() and len(first_ten) == 240
    rest = pd.concat([b.frame(k) for k in dailies[10:]]).set_index("open_time")
    pd.testing.assert_series_equal(got.loc["2024-01-11":, "close"], rest["close"], check_names=False,
                                   check_freq=False)
    assert report.gaps.empty
    assert any(monthly.key in n and "partial_file" in n for n in report.notes)
    assert (report.files["status"] == "downloaded").sum() >= 22


def test_a_daily_file_that_stops_early_is_completed_by_the_monthly_file(tmp_path):
    b, lake = make(tmp_path)
    b.klines("um", "BTCUSDT", "1h", "2024-01")
    for d in range(1, 16):
        b.klines("um", "BTCUSDT", "1h", f"2024-01-{d:02d}", missing=[slice(12, 24)] if d == 5 else ())
    report = ingest(lake, "um", "BTCUSDT", "1h", "2024-01-01", "2024-01-15")
    got = lake.silver.um_klines_1h["BTCUSDT", "2024-01-05"]
    assert len(got) == 24 and (got.loc["2024-01-05 12:00":, "source"] == "archive_monthly").all()
    assert report.gaps.empty


def test_a_short_monthly_file_without_dailies_is_a_partial_file_gap(tmp_path):
    b, lake = make(tmp_path)
    b.klines("um", "BTCUSDT", "1h", "2024-01", missing=[slice(720, 744)])             # stops 01-30
    report = ingest(lake, "um", "BTCUSDT", "1h", "2024-01-01", "2024-01-31")
    assert rows_of(report.gaps) == [("BTCUSDT", ts("2024-01-31"), ts("2024-01-31 23:00"), 24, "partial_file")]


# ---------------------------------------------------------------- defect 4: string bounds
@pytest.fixture
def quarter(tmp_path):
    b, lake = make(tmp_path)
    for m in ("2024-01", "2024-02", "2024-03"):
        b.klines("um", "BTCUSDT", "1h", m)
    ingest(lake, "um", "BTCUSDT", "1h", "2024-01-01", "2024-03-31")
    t = lake.silver.um_klines_1h
    return t, t["BTCUSDT"]


@pytest.mark.parametrize("lo,hi", [("2024-01", "2024-02"), ("2024-01-15", "2024-02"),
                                   ("2024-02-03 04", "2024-02-03 07"), ("2024-02-29", "2024-02-29"),
                                   ("2024-01-31 23:00", "2024-02-01 01:30")])
def test_string_bounds_slice_like_pandas(quarter, lo, hi):
    t, full = quarter
    pd.testing.assert_frame_equal(t["BTCUSDT", lo:hi], full.loc[lo:hi])


def test_a_single_string_is_its_whole_period(quarter):
    t, full = quarter
    assert len(t["BTCUSDT", "2024"]) == len(full) == 24 * 91
    pd.testing.assert_frame_equal(t["BTCUSDT", "2024-02"], full.loc["2024-02"])


def test_timestamps_are_instants_and_strings_are_periods(quarter):
    t, _ = quarter
    as_string = t.read("BTCUSDT", end="2024-02-01")
    as_instant = t.read("BTCUSDT", end=pd.Timestamp("2024-02-01"))
    assert as_string.index[-1] == ts("2024-02-01 23:00")
    assert as_instant.index[-1] == ts("2024-02-01 00:00")


def test_frames_from_the_lake_carry_their_interval(quarter):
    t, full = quarter
    assert full.attrs["interval"] == "1h"
    every_other = full.iloc[::2]
    assert len(every_other.lake.gaps()) == len(every_other) - 1       # the 1h grid, not a 2h guess


# ---------------------------------------------------------------- defect 5: off-grid bars
def test_an_off_grid_bar_is_counted_never_a_gap(tmp_path):
    b, lake = make(tmp_path)
    key = b.klines("um", "BTCUSDT", "1h", "2024-03-01")

    def add_0405(rows):
        f = rows[4].split(",")
        f[0] = str(int(f[0]) + 5 * 60_000)                         # 04:05
        f[6] = str(int(f[6]) + 5 * 60_000)
        return rows[:5] + [",".join(f)] + rows[5:]
    edit_rows(b, key, add_0405)
    report = ingest(lake, "um", "BTCUSDT", "1h", "2024-03-01", "2024-03-01")
    t = lake.silver.um_klines_1h
    df = t["BTCUSDT"]
    assert len(df) == 25
    assert report.gaps.empty and t.gaps().empty and df.lake.gaps().empty
    cov = t.coverage().iloc[0]
    assert (cov["rows"], cov["expected"], cov["missing"], cov["off_grid"]) == (25, 24, 0, 1)
    assert list(t.off_grid().index) == [ts("2024-03-01 04:05")]
    plain = df.copy()
    plain.attrs.clear()                                             # a frame from elsewhere
    assert plain.lake.gaps().empty


def test_an_off_grid_bar_inside_a_gap_does_not_bend_it(tmp_path):
    b, lake = make(tmp_path)
    key = b.klines("um", "BTCUSDT", "1h", "2024-03-01", missing=[slice(3, 7)])     # 03:00..06:00 absent

    def add_0405(rows):
        f = rows[3].split(",")                                        # the 07:00 row, moved
        f[0] = str(int(f[0]) - 55 * 60_000)
        return rows[:3] + [",".join(f)] + rows[3:]
    edit_rows(b, key, add_0405)
    ingest(lake, "um", "BTCUSDT", "1h", "2024-03-01", "2024-03-01")
    t = lake.silver.um_klines_1h
    want = [("BTCUSDT", ts("2024-03-01 03:00"), ts("2024-03-01 06:00"), 4, "outage")]
    assert rows_of(t.gaps()) == want
    g = t["BTCUSDT"].lake.gaps()
    assert list(zip(g["start"], g["end"], g["missing"])) == [(ts("2024-03-01 03:00"), ts("2024-03-01 06:00"), 4)]
    assert t.coverage().iloc[0]["missing"] == 4


# ---------------------------------------------------------------- defect 6: runs across midnight
def test_a_run_across_midnight_between_two_partial_files_is_partial_file(tmp_path):
    b, lake = make(tmp_path)
    b.klines("um", "BTCUSDT", "1m", "2024-03-01", missing=[slice(1430, 1440)])    # stops 23:50
    b.klines("um", "BTCUSDT", "1m", "2024-03-02", missing=[slice(0, 10)])         # starts 00:10
    report = ingest(lake, "um", "BTCUSDT", "1m", "2024-03-01", "2024-03-02")
    want = [("BTCUSDT", ts("2024-03-01 23:50"), ts("2024-03-02 00:09"), 20, "partial_file")]
    assert rows_of(report.gaps) == want == rows_of(lake.silver.um_klines_1m.gaps())


def test_an_outage_next_to_a_short_end_splits_by_cause(tmp_path):
    b, lake = make(tmp_path)
    b.klines("um", "BTCUSDT", "1m", "2024-03-01", missing=[slice(600, 610), slice(1430, 1440)])
    b.klines("um", "BTCUSDT", "1m", "2024-03-02")
    report = ingest(lake, "um", "BTCUSDT", "1m", "2024-03-01", "2024-03-02")
    assert [r[4] for r in rows_of(report.gaps)] == ["outage", "partial_file"]


# ---------------------------------------------------------------- defect 7: quiet spot minutes
def flatten(rows, lo, hi, market):
    close = rows[lo - 1].split(",")[4]
    for i in range(lo, hi):
        f = rows[i].split(",")
        f[1] = f[2] = f[3] = f[4] = close
        f[5] = f[7] = f[9] = f[10] = "0"
        f[8] = "0"
        rows[i] = ",".join(f)
    return rows


@pytest.mark.parametrize("market,halts", [("spot", 0), ("um", 1)])
def test_flat_zero_volume_bars_are_halts_only_on_futures(tmp_path, market, halts):
    b, lake = make(tmp_path)
    key = b.klines(market, "ETHUSDT", "1m", "2024-05-01")
    edit_rows(b, key, lambda rows: flatten(rows, 600, 674, market))
    report = ingest(lake, market, "ETHUSDT", "1m", "2024-05-01", "2024-05-01")
    t = lake.silver[f"{market}_klines_1m"]
    assert (report.gaps["cause"] == "halt").sum() == halts == (t.gaps()["cause"] == "halt").sum()
    if market == "spot":
        assert report.gaps.empty
    cov = t.coverage().iloc[0]
    assert cov["missing"] == 0 and cov["zero_volume"] >= 74
    assert cov["zero_volume"] == int((t["ETHUSDT"]["volume"] == 0).sum())


# ---------------------------------------------------------------- defect 10: 1mo and funding
def test_monthly_bars_have_calendar_coverage_and_gaps(tmp_path):
    b, lake = make(tmp_path)
    for m in ("2024-01", "2024-02", "2024-04"):                        # March never published
        b.klines("um", "BTCUSDT", "1mo", m)
    report = ingest(lake, "um", "BTCUSDT", "1mo", "2024-01-01", "2024-04-30")
    t = lake.silver.um_klines_1mo
    want = [("BTCUSDT", ts("2024-03-01"), ts("2024-03-01"), 1, "missing_file")]
    assert rows_of(t.gaps()) == want == rows_of(report.gaps)
    cov = t.coverage().iloc[0]
    assert (cov["rows"], cov["expected"], cov["missing"]) == (3, 4, 1)


def test_funding_gaps_follow_the_interval_column(tmp_path):
    b, lake = make(tmp_path)
    b.funding("um", "BTCUSDT", "2024-01")                                   # 8h: 93 settlements
    b.funding("um", "BTCUSDT", "2024-02", interval_hours=4, missing=[5, 6, 7])   # 4h, 3 missing
    b.funding("um", "BTCUSDT", "2024-04")                                   # March never published
    report = ingest(lake, "um", "BTCUSDT", None, "2024-01-01", "2024-04-30", data_type="fundingRate")
    t = lake.silver.um_funding_rate
    g = t.gaps()
    assert list(g["cause"]) == ["outage", "missing_file"]
    assert g.iloc[0]["missing"] == 3 and g.iloc[0]["start"].floor("h") == ts("2024-02-01 20:00")
    assert g.iloc[1]["start"].floor("D") == ts("2024-03-01") and g.iloc[1]["missing"] == 31 * 3
    cov = t.coverage().iloc[0]
    assert cov["missing"] == g["missing"].sum() and cov["rows"] == 93 + 29 * 6 - 3 + 90
    assert rows_of(report.gaps) == rows_of(g)
