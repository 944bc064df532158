"""cryptolake against the libraries researchers reach for when they care about speed.

    python benchmarks/bench_peers.py            # 3.16M rows (6 years of 1m bars), 100 symbols
    python benchmarks/bench_peers.py --quick    # 200k rows, 20 symbols, 5 rounds
    python benchmarks/bench_peers.py --only rsi macd --skip-resample

Sections (every timing is the median of --rounds interleaved rounds: each round calls every
contender once, in turn, so that other load on a shared machine falls on all alike; one
warm-up call each first; ratios are peer_s / ours_s, > 1 means we are faster):

1. Indicators on one series, through the public `df.lake.indicators.NAME()` path, against
   TA-Lib (the C library; an equivalent composed of TA-Lib functions where it has no such
   indicator, marked ~), `ta` (only where it is vectorised pandas; its Python loops take
   seconds to minutes), bottleneck and numbagg where they have the function.
   Agreement columns: `rel_talib` = max |ours - TA-Lib| / mean |TA-Lib| over the rows after
   the warm-up (--warmup rows, so that TA-Lib's different EMA/RSI/ATR/ADX seeding has decayed);
   `rel_ta` = the same against `ta` (the accuracy contract: <= 1e-9). Where TA-Lib's
   definition differs (OBV, MFI: see `cryptolake.testing.oracles`) rel_talib is large by
   design and marked "def".
2. Many series: `panel.lake.indicators([ten most used])` on a (symbol, time) frame of
   --symbols symbols against TA-Lib looped over the symbols (TA-Lib is handed pre-split
   numpy arrays and builds no frame: its best case).
3. Wrapper overhead: the public `df.lake.indicators.NAME()` against the raw kernel on the same
   column arrays writing freshly allocated outputs, for each of the ten, on 100k rows; pairs
   interleaved, the median of per-pair ratios in thread CPU time, wall clock alongside
   (target: the pandas layer costs <= 10%). Measured before sections 1 and 2, in the fresh
   process a research loop on 100k rows would be.
4. Resample (`df.lake.resample`) against Polars `group_by_dynamic`, DuckDB `time_bucket` and
   pandas `.resample().agg()`, each on its own native frame built outside the timing: one
   series to 5min/1h/1D, one month of one symbol to 1h/1D, the many-symbol frame to 1h.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cryptolake.accessors  # noqa: E402,F401  (registers df.lake)
from bench_kernels import make_series  # noqa: E402
from _timing import medians  # noqa: E402
from cryptolake.kernels import indicators as K  # noqa: E402
from cryptolake.kernels import warm  # noqa: E402
from cryptolake.ops.indicators import INDICATORS  # noqa: E402
from cryptolake.testing.oracles import ORACLES, TALIB  # noqa: E402

FULL_ROWS = 3_155_760
QUICK_ROWS = 200_000
TEN = ["sma", "ema", "rsi", "macd", "bbands", "atr", "stoch", "adx", "vwap", "obv"]


def _first(x) -> np.ndarray:
    """The first output of an indicator result (Series, DataFrame, array or tuple)."""
    if isinstance(x, pd.DataFrame):
        return x.iloc[:, 0].to_numpy(dtype=np.float64)
    if isinstance(x, (tuple, list)):
        return np.asarray(x[0], dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def rel_diff(a, b, warmup: int) -> float:
    """max |a - b| / mean |b| over rows >= warmup where both are finite."""
    a, b = np.asarray(a, dtype=np.float64)[warmup:], np.asarray(b, dtype=np.float64)[warmup:]
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    scale = float(np.mean(np.abs(b[ok]))) or 1.0
    return float(np.max(np.abs(a[ok] - b[ok]))) / scale


# ---------------------------------------------------------------- bottleneck / numbagg peers
def _bn_peers(df: pd.DataFrame) -> dict:
    out = {}
    try:
        import bottleneck as bn
    except ImportError:
        return out
    h, l, c, v = (df[k].to_numpy() for k in ("high", "low", "close", "volume"))
    tp = None

    def vwap():
        t = (h + l + c) / 3.0
        return bn.move_sum(t * v, 14) / bn.move_sum(v, 14)

    def bbands():
        m, s = bn.move_mean(c, 20), bn.move_std(c, 20)
        return m, m + 2 * s, m - 2 * s

    def donchian():
        u, lo = bn.move_max(h, 20), bn.move_min(l, 20)
        return (u - lo) / 2 + lo, u, lo

    def stoch():
        lo = bn.move_min(l, 14)
        k = 100 * (c - lo) / (bn.move_max(h, 14) - lo)
        return k, bn.move_mean(k, 3)

    del tp
    out["sma"] = lambda: bn.move_mean(c, 12)
    out["bbands"] = bbands
    out["donchian"] = donchian
    out["stoch"] = stoch
    out["williams_r"] = lambda: -100 * (bn.move_max(h, 14) - c) / (bn.move_max(h, 14)
                                                                   - bn.move_min(l, 14))
    out["vwap"] = vwap
    return out


def _nb_peers(df: pd.DataFrame) -> dict:
    out = {}
    try:
        import numbagg as nb
    except ImportError:
        return out
    h, l, c, v = (df[k].to_numpy() for k in ("high", "low", "close", "volume"))

    def bbands():
        m, s = nb.move_mean(c, window=20), nb.move_std(c, window=20)
        return m, m + 2 * s, m - 2 * s

    def vwap():
        t = (h + l + c) / 3.0
        return nb.move_sum(t * v, window=14) / nb.move_sum(v, window=14)

    out["sma"] = lambda: nb.move_mean(c, window=12)
    out["bbands"] = bbands
    out["vwap"] = vwap
    return out


# ---------------------------------------------------------------- section 1
def bench_indicators(df: pd.DataFrame, rounds: int, warmup: int, only, skip_ta: bool):
    import talib  # noqa: F401  (fail early with a clear ImportError)

    arrs = {k: df[k].to_numpy() for k in ("high", "low", "close", "volume")}
    bn_p, nb_p = _bn_peers(df), _nb_peers(df)
    acc = df.lake.indicators
    rows = []
    for name, o in ORACLES.items():
        if only and name not in only:
            continue
        tl = TALIB.get(name)
        fns = {"ours": lambda name=name: getattr(acc, name)()}
        if tl is not None:
            fns["talib"] = lambda tl=tl: tl.call(arrs)
        if not skip_ta and not o.slow_ta:
            fns["ta"] = lambda o=o: o.ta_call(df)
        if name in bn_p:
            fns["bottleneck"] = bn_p[name]
        if name in nb_p:
            fns["numbagg"] = nb_p[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            med = medians(fns, rounds, pause=True)   # numbagg's OpenMP threads spin after it
            ours = getattr(acc, name)()
            row = {"name": name, "ours_s": med["ours"]}
            if tl is not None:
                ref = tl.call(arrs)
                row["rel_talib"] = rel_diff(_first(ours) * tl.scale, _first(ref), warmup)
                row["same_def"] = tl.same
                row["composed"] = tl.composed
            if "ta" in fns:
                row["rel_ta"] = rel_diff(_first(ours), _first(o.ta_call(df)), 0)
        for k in ("talib", "ta", "bottleneck", "numbagg"):
            if k in med:
                row[k + "_s"] = med[k]
                row[k + "_x"] = med[k] / med["ours"]
        rows.append(row)
        print(f"  measured {name}", file=sys.stderr, flush=True)
    return rows


def _x(row, k):
    v = row.get(k + "_x")
    return "—" if v is None else f"{v:.2f}x"


def _e(v):
    return "—" if v is None or v != v else f"{v:.1e}"


def indicator_table(rows, n: int) -> str:
    lines = [f"Indicators on one series of {n:,} rows (medians; ratio = peer / ours):", "",
             "| indicator | ours ms | ns/row | TA-Lib | ta | bottleneck | numbagg | rel_talib "
             "| rel_ta |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rt = _e(r.get("rel_talib"))
        if "same_def" in r and not r["same_def"]:
            rt += " def"
        name = r["name"] + (" ~" if r.get("composed") else "")
        lines.append(f"| {name} | {r['ours_s'] * 1e3:.1f} | {r['ours_s'] * 1e9 / n:.2f} | "
                     f"{_x(r, 'talib')} | {_x(r, 'ta')} | {_x(r, 'bottleneck')} | "
                     f"{_x(r, 'numbagg')} | {rt} | {_e(r.get('rel_ta'))} |")
    lines += ["", "~ TA-Lib has no such indicator: the peer is the same formula composed of "
              "TA-Lib functions (and numpy).",
              "def: TA-Lib defines it differently (see cryptolake.testing.oracles)."]
    return "\n".join(lines)


# ---------------------------------------------------------------- section 2
def make_panel(n_symbols: int, rows_per: int) -> pd.DataFrame:
    parts = {f"S{k:03d}USDT": make_series(rows_per, seed=1000 + k) for k in range(n_symbols)}
    return pd.concat(parts, names=["symbol", "open_time"])


def bench_panel(panel: pd.DataFrame, rounds: int) -> dict:
    import talib  # noqa: F401

    syms = panel.index.get_level_values(0).unique()
    split = [{k: np.ascontiguousarray(g[k].to_numpy()) for k in ("high", "low", "close", "volume")}
             for _, g in panel.groupby(level=0, sort=False)]

    def talib_loop():
        for arrs in split:
            for name in TEN:
                TALIB[name].call(arrs)

    med = medians({"ours": lambda: panel.lake.indicators(TEN), "talib": talib_loop}, rounds)
    return {"symbols": len(syms), "rows": len(panel), **med, "ratio": med["talib"] / med["ours"]}


# ---------------------------------------------------------------- section 3
def _raw_kernels(df: pd.DataFrame) -> dict:
    """The raw kernel call behind each of the ten, on the very arrays the public path hands
    its kernel (the frame's own column buffers), writing freshly allocated outputs."""
    h, l, c, v = (np.ascontiguousarray(df[k].to_numpy(dtype=np.float64))
                  for k in ("high", "low", "close", "volume"))
    a12 = K.alpha_from_span(12)
    return {
        "sma": (lambda o: K.rolling_mean(c, 12, 12, o[0]), 1),
        "ema": (lambda o: K.ewm_mean(c, a12, 12, o[0]), 1),
        "rsi": (lambda o: K.rsi(c, 14, o[0]), 1),
        "macd": (lambda o: K.macd(c, 12, 26, 9, o), 3),
        "bbands": (lambda o: K.bbands(c, 20, 2.0, o), 3),
        "atr": (lambda o: K.atr(h, l, c, 14, o[0]), 1),
        "stoch": (lambda o: K.stoch(h, l, c, 14, 3, o), 2),
        "adx": (lambda o: K.adx(h, l, c, 14, o), 3),
        "vwap": (lambda o: K.vwap(h, l, c, v, 14, o[0]), 1),
        "obv": (lambda o: K.obv(c, v, o[0]), 1),
    }


def bench_overhead(n: int, rounds: int, only) -> list[dict]:
    """Public `df.lake.indicators.NAME()` against its raw kernel, interleaved pair by pair
    (the order alternates each round), many pairs; the overhead is the median over pairs of
    public/kernel - 1, so that load which slows one pair slows both of its calls. Each call
    is timed twice: wall clock and the thread's CPU time (`time.thread_time_ns`: on a shared
    machine a wall-clock pair that another process pre-empted is noise, its CPU time is
    not; the pandas layer is CPU work either way)."""
    df = make_series(n, seed=7)
    acc = df.lake.indicators
    rows = []
    for name, (fn, k) in _raw_kernels(df).items():
        if only and name not in only:
            continue
        kern = (lambda fn=fn, k=k: fn(tuple([np.empty(n) for _ in range(k)])))
        pub = getattr(acc, name)
        for f in (kern, pub, kern, pub):
            f()
        tk, tp, ck, cp = [], [], [], []
        for r in range(max(rounds * 60, 200)):
            pair = ((kern, tk, ck), (pub, tp, cp))
            if r % 2:
                pair = pair[::-1]
            for f, wall, cpu in pair:
                c0 = time.thread_time_ns()
                t0 = time.perf_counter()
                f()
                wall.append(time.perf_counter() - t0)
                cpu.append(time.thread_time_ns() - c0)
        ratio = statistics.median([p / q for p, q in zip(tp, tk, strict=True)])
        cratio = statistics.median([p / q for p, q in zip(cp, ck, strict=True) if q > 0])
        rows.append({"name": name, "kernel": statistics.median(tk),
                     "public": statistics.median(tp), "overhead": cratio - 1.0,
                     "wall_overhead": ratio - 1.0})
    return rows


# ---------------------------------------------------------------- section 4
def _polars_frame(df: pd.DataFrame):
    import polars as pl
    d = {"open_time": df.index.get_level_values(-1).as_unit("ns").tz_convert(None)}
    if isinstance(df.index, pd.MultiIndex):
        d["symbol"] = df.index.get_level_values(0).astype(str)
    for c in ("open", "high", "low", "close", "volume"):
        d[c] = df[c].to_numpy()
    return pl.DataFrame(d)


def _polars_resample(pf, rule: str, by_symbol: bool):
    import polars as pl
    every = {"5min": "5m", "1h": "1h", "1D": "1d"}[rule]
    kw = {"group_by": "symbol"} if by_symbol else {}
    return pf.group_by_dynamic("open_time", every=every, closed="left", label="left",
                               **kw).agg(pl.col("open").first(), pl.col("high").max(),
                                         pl.col("low").min(), pl.col("close").last(),
                                         pl.col("volume").sum())


def _duck_resample(con, rule: str, by_symbol: bool):
    iv = {"5min": "5 minutes", "1h": "1 hour", "1D": "1 day"}[rule]
    sym = "symbol, " if by_symbol else ""
    q = (f"SELECT {sym}time_bucket(INTERVAL '{iv}', open_time) AS t, "
         "arg_min(open, open_time) AS open, max(high) AS high, min(low) AS low, "
         "arg_max(close, open_time) AS close, sum(volume) AS volume "
         f"FROM bars GROUP BY ALL ORDER BY {sym}t")
    return con.execute(q).fetchnumpy()


def _pandas_resample(df: pd.DataFrame, rule: str):
    spec = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    if isinstance(df.index, pd.MultiIndex):
        return df.groupby(level=0).resample(rule, level=-1).agg(spec).dropna(subset=["close"])
    return df.resample(rule).agg(spec).dropna(subset=["close"])


def bench_resample(cases, rounds: int) -> list[dict]:
    rows = []
    try:
        import duckdb
    except ImportError:
        duckdb = None
    for label, df, rule in cases:
        df = df[["open", "high", "low", "close", "volume"]]
        by_sym = isinstance(df.index, pd.MultiIndex)
        fns = {"ours": lambda df=df, rule=rule: df.lake.resample(rule)}
        try:
            pf = _polars_frame(df)
            fns["polars"] = lambda pf=pf, rule=rule: _polars_resample(pf, rule, by_sym)
        except ImportError:
            pf = None
        if duckdb is not None:
            con = duckdb.connect()
            con.register("bars_src", _polars_frame(df).to_arrow() if pf is not None else df)
            con.execute("CREATE TABLE bars AS SELECT * FROM bars_src")
            fns["duckdb"] = lambda con=con, rule=rule: _duck_resample(con, rule, by_sym)
        fns["pandas"] = lambda df=df, rule=rule: _pandas_resample(df, rule)
        med = medians(fns, rounds)
        ours = df.lake.resample(rule)
        row = {"case": label, "rows": len(df), "ours_s": med["ours"], "bins": len(ours)}
        for k in ("polars", "duckdb", "pandas"):
            if k in med:
                row[k + "_x"] = med[k] / med["ours"]
        if pf is not None:      # agreement: close and volume per bin against Polars
            p = _polars_resample(pf, rule, by_sym).sort(
                ["symbol", "open_time"] if by_sym else ["open_time"])
            row["agree"] = (len(p) == len(ours)
                            and np.array_equal(p["close"].to_numpy(), ours["close"].to_numpy())
                            and np.allclose(p["volume"].to_numpy(), ours["volume"].to_numpy(),
                                            rtol=1e-12, atol=0))
        rows.append(row)
        print(f"  measured {label}", file=sys.stderr, flush=True)
    return rows


def resample_table(rows) -> str:
    lines = ["Resample (medians; ratio = peer / ours):", "",
             "| case | rows | bins | ours ms | Polars | DuckDB | pandas | equal to Polars |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['rows']:,} | {r['bins']:,} | {r['ours_s'] * 1e3:.2f} | "
                     f"{_x(r, 'polars')} | {_x(r, 'duckdb')} | {_x(r, 'pandas')} | "
                     f"{r.get('agree', '—')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200k rows, 20 symbols, 5 rounds")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--symbols", type=int)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--warmup", type=int, default=5000,
                    help="rows skipped by the agreement columns (TA-Lib's seeding)")
    ap.add_argument("--only", nargs="*", help="indicator names")
    ap.add_argument("--skip-ta", action="store_true", help="do not time `ta`")
    ap.add_argument("--skip-resample", action="store_true")
    ap.add_argument("--skip-panel", action="store_true")
    a = ap.parse_args(argv)
    n = a.rows or (QUICK_ROWS if a.quick else FULL_ROWS)
    n_sym = a.symbols or (20 if a.quick else 100)
    rounds = a.rounds or (5 if a.quick else 9)
    warmup = min(a.warmup, n // 4)
    warm()
    df = make_series(n)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"# bench_peers: {n:,} rows, {n_sym} symbols, {rounds} rounds; {cores} cores, "
          f"load average {load} (ratios mean little once the load exceeds the cores)",
          flush=True)
    # measured first: after the 3.16M-row rounds have allocated and freed gigabytes, the same
    # 0.1 ms calls (kernel and wrapper alike) ran up to 80% slower on this box
    ov = bench_overhead(100_000, rounds, a.only)
    rows = bench_indicators(df, rounds, warmup, a.only, a.skip_ta)
    print(indicator_table(rows, n), "\n", flush=True)
    if not a.skip_panel:
        panel = make_panel(n_sym, n // n_sym)
        p = bench_panel(panel, rounds)
        print(f"Many series: {p['symbols']} symbols x {p['rows'] // p['symbols']:,} rows, the ten "
              f"most used: ours {p['ours'] * 1e3:.1f} ms, TA-Lib looped {p['talib'] * 1e3:.1f} ms, "
              f"TA-Lib / ours = {p['ratio']:.2f}x\n", flush=True)
    print("Wrapper overhead on 100,000 rows (median over interleaved pairs of public / raw "
          "kernel - 1, in thread CPU time; wall clock alongside; measured before the rest):\n")
    print("| indicator | kernel ms | public ms | overhead (CPU) | overhead (wall) |\n"
          "|---|---:|---:|---:|---:|")
    for r in ov:
        print(f"| {r['name']} | {r['kernel'] * 1e3:.3f} | {r['public'] * 1e3:.3f} | "
              f"{r['overhead'] * 100:.1f}% | {r['wall_overhead'] * 100:.1f}% |")
    print(flush=True)
    if not a.skip_resample:
        month = df.iloc[:43_200]
        cases = [("one series 5min", df, "5min"), ("one series 1h", df, "1h"),
                 ("one series 1D", df, "1D"), ("one month 1h", month, "1h"),
                 ("one month 1D", month, "1D")]
        if not a.skip_panel:
            cases.append((f"{n_sym} symbols 1h", panel, "1h"))
        print(resample_table(bench_resample(cases, rounds)), flush=True)


if __name__ == "__main__":
    main()
