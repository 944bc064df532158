"""One long series on all cores for the recurrences (`ops/_split_recur.py`): the splitter
against the kernel's own serial call, by series length, to choose `_split.SPLIT_MIN_ROWS`.

    PYTHONPATH=. python benchmarks/bench_split_recur.py            # 100k .. 3.16M rows
    PYTHONPATH=. python benchmarks/bench_split_recur.py --rows 200000 1000000 --rounds 15

Medians of interleaved rounds (each round calls serial then split once); ratio = serial /
split (> 1: the split is faster); `redo` = rows the last split call recomputed after the
guessed parts (0 when every guessed path had met the true one at its first row). Both
write into the same preallocated outputs (no page faults in either).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptolake.kernels import indicators as K  # noqa: E402
from cryptolake.ops import _split, _split_recur as R  # noqa: E402
from cryptolake.ops._threads import workers  # noqa: E402


def _series(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    c = 30000.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    h = c * (1 + np.abs(rng.normal(0, 5e-4, n)))
    l = c * (1 - np.abs(rng.normal(0, 5e-4, n)))
    return h, l, c


def _cases(h, l, c):
    return [("ema", K.ewm_mean, [c], (K.alpha_from_span(12), 12), 1),
            ("rsi", K.rsi, [c], (14,), 1), ("macd", K.macd, [c], (12, 26, 9), 3),
            ("trix", K.trix, [c], (15,), 1), ("kama", K.kama, [c], (10, 2, 30), 1),
            ("atr", K.atr, [h, l, c], (14,), 1), ("adx", K.adx, [h, l, c], (14,), 3),
            ("psar", K.psar, [h, l, c], (0.02, 0.2), 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="*",
                    default=[100_000, 250_000, 500_000, 1_000_000, 3_155_760])
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()
    parts = max(2, workers())
    print(f"{workers()} cores; split into {parts} parts; SPLIT_MIN_ROWS = "
          f"{_split.SPLIT_MIN_ROWS:,}\n")
    print("| rows | " + " | ".join(c[0] for c in _cases(*_series(10))) + " |")
    print("|---:|" + "---:|" * len(_cases(*_series(10))))
    for n in args.rows:
        h, l, c = _series(n)
        cells = []
        for name, kern, cols, p, m in _cases(h, l, c):
            outs = tuple(np.empty(n) for _ in range(m))
            split = _split.SPLITTERS[kern]

            def serial():
                kern(*cols, *p, outs[0] if m == 1 else outs)

            def parallel():
                split(cols, p, outs, parts)

            serial()
            parallel()
            ts: dict = {serial: [], parallel: []}
            for _ in range(args.rounds):
                for f in (serial, parallel):
                    t0 = time.perf_counter()
                    f()
                    ts[f].append(time.perf_counter() - t0)
            ratio = statistics.median(ts[serial]) / statistics.median(ts[parallel])
            redo = R.LAST_REDO[0]
            cells.append(f"{ratio:.2f}x" + (f" (redo {redo:,})" if redo else ""))
        print(f"| {n:,} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
