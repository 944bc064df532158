"""Kernel benchmark: every indicator against `ta` and the best pandas expression, measured
side by side in the same run, then the resample/gaps section, then the cold start.

    python benchmarks/bench_kernels.py                 # 6 years of 1m bars (3.16M rows), everything
    python benchmarks/bench_kernels.py --quick         # 200k rows
    python benchmarks/bench_kernels.py --skip-slow-ta  # skip ta's Python loops (ATR, ADX, PSAR, ...)

Columns (medians of --repeat runs after one warm-up call; a peer whose warm-up call alone took
over --slow seconds is reported from that single call, marked "*"):
  ours_s, ta_s, pandas_s   seconds; pandas = the fastest vectorised pandas/numpy expression in
                           `cryptolake.testing.oracles` (— where there is none)
  ta/ours, pandas/ours     speed-ups (higher is better for us)
  copy_frac                copy_s / ours_s, where copy_s is np.copyto of a buffer holding the
                           bytes the indicator reads (its input columns) plus writes (its
                           outputs): 1.0 = as fast as copying those bytes once
Targets (never asserted): ta/ours >= 10 (or copy_frac >= 0.67 where ta is near the hardware:
EMA, MACD), pandas/ours >= 3, first call after a fresh import <= 0.5 s with a warm cache.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cryptolake.kernels import warm  # noqa: E402
from cryptolake.ops.indicators import INDICATORS  # noqa: E402
from cryptolake.testing.frames import walk_ohlcv  # noqa: E402
from cryptolake.testing.oracles import ORACLES  # noqa: E402

FULL_ROWS = 3_155_760          # 6 years of 1m bars (6 * 365.25 * 1440)
QUICK_ROWS = 200_000


def make_series(n: int, seed: int = 42) -> pd.DataFrame:
    """A seeded 1m random walk with realistic magnitudes on a tz-aware UTC DatetimeIndex."""
    return walk_ohlcv(n, seed, 30000.0, sigma=8e-4, wick=4.0, zero_share=0.02, start="2019-01-01")


def timed(fn, repeat: int, slow: float) -> tuple[float, bool]:
    """(median seconds, single_run). The first call is the warm-up; if it alone took more than
    `slow` seconds it is the measurement (a Python-loop peer taking minutes)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > slow:
        return first, True
    times = []
    for _ in range(max(repeat, 5)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), False


