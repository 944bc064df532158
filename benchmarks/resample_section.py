"""df.lake.resample / gaps against pandas' best path, measured in the same run.

`run(df_1m, repeat=5)` returns one row per case:
  name                   what was timed
  ours_s                 median seconds of the df.lake call (after one warm-up call; ours,
                         the peers and the copy are called in turn, so that other load on
                         the machine falls on all alike)
  peer_s                 median seconds of pandas' fastest path for the same result
  ratio                  peer_s / ours_s (higher is better for us)
  bytes_moved_over_time  our throughput as a fraction of a plain numpy copy of the same bytes:
                         copy_s / ours_s, where the bytes are every input array the op reads
                         (times + columns) plus what it writes, and copy_s is np.copyto of a
                         buffer that size (1.0 = as fast as copying them; target >= 0.5);
                         gaps counts the times it reads plus the rows it writes

Peers: for resample the faster of `.resample().agg(dict)` and column-by-column
`r[col].first()/max()/...` (pandas keeps empty bins as NaN rows; it is not charged for dropping
them); for gaps an `index.diff()` gap finder (`cryptolake.testing.strategies.pandas_gaps`); for
the many-symbol frame `groupby(level='symbol').resample(rule, level='open_time').agg(dict)`.

    python benchmarks/resample_section.py [--years 6] [--symbols 100] [--days 30]
    python benchmarks/resample_section.py --peers [--small-only]   # vs Polars, DuckDB, pandas
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cryptolake.accessors  # noqa: F401,E402  (registers df.lake)
from cryptolake.kernels import warm  # noqa: E402
from cryptolake.testing.strategies import pandas_agg_spec, pandas_gaps  # noqa: E402
from _timing import medians  # noqa: E402

CASES = [("resample 5min", "5min", None), ("resample 1h", "1h", None),
         ("resample 1h offset 5min", "1h", "5min"), ("resample 1D", "1D", None)]


def _medians(fns, repeat: int) -> list[float]:
    """Median seconds of each function, after one warm-up call each. The calls are
    interleaved (a, b, c, a, b, c, ...) so that load from other processes on a shared machine
    falls on every contender alike."""
    for fn in fns:
        fn()  # warm-up: compile/cache load, page faults of first use
    times = [[] for _ in fns]
    for _ in range(max(repeat, 5)):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def _copier(nbytes: int):
    src = np.ones(max(nbytes // 8, 1))
    dst = np.zeros_like(src)
    return lambda: np.copyto(dst, src)


def _frame_bytes(df: pd.DataFrame) -> int:
    """Bytes of the time index plus every numeric column."""
    cols = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c].dtype)]
    return len(df) * 8 + sum(df[c].to_numpy().nbytes for c in cols)


def _pandas_resample_paths(df: pd.DataFrame, rule, offset):
    spec = pandas_agg_spec(df)

    def by_agg():
        return df.resample(rule, offset=offset).agg(spec)

    def by_column():
        r = df.resample(rule, offset=offset)
        return pd.DataFrame({c: getattr(r[c], how)() for c, how in spec.items()})

    return by_agg, by_column


def _case(name, ours, peers, nbytes, repeat):
    """One row: ours against the fastest of `peers`, and against a copy of `nbytes`."""
    times = _medians([ours, *peers, _copier(nbytes)], repeat)
    ours_s, peer_s, copy_s = times[0], min(times[1:-1]), times[-1]
    return {"name": name, "ours_s": ours_s, "peer_s": peer_s, "ratio": peer_s / ours_s,
            "bytes_moved_over_time": copy_s / ours_s}


def many_symbols(n_symbols: int = 100, days: int = 30, seed: int = 0) -> pd.DataFrame:
    """`n_symbols` x `days` of 1m klines with a (symbol, open_time) MultiIndex."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    one = _synthetic(n, rng)
    frames = {f"S{i:03d}USDT": one for i in range(n_symbols)}
    return pd.concat(frames, names=["symbol", "open_time"])


