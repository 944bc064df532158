"""cl.explore(lake): the ipywidgets panel over real lakes on disk (the bundled sample archive
ingested, and a year of 1m bars built with ArchiveBuilder), plus plot_ohlcv's gap shading."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.dates import date2num  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import cryptolake as cl  # noqa: E402
from cryptolake.explore import MAX_BARS, RULES, choose_rule  # noqa: E402
from cryptolake.plot import GAP_COLORS, plot_ohlcv  # noqa: E402
from cryptolake.testing.archive import ArchiveBuilder  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample-archive"
PNG = b"\x89PNG\r\n\x1a\n"
# The sample archive's README: spot ETHUSDT lacks 2026-05-02 10:00-11:29 UTC (an outage).
OUTAGE = (pd.Timestamp("2026-05-02 10:00", tz="UTC"), pd.Timestamp("2026-05-02 11:29", tz="UTC"))


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory):
    """The sample archive's spot and um 1m klines (BTC, ETH, SOL; 2026-05-01..03) in a lake."""
    root = tmp_path_factory.mktemp("explore-lake")
    lake = cl.Lake(str(root / "lake"), archive=cl.BinanceArchive(SAMPLE.as_uri()))
    for market in ("spot", "um"):
        lake.ingest(market, "klines", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], interval="1m",
                    top_up=False, progress=False)
    return lake


@pytest.fixture(scope="module")
def year_lake(tmp_path_factory):
    """A year (2025) of um BTCUSDT 1m bars from 12 monthly files; March lacks 300 bars."""
    root = tmp_path_factory.mktemp("explore-year")
    b = ArchiveBuilder((root / "archive").as_uri())
    for m in range(1, 13):
        b.klines("um", "BTCUSDT", "1m", f"2025-{m:02d}",
                 missing=[slice(5000, 5300)] if m == 3 else ())
    lake = cl.Lake(str(root / "lake"), archive=cl.BinanceArchive((root / "archive").as_uri()))
    lake.ingest("um", "klines", ["BTCUSDT"], interval="1m", start="2025-01-01", end="2025-12-31",
                top_up=False, progress=False, today=dt.date(2026, 1, 15))
    return lake


def _spans(fig) -> list[Rectangle]:
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_alpha() == 0.25]


# ---------------------------------------------------------------- the panel
def test_panel_draws_the_outage_and_reports_it(sample_lake):
    p = cl.explore(sample_lake, table="spot_klines_1m", symbol="ETHUSDT")
    assert isinstance(p, widgets.VBox)
    assert list(p.table.options) == ["spot_klines_1m", "um_klines_1m"]
    assert list(p.symbol.options) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert (p.start.value, p.end.value) == (dt.date(2026, 5, 1), dt.date(2026, 5, 3))
    assert bytes(p.chart.value).startswith(PNG) and p.message.value == ""
    # 3 days of 1m bars less 90 is 4,230 > MAX_BARS: drawn at 5min (864 bins, 18 fully missing)
    assert p.drawn_rule == "5min" and len(p.frame) == 864 - 18
    g = p.gaps
    assert len(g) == 1 and (g["start"][0], g["end"][0], g["missing"][0], g["cause"][0]) == \
        (*OUTAGE, 90, "outage")
    assert "4,230 of 4,320 bars" in p.info.value and "outage: 1 gaps, 90 bars" in p.info.value
    (span,) = _spans(p.figure)
    x0, x1 = span.get_x(), span.get_x() + span.get_width()
    lo, hi = date2num(OUTAGE[0].tz_localize(None)), date2num(OUTAGE[1].tz_localize(None))
    assert x0 <= lo and x1 >= hi and x1 - x0 < hi - lo + 5 / 1440 * 2   # the outage, padded a bar
    assert to_hex(span.get_facecolor()) == GAP_COLORS["outage"]
    assert p.last_redraw_seconds > 0


