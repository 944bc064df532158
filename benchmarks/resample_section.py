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
import cryptolake.accessors  # noqa: F401,E402  (registers df.lake)
from cryptolake.kernels import warm  # noqa: E402
from cryptolake.testing.strategies import pandas_agg_spec, pandas_gaps  # noqa: E402

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
    args = ap.parse_args()
    df = _synthetic(int(args.years * 365.25 * 1440), np.random.default_rng(1))
    print(f"1m frame: {len(df):,} rows x {df.shape[1]} columns "
          f"({df.index[0]:%Y-%m-%d} .. {df.index[-1]:%Y-%m-%d}), "
          f"{args.symbols} symbols x {args.days}d for the many-symbol rows")
    print(format_rows(run(df, args.repeat, symbols=args.symbols, days=args.days)))