def _synthetic(n: int, rng, start="2020-01-01") -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC", name="open_time").as_unit("us")
    c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    o = np.r_[100.0, c[:-1]]
    v = rng.exponential(5.0, n)
    b = v * rng.random(n)
    df = pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.0005,
                       "low": np.minimum(o, c) * 0.9995, "close": c, "volume": v,
                       "quote_volume": v * c, "trades": rng.integers(1, 500, n),
                       "taker_buy_volume": b, "taker_buy_quote_volume": b * c}, index=idx)
    return df[rng.random(n) > 0.001]   # a few missing bars, as in real archives


def run(df_1m: pd.DataFrame, repeat: int = 5, *, symbols: int = 100, days: int = 30) -> list[dict]:
    """Time df.lake.resample / gaps against pandas on `df_1m` and on a many-symbol frame."""
    warm()
    rows = []
    in_bytes = _frame_bytes(df_1m)
    for name, rule, offset in CASES:
        out = df_1m.lake.resample(rule, offset=offset)
        rows.append(_case(name, lambda: df_1m.lake.resample(rule, offset=offset),
                          _pandas_resample_paths(df_1m, rule, offset),
                          in_bytes + _frame_bytes(out), repeat))
    out = df_1m.lake.gaps("1min")
    peer = (lambda: pandas_gaps(df_1m, "1min"),)
    rows.append(_case("gaps", lambda: df_1m.lake.gaps("1min"), peer,
                      len(df_1m) * 8 + len(out) * 32, repeat))
    rows.append(_case("gaps (freq inferred)", lambda: df_1m.lake.gaps(), peer,
                      len(df_1m) * 8 + len(out) * 32, repeat))
    if symbols:
        multi = many_symbols(symbols, days)
        spec = pandas_agg_spec(multi)
        for rule in ("5min", "1h"):
            out = multi.lake.resample(rule)
            peer = (lambda: multi.groupby(level="symbol").resample(
                rule, level="open_time").agg(spec),)
            rows.append(_case(f"{symbols} symbols x {days}d resample {rule}",
                              lambda: multi.lake.resample(rule), peer,
                              _frame_bytes(multi) + _frame_bytes(out), repeat))
    return rows


# ------------------------------------------------- against Polars, DuckDB and pandas
# Every contender gets the same five OHLCV columns in its own native frame, built outside the
# timing. Polars is timed both ways (`group_by_dynamic`, and `dt.truncate` + `group_by`) and
# the faster counts; DuckDB runs `time_bucket` over a table; pandas `.resample().agg()` with
# its empty bins dropped. Calendar rules map to Polars' "1w" (Monday-aligned, the same bins as
# pandas' 'W' = 'W-SUN', which labels them by their Sunday), "1mo", "1q", "1y" and to DuckDB's
# week/month/quarter/year buckets; partial=False keeps the bins of 60 one-minute rows.
OHLCV = ["open", "high", "low", "close", "volume"]
_PL_EVERY = {"5min": "5m", "1h": "1h", "4h": "4h", "1D": "1d", "W": "1w", "ME": "1mo",
             "QE": "1q", "YS": "1y"}
_DUCK_EVERY = {"5min": "5 minutes", "1h": "1 hour", "4h": "4 hours", "1D": "1 day",
               "W": "1 week", "ME": "1 month", "QE": "3 months", "YS": "1 year"}
_PL_OFFSET = {None: None, "5min": "5m", "30min": "30m", "1h": "1h"}


def _pl_frame(df: pd.DataFrame):
    import polars as pl
    d = {"open_time": df.index.get_level_values(-1).as_unit("us").tz_convert(None)}
    if isinstance(df.index, pd.MultiIndex):
        d["symbol"] = df.index.get_level_values(0).astype(str)
    for c in OHLCV:
        d[c] = df[c].to_numpy()
    return pl.DataFrame(d)


def _pl_aggs(pl, count: bool):
    aggs = [pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
            pl.col("close").last(), pl.col("volume").sum()]
    return aggs + [pl.len().alias("n")] if count else aggs