def copy_seconds(nbytes: int, repeat: int) -> float:
    src = np.ones(max(nbytes // 8, 1))
    dst = np.zeros_like(src)
    return timed(lambda: np.copyto(dst, src), repeat, 1e9)[0]


def _fmt_s(x: float | None, single: bool = False) -> str:
    if x is None:
        return "—"
    return (f"{x:.4f}" if x < 10 else f"{x:.1f}") + ("*" if single else "")


def _fmt_r(x: float | None) -> str:
    return "—" if x is None else (f"{x:.1f}x" if x < 100 else f"{x:.0f}x")


def bench_indicators(df: pd.DataFrame, repeat: int, skip_slow_ta: bool, slow: float,
                     only: list[str] | None) -> list[dict]:
    rows = []
    n = len(df)
    for name, o in ORACLES.items():
        if only and name not in only:
            continue
        f = INDICATORS[name]
        ours_s, _ = timed(lambda f=f: f(df), repeat, 1e9)
        out = f(df)
        n_out = 1 if isinstance(out, pd.Series) else out.shape[1]
        nbytes = (len(o.need) + n_out) * n * 8
        copy_s = copy_seconds(nbytes, repeat)
        ta_s = pd_s = None
        ta_single = pd_single = False
        if not (skip_slow_ta and o.slow_ta):
            ta_s, ta_single = timed(lambda o=o: o.ta_call(df), repeat, slow)
        if o.pandas_expr is not None:
            pd_s, pd_single = timed(lambda o=o: o.pandas_expr(df), repeat, slow)
        rows.append(dict(name=name, ours_s=ours_s, ta_s=ta_s, ta_single=ta_single, pandas_s=pd_s,
                         pandas_single=pd_single,
                         ta_ratio=None if ta_s is None else ta_s / ours_s,
                         pandas_ratio=None if pd_s is None else pd_s / ours_s,
                         copy_fraction=copy_s / ours_s, nbytes=nbytes))
        print(f"  measured {name}", file=sys.stderr, flush=True)
    return rows


def indicator_table(rows: list[dict]) -> str:
    lines = ["| indicator | ours s | ta s | pandas s | ta/ours | pandas/ours | copy_frac |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {_fmt_s(r['ours_s'])} | {_fmt_s(r['ta_s'], r['ta_single'])}"
                     f" | {_fmt_s(r['pandas_s'], r['pandas_single'])} | {_fmt_r(r['ta_ratio'])}"
                     f" | {_fmt_r(r['pandas_ratio'])} | {r['copy_fraction']:.2f} |")
    return "\n".join(lines)


def resample_rows(df: pd.DataFrame, repeat: int) -> str:
    try:
        mod = importlib.import_module("resample_section")
    except ImportError as e:
        return f"(resample section skipped: benchmarks/resample_section.py not importable: {e})"
    try:
        rows = mod.run(df, repeat=repeat)
    except Exception as e:  # a broken section must not hide the indicator table
        return f"(resample section failed: {type(e).__name__}: {e})"
    lines = ["| case | ours s | peer s | peer/ours | copy_frac |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        frac = r.get("copy_fraction", r.get("bytes_moved_over_time"))
        lines.append(f"| {r['name']} | {_fmt_s(r['ours_s'])} | {_fmt_s(r['peer_s'])} | "
                     f"{_fmt_r(r['ratio'])} | {'—' if frac is None else f'{frac:.2f}'} |")
    return "\n".join(lines)


COLD = textwrap.dedent("""
    import time, json
    t0 = time.perf_counter()
    import numpy as np, pandas as pd
    t1 = time.perf_counter()
    from cryptolake.ops.indicators import INDICATORS
    t2 = time.perf_counter()
    n = 100_000
    rng = np.random.default_rng(0)
    c = 100 + np.cumsum(rng.normal(0, 0.1, n))
    df = pd.DataFrame({"open": c, "high": c + 0.2, "low": c - 0.2, "close": c,
                       "volume": rng.random(n)},
                      index=pd.date_range("2024", periods=n, freq="1min", tz="UTC"))
    t3 = time.perf_counter()
    INDICATORS["rsi"](df)
    t4 = time.perf_counter()
    for f in INDICATORS.values():
        f(df)
    t5 = time.perf_counter()
    print(json.dumps(dict(pandas_import=t1 - t0, import_s=t2 - t1, first_rsi=t4 - t3,
                          first_all=t5 - t4)))
""")


def cold_start() -> dict | str:
    """First calls in a fresh interpreter, after one run that fills numba's cache."""
    import json
    res = None
    for _ in range(2):              # the first run fills the cache (if it was cold)
        res = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                             cwd=str(ROOT), timeout=900)
    if res.returncode != 0:
        return f"(cold start failed: {res.stderr.strip().splitlines()[-1:]})"
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS} rows instead of {FULL_ROWS}")
    ap.add_argument("--rows", type=int, default=None, help="override the number of rows")
    ap.add_argument("--skip-slow-ta", action="store_true",
                    help="skip ta where it is a Python loop (ATR, ADX, CCI, MFI, KAMA, PSAR, aroon)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs after warm-up (>= 5)")
    ap.add_argument("--slow", type=float, default=2.0,
                    help="a peer whose warm-up call takes longer is timed from that call alone")
    ap.add_argument("--only", nargs="*", help="indicator names to run")
    ap.add_argument("--no-resample", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    n = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    df = make_series(n)
    t0 = time.perf_counter()
    warm()
    print(f"kernels warmed in {time.perf_counter() - t0:.2f}s; {n:,} rows of 1m bars "
          f"({df.index[0]} .. {df.index[-1]}), repeat={max(args.repeat, 5)}\n")
    rows = bench_indicators(df, args.repeat, args.skip_slow_ta, args.slow, args.only)
    print("## Indicators\n")
    print(indicator_table(rows))
    print("\n* = single run (the peer's warm-up call took longer than "
          f"{args.slow:g}s); — = not measured/none.\n")
    if not args.no_resample:
        print("## Resample / gaps (benchmarks/resample_section.py)\n")
        print(resample_rows(df, args.repeat))
        print()
    cs = cold_start()
    print("## Cold start (fresh interpreter, warm numba cache)\n")
    if isinstance(cs, str):
        print(cs)
    else:
        print(f"import cryptolake.ops.indicators {cs['import_s']:.3f}s (numpy+pandas "
              f"{cs['pandas_import']:.3f}s before it); first rsi call on 100k rows "
              f"{cs['first_rsi']:.3f}s; first call of all {len(INDICATORS)} indicators "
              f"{cs['first_all']:.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
