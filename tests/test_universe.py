"""lake.universe: segments, status and point-in-time membership from the archive listing."""
from __future__ import annotations

import datetime as dt

import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2022, 7, 1)


@pytest.fixture
def lake(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    for d in range(1, 13):                                   # old LUNA, then a new asset, same name
        b.klines("spot", "LUNAUSDT", "1d", f"2022-05-{d:02d}")
    for d in range(31, 32):
        b.klines("spot", "LUNAUSDT", "1d", f"2022-05-{d}")
    for d in range(1, 31):
        b.klines("spot", "LUNAUSDT", "1d", f"2022-06-{d:02d}")
    b.klines("spot", "BTCUSDT", "1d", "2022-04")             # monthly only for April
    for d in range(1, 31):
        b.klines("spot", "BTCUSDT", "1d", f"2022-06-{d:02d}")
    for d in range(1, 11):
        b.klines("spot", "FTTUSDT", "1h", f"2022-05-{d:02d}")    # delisted, no 1d directory
    b.klines("spot", "BTCUSDT", "1d", "2022-05")
    return cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))


def test_segments_and_status(lake):
    u = lake.universe("spot", today=TODAY).set_index("symbol")
    assert list(u.index) == ["BTCUSDT", "FTTUSDT", "LUNAUSDT"]
    luna = u.loc["LUNAUSDT"]
    assert luna["segments"] == [(dt.date(2022, 5, 1), dt.date(2022, 5, 12)),
                                (dt.date(2022, 5, 31), dt.date(2022, 6, 30))]
    assert luna["n_segments"] == 2 and luna["status"] == "trading"
    assert u.loc["BTCUSDT", "first_day"] == dt.date(2022, 4, 1) and u.loc["BTCUSDT", "n_segments"] == 1
    assert u.loc["FTTUSDT", "status"] == "delisted" and u.loc["FTTUSDT", "last_day"] == dt.date(2022, 5, 10)


def test_point_in_time(lake):
    assert lake.universe("spot", on="2022-05-05", today=TODAY) == ["BTCUSDT", "FTTUSDT", "LUNAUSDT"]
    assert lake.universe("spot", on="2022-05-20", today=TODAY) == ["BTCUSDT"]        # LUNA halted
    assert lake.universe("spot", on=dt.date(2022, 6, 2), today=TODAY) == ["BTCUSDT", "LUNAUSDT"]


def test_settled_directories(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    b.klines("um", "BNXUSDTSETTLED", "1d", "2023-01-05")
    b.klines("um", "BNXUSDT", "1d", "2023-03-05")
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    u = lake.universe("um", today=dt.date(2023, 3, 6)).set_index("symbol")
    assert u.loc["BNXUSDTSETTLED", "status"] == "settled" and u.loc["BNXUSDT", "status"] == "trading"


def test_bad_market(lake):
    with pytest.raises(ValueError, match="market"):
        lake.universe("futures")