def test_every_widget_change_redraws_once(sample_lake):
    p = cl.explore(sample_lake, table="spot_klines_1m", symbol="ETHUSDT")
    n, png = p.redraws, p.chart.value
    p.rule.value = "1h"
    assert p.redraws == n + 1 and p.chart.value != png
    assert p.drawn_rule == "1h" and len(p.frame) == 71            # 72 hours, 10:00 wholly missing
    p.indicators.value = ("sma", "rsi", "macd")
    assert p.redraws == n + 2 and len(p.figure.axes) == 4          # price+sma, volume, rsi, macd
    p.symbol.value = "BTCUSDT"
    assert p.redraws == n + 3 and len(p.frame) == 72 and p.gaps.empty
    assert "gaps: none" in p.info.value and "4,320 of 4,320 bars" in p.info.value
    assert not _spans(p.figure)
    p.table.value = "um_klines_1m"                                 # cascades to symbol and dates
    assert p.redraws == n + 4 and p.symbol.value == "BTCUSDT"
    p.start.value = dt.date(2026, 5, 2)
    p.end.value = dt.date(2026, 5, 2)
    assert p.redraws == n + 6
    assert p.frame.index[0] == pd.Timestamp("2026-05-02", tz="UTC") and len(p.frame) == 24


def test_raw_one_day_is_drawn_raw(sample_lake):
    p = cl.explore(sample_lake, table="spot_klines_1m", symbol="BTCUSDT",
                   start="2026-05-03", end="2026-05-03")
    assert p.drawn_rule == "raw" and len(p.frame) == 1440
    assert p.frame.index[0] == pd.Timestamp("2026-05-03", tz="UTC")


def test_weekly_rule_draws(sample_lake):
    p = cl.explore(sample_lake, table="um_klines_1m", symbol="SOLUSDT", rule="W")
    assert p.message.value == "" and bytes(p.chart.value).startswith(PNG)
    assert 1 <= len(p.frame) <= 2                       # 2026-05-01..03 is one or two weeks
    assert p.frame["volume"].sum() == pytest.approx(
        sample_lake.silver.um_klines_1m.read("SOLUSDT")["volume"].sum())


def test_start_after_end_says_so(sample_lake):
    p = cl.explore(sample_lake, table="spot_klines_1m")
    p.start.value = dt.date(2026, 5, 3)
    p.end.value = dt.date(2026, 5, 2)
    assert "after the end" in p.message.value and p.figure is None and p.chart.value == b""
    p.end.value = dt.date(2026, 5, 3)
    assert p.message.value == "" and p.figure is not None


def test_redraw_time_is_logged(sample_lake, caplog):
    caplog.set_level(logging.DEBUG, logger="cryptolake.explore")
    p = cl.explore(sample_lake, table="um_klines_1m", symbol="ETHUSDT", rule="15min")
    lines = [r.getMessage() for r in caplog.records if r.name == "cryptolake.explore"]
    assert any("explore redraw um_klines_1m ETHUSDT" in m and "rule=15min" in m for m in lines)
    assert f"{p.last_redraw_seconds:.3f} s" in lines[-1]


def test_empty_lake_gives_a_message(tmp_path):
    p = cl.explore(cl.Lake(str(tmp_path / "empty")))
    assert "no kline tables" in p.message.value and "lake.ingest" in p.message.value
    assert p.table.disabled and p.figure is None


def test_bad_arguments_name_what_is_allowed(sample_lake):
    with pytest.raises(ValueError, match="unknown table 'nope'.*spot_klines_1m"):
        cl.explore(sample_lake, table="nope")
    with pytest.raises(ValueError, match="unknown rule '2h'.*'4h'"):
        cl.explore(sample_lake, rule="2h")
    with pytest.raises(ValueError, match="unknown indicator 'foo'.*'rsi'"):
        cl.explore(sample_lake, indicators=["foo"])
    with pytest.raises(ValueError, match="unknown symbol 'DOGEUSDT'.*BTCUSDT"):
        cl.explore(sample_lake, symbol="DOGEUSDT")
    with pytest.raises(ValueError, match="needs a cl.Lake"):
        cl.explore("/tmp/some/path")