def _polars_ways(pf, rule, offset, by_symbol: bool, full: int | None):
    """Two Polars spellings of the resample; `full`: keep bins of exactly that many rows."""
    import polars as pl
    every, off = _PL_EVERY[rule], _PL_OFFSET[offset]
    keys = ["symbol"] if by_symbol else []
    count = full is not None

    def done(out):
        return out.filter(pl.col("n") == full).drop("n") if count else out

    def dynamic():
        kw = {"group_by": "symbol"} if by_symbol else {}
        if off:
            kw["offset"] = off
        return done(pf.group_by_dynamic("open_time", every=every, closed="left", label="left",
                                        **kw).agg(*_pl_aggs(pl, count)))

    def truncate():
        t = pl.col("open_time")
        if off:
            t = (t - pl.duration(minutes=int(pd.Timedelta(offset) / pd.Timedelta("1min"))))
            b = t.dt.truncate(every) + pl.duration(
                minutes=int(pd.Timedelta(offset) / pd.Timedelta("1min")))
        else:
            b = t.dt.truncate(every)
        return done(pf.group_by([*keys, b.alias("bin")], maintain_order=True)
                    .agg(*_pl_aggs(pl, count)))

    return dynamic, truncate


def _duck(con, rule, offset, by_symbol: bool, full: int | None):
    iv = _DUCK_EVERY[rule]
    sym = "symbol, " if by_symbol else ""
    bucket = f"time_bucket(INTERVAL '{iv}', open_time"
    bucket += f", INTERVAL '{pd.Timedelta(offset).total_seconds():.0f} seconds')" if offset \
        else ")"
    having = f" HAVING count(*) = {full}" if full is not None else ""
    q = (f"SELECT {sym}{bucket} AS t, arg_min(open, open_time) AS open, max(high) AS high, "
         "min(low) AS low, arg_max(close, open_time) AS close, sum(volume) AS volume "
         f"FROM bars GROUP BY ALL{having} ORDER BY {sym}t")
    return lambda: con.execute(q).fetchnumpy()


def _pandas(df: pd.DataFrame, rule, offset, full: int | None):
    spec = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}

    def run():
        if isinstance(df.index, pd.MultiIndex):
            r = df.groupby(level=0).resample(rule, level=-1, offset=offset)
        else:
            r = df.resample(rule, offset=offset)
        out = r.agg(spec)
        size = r.size().to_numpy()
        return out[size == full] if full is not None else out[size > 0]
    return run


def peer_case(label: str, df: pd.DataFrame, rule: str, offset=None, partial: bool = True,
              rounds: int = 9) -> dict:
    """One row: df.lake.resample against Polars (the faster spelling), DuckDB and pandas,
    with the output checked against Polars (same bins: close equal, volume to 1e-12)."""
    import duckdb
    import polars as pl
    df = df[OHLCV]
    by_sym = isinstance(df.index, pd.MultiIndex)
    full = None if partial else int(pd.Timedelta(rule) / pd.Timedelta("1min"))
    kw = {"partial": False, "freq": "1min"} if not partial else {}
    pf = _pl_frame(df)
    dynamic, truncate = _polars_ways(pf, rule, offset, by_sym, full)
    con = duckdb.connect()
    con.register("bars_src", pf.to_arrow())
    con.execute("CREATE TABLE bars AS SELECT * FROM bars_src")
    fns = {"ours": lambda: df.lake.resample(rule, offset=offset, **kw),
           "polars_dynamic": dynamic, "polars_truncate": truncate,
           "duckdb": _duck(con, rule, offset, by_sym, full),
           "pandas": _pandas(df, rule, offset, full)}
    med = medians(fns, rounds)
    ours = fns["ours"]()
    polars_s = min(med["polars_dynamic"], med["polars_truncate"])
    ref = dynamic().sort(["symbol", "open_time"] if by_sym else ["open_time"])
    agree = (len(ref) == len(ours) and np.array_equal(ref["close"].to_numpy(),
                                                      ours["close"].to_numpy())
             and np.allclose(ref["volume"].to_numpy(), ours["volume"].to_numpy(),
                             rtol=1e-12, atol=0))
    con.close()
    del pl
    return {"case": label, "rows": len(df), "bins": len(ours), "ours_s": med["ours"],
            "polars_s": polars_s,
            "polars_way": "dynamic" if med["polars_dynamic"] <= med["polars_truncate"]
            else "truncate",
            "polars_x": polars_s / med["ours"], "duckdb_x": med["duckdb"] / med["ours"],
            "pandas_x": med["pandas"] / med["ours"], "agree": agree}