def test_choose_rule():
    one_min, day = pd.Timedelta("1min"), pd.Timedelta(days=1)
    assert choose_rule("raw", 1440, day - one_min, one_min) == ("raw", "")
    assert choose_rule("raw", 4320, 3 * day - one_min, one_min)[0] == "5min"
    year = 365 * day - one_min                       # 525,600 bars: 1h 8,760, 4h 2,190, 1D 365
    assert choose_rule("raw", 525_600, year, one_min)[0] == "1D"
    assert choose_rule("15min", 525_600, year, one_min)[0] == "1D"
    assert choose_rule("W", 525_600, year, one_min) == ("W", "")
    assert choose_rule("5min", 100, 4 * day, pd.Timedelta("1h"))[0] == "raw"   # not coarser
    with pytest.raises(ValueError, match="allowed"):
        choose_rule("3min", 10, day, one_min)
    assert RULES[0] == "raw" and MAX_BARS == 2000


def test_a_year_of_1m_bars_is_resampled_before_drawing(year_lake):
    p = cl.explore(year_lake)
    first = p.last_redraw_seconds
    assert (p.start.value, p.end.value) == (dt.date(2025, 12, 2), dt.date(2025, 12, 31))
    assert p.drawn_rule == "1h" and len(p.frame) == 30 * 24       # only the last 30 days read
    p.start.value = dt.date(2025, 1, 1)                          # the whole year
    assert p.drawn_rule == "1D" and len(p.frame) == 365 and len(p.frame) <= MAX_BARS
    assert p.frame["volume"].sum() == pytest.approx(
        year_lake.silver.um_klines_1m.read("BTCUSDT", columns=["volume"])["volume"].sum())
    assert len(p.gaps) == 1 and p.gaps["missing"][0] == 300 and "525,300 of 525,600" in p.info.value
    year = p.last_redraw_seconds
    p.rule.value = "4h"
    print(f"\nexplorer redraw on a 1-year 1m table (525,300 rows): first view (30 days -> 1h) "
          f"{first:.3f} s; whole year -> 1D {year:.3f} s; whole year, 4h asked -> "
          f"{p.drawn_rule} {p.last_redraw_seconds:.3f} s")


# ---------------------------------------------------------------- plot_ohlcv(gaps=)
def _bars(n=600):
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-05-01", periods=n, freq="1min", tz="UTC", name="open_time")
    c = 10 + np.cumsum(rng.normal(0, 0.05, n))
    o = np.r_[10.0, c[:-1]]
    return pd.DataFrame({"open": o, "high": np.maximum(o, c) + 0.02,
                         "low": np.minimum(o, c) - 0.02, "close": c,
                         "volume": rng.exponential(1.0, n)}, index=idx.as_unit("us"))


def _gap(sym, start, end, cause):
    return (sym, pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), 1, cause)


def test_plot_shades_each_gap_by_cause_on_every_panel():
    gaps = pd.DataFrame([_gap("A", "2024-05-01 01:00", "2024-05-01 01:30", "outage"),
                         _gap("A", "2024-05-01 03:00", "2024-05-01 03:00", "missing_file"),
                         _gap("A", "2024-05-03 00:00", "2024-05-03 01:00", "halt")],   # after
                        columns=["symbol", "start", "end", "missing", "cause"])
    fig = plot_ohlcv(_bars(), ["rsi"], gaps=gaps)
    for ax in fig.axes:                                  # price, volume, rsi
        spans = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_alpha() == 0.25]
        assert sorted(to_hex(s.get_facecolor()) for s in spans) == \
            sorted([GAP_COLORS["outage"], GAP_COLORS["missing_file"]])
        assert all(s.get_width() > 0 for s in spans)    # a one-bar gap is still visible
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels.count("gap: outage") == 1 and "gap: halt" not in labels
    fig.canvas.draw()