SMALL = [("1 day", 1440), ("1 week", 10_080), ("1 month", 43_200)]
SMALL_RULES = ["5min", "1h", "1D", "W", "ME"]
BIG = [("5min", None, True), ("1h", None, True), ("1D", None, True), ("1h", "5min", True),
       ("1h", "30min", True), ("4h", "1h", True), ("W", None, True), ("ME", None, True),
       ("QE", None, True), ("YS", None, True), ("1h", None, False)]
MULTI_RULES = ["5min", "1h", "1D", "W"]


def run_peers(df_1m: pd.DataFrame, multi: pd.DataFrame | None, rounds: int = 9, *,
              small_rounds: int = 41, big: bool = True, progress=None) -> list[dict]:
    """The small-frame, one-series and many-symbol rows against Polars/DuckDB/pandas."""
    warm()
    rows = []
    for label, n in SMALL:
        for rule in SMALL_RULES:
            rows.append(peer_case(f"{label} ({n:,} rows) {rule}", df_1m.iloc[:n], rule,
                                  rounds=small_rounds))
            if progress:
                progress(rows[-1])
    if big:
        for rule, offset, partial in BIG:
            name = f"{len(df_1m):,} rows {rule}" + (f" offset {offset}" if offset else "") + \
                ("" if partial else " partial=False")
            rows.append(peer_case(name, df_1m, rule, offset, partial, rounds))
            if progress:
                progress(rows[-1])
    if multi is not None:
        n_sym = multi.index.levels[0].size
        for rule in MULTI_RULES:
            rows.append(peer_case(f"{n_sym} symbols x {len(multi) // n_sym:,} rows {rule}",
                                  multi, rule, rounds=rounds))
            if progress:
                progress(rows[-1])
    return rows


def peers_table(rows: list[dict]) -> str:
    head = ("| case | bins | ours ms | Polars ms | Polars/ours | DuckDB/ours | pandas/ours | "
            "equal to Polars |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['bins']:,} | {r['ours_s'] * 1e3:.3f} | "
                     f"{r['polars_s'] * 1e3:.3f} ({r['polars_way']}) | {r['polars_x']:.2f}x | "
                     f"{r['duckdb_x']:.2f}x | {r['pandas_x']:.2f}x | {r['agree']} |")
    return "\n".join(lines)


def format_rows(rows: list[dict]) -> str:
    head = f"{'case':<34}{'ours s':>10}{'pandas s':>10}{'pandas/ours':>13}{'vs copy':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<34}{r['ours_s']:>10.4f}{r['peer_s']:>10.4f}"
                     f"{r['ratio']:>12.1f}x{r['bytes_moved_over_time']:>9.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=float, default=6.0)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--peers", action="store_true",
                    help="against Polars/DuckDB/pandas: small frames (1 day, 1 week, 1 month), "
                         "the long series (offsets, calendar rules, partial=False), and the "
                         "many-symbol frame")
    ap.add_argument("--small-only", action="store_true", help="with --peers: small frames only")
    ap.add_argument("--rounds", type=int, default=9, help="with --peers: rounds per big case")
    ap.add_argument("--small-rounds", type=int, default=41)
    args = ap.parse_args()
    df = _synthetic(int(args.years * 365.25 * 1440), np.random.default_rng(1))
    if args.peers:
        multi = None if args.small_only or not args.symbols else many_symbols(args.symbols,
                                                                               args.days)
        print(f"# resample vs Polars/DuckDB/pandas: {len(df):,} 1m rows, medians of interleaved "
              f"rounds ({args.small_rounds} small, {args.rounds} big); ratio = peer / ours, "
              "> 1 means we are faster", flush=True)
        rows = run_peers(df, multi, args.rounds, small_rounds=args.small_rounds,
                         big=not args.small_only,
                         progress=lambda r: print(f"  {r['case']}: {r['polars_x']:.2f}x Polars",
                                                  file=sys.stderr, flush=True))
        print(peers_table(rows))
        sys.exit(0)
    print(f"1m frame: {len(df):,} rows x {df.shape[1]} columns "
          f"({df.index[0]:%Y-%m-%d} .. {df.index[-1]:%Y-%m-%d}), "
          f"{args.symbols} symbols x {args.days}d for the many-symbol rows")
    print(format_rows(run(df, args.repeat, symbols=args.symbols, days=args.days)))