def test_plot_gaps_of_other_symbols_are_ignored_and_bad_gaps_rejected():
    df = pd.concat({"A": _bars()}, names=["symbol", "open_time"])
    gaps = pd.DataFrame([_gap("B", "2024-05-01 01:00", "2024-05-01 01:30", "outage")],
                        columns=["symbol", "start", "end", "missing", "cause"])
    assert not _spans(plot_ohlcv(df, gaps=gaps))
    assert len(_spans(plot_ohlcv(df, gaps=gaps.assign(symbol="A")))) == 1
    assert not _spans(plot_ohlcv(_bars(), gaps=gaps.iloc[:0]))
    with pytest.raises(ValueError, match="needs start, end, cause"):
        plot_ohlcv(_bars(), gaps=gaps.drop(columns="cause"))
    with pytest.raises(ValueError, match="must be a DataFrame"):
        plot_ohlcv(_bars(), gaps=[("2024-05-01", "2024-05-01")])


# ---------------------------------------------------------------- edge cases and S3
@pytest.fixture(scope="module")
def odd_lake(tmp_path_factory):
    """um 1m klines: BNBUSDT has one bar (2024-01-01 00:00); XRPUSDT trades on 2024-01-01,
    is silent for two months and trades again on 2024-03-01 (a relisting)."""
    root = tmp_path_factory.mktemp("explore-odd")
    b = ArchiveBuilder((root / "archive").as_uri())
    b.klines("um", "BNBUSDT", "1m", "2024-01-01", missing=[slice(1, 1440)])
    b.klines("um", "XRPUSDT", "1m", "2024-01-01")
    b.klines("um", "XRPUSDT", "1m", "2024-03-01")
    lake = cl.Lake(str(root / "lake"), archive=cl.BinanceArchive((root / "archive").as_uri()))
    for syms, end in ((["BNBUSDT"], "2024-01-01"), (["XRPUSDT"], "2024-03-01")):
        lake.ingest("um", "klines", syms, interval="1m", start="2024-01-01", end=end, top_up=False,
                    progress=False, today=dt.date(2024, 4, 15))
    return lake


def test_one_row_symbol_draws_one_candle(odd_lake):
    p = cl.explore(odd_lake, symbol="BNBUSDT")
    assert p.message.value == "" and len(p.frame) == 1 and p.drawn_rule == "raw"
    assert (p.start.value, p.end.value) == (dt.date(2024, 1, 1), dt.date(2024, 1, 1))
    assert "1 of 1,440 bars" in p.info.value and "partial_file" in p.info.value   # the file stops early
    assert len(p.figure.axes[0].collections[1].get_paths()) == 1


def test_relisted_symbol_silent_range_and_relisting_gap(odd_lake):
    p = cl.explore(odd_lake, symbol="XRPUSDT", start="2024-01-01", end="2024-03-01")
    g = p.gaps
    assert list(g["cause"]) == ["relisting"]
    assert g["start"][0] == pd.Timestamp("2024-01-02", tz="UTC")
    assert g["end"][0] == pd.Timestamp("2024-02-29 23:59", tz="UTC")
    # 2,880 rows > MAX_BARS; over 60 days 15min would be 5,761 bins, 1h 1,441: 1h, 48 non-empty
    assert p.drawn_rule == "1h" and len(p.frame) == 48
    (span,) = _spans(p.figure)
    assert to_hex(span.get_facecolor()) == GAP_COLORS["relisting"]
    p.start.value, p.end.value = dt.date(2024, 2, 1), dt.date(2024, 2, 10)   # inside the silence
    assert "has no rows" in p.message.value and p.figure is None
    assert list(p.gaps["cause"]) == ["relisting"]                # the silence, seen from inside
    assert "relisting" in p.info.value and "0 of 14,400 bars" in p.info.value


def test_explorer_on_a_moto_s3_lake(s3_lake):
    lake = cl.Lake(f"{s3_lake.url}/explore", storage_options=s3_lake.storage_options,
                   archive=cl.BinanceArchive(SAMPLE.as_uri()))
    lake.ingest("spot", "klines", ["ETHUSDT"], interval="1m", top_up=False, progress=False)
    p = cl.explore(lake, rule="1h")
    assert p.message.value == "" and p.symbol.value == "ETHUSDT" and len(p.frame) == 71
    assert list(p.gaps["cause"]) == ["outage"] and p.gaps["missing"][0] == 90
