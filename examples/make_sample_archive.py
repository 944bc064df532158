"""Build the bundled sample archive in examples/sample-archive/ (a mirror of data.binance.vision).

It holds two kinds of files in the archive's own layout (``data/spot/daily/klines/...``):

* real files downloaded from data.binance.vision, copied byte for byte from the shared
  fixtures directory (``--fixtures`` or ``$CRYPTOLAKE_FIXTURES``; default
  ``../shared/fixtures/data.binance.vision`` beside the repository);
* generated files written by ``cryptolake.testing.archive.ArchiveBuilder`` (seeded: the same
  seed gives the same bytes and checksums):
    - spot and um ``klines`` 1m, daily files, BTCUSDT / ETHUSDT / SOLUSDT, 2026-05-01..03
      (spot ETHUSDT misses 90 bars on 2026-05-02, 10:00-11:29 UTC: a maintenance outage);
    - one closed month as a monthly file: spot BTCUSDT ``klines`` 1h 2026-04 (1h keeps the
      bundle small; it leads into the real daily 1h files of 2026-05-08/09);
    - um ``fundingRate`` monthly 2026-03 for all three symbols and 2026-04 for ETHUSDT and
      SOLUSDT (BTCUSDT 2026-04 is the real file).

``manifest.json`` lists every key as real or generated with its sha256; README.md says the same
for people. Run from anywhere:

    python examples/make_sample_archive.py [--fixtures DIR] [--out DIR] [--seed 0]

Point a lake at the result with ``cl.BinanceArchive("file:///.../examples/sample-archive")``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

from cryptolake.testing.archive import ArchiveBuilder

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures" / "data.binance.vision"
DEFAULT_OUT = REPO / "examples" / "sample-archive"

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
START_PRICE = {"BTCUSDT": 78_500.0, "ETHUSDT": 2_950.0, "SOLUSDT": 145.0}
DAYS = ("2026-05-01", "2026-05-02", "2026-05-03")
GAP = {("spot", "ETHUSDT", "2026-05-02"): [("2026-05-02 10:00", "2026-05-02 11:29")]}
MONTHLY = ("spot", "BTCUSDT", "1h", "2026-04")
FUNDING = [("2026-03", s) for s in SYMBOLS] + [("2026-04", "ETHUSDT"), ("2026-04", "SOLUSDT")]


def copy_real(fixtures: Path, out: Path) -> list[str]:
    """Copy every file under the fixtures mirror into ``out`` (same relative paths)."""
    if not (fixtures / "data").is_dir():
        raise SystemExit(f"no real archive files at {fixtures} (expected {fixtures}/data/...); "
                         f"pass --fixtures or set CRYPTOLAKE_FIXTURES")
    keys = []
    for p in sorted(fixtures.rglob("*")):
        if p.is_file():
            rel = p.relative_to(fixtures).as_posix()
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, out / rel)
            keys.append(rel)
    return keys


def generate(out: Path, seed: int, real: set[str]) -> ArchiveBuilder:
    """Write the generated files; never overwrites a real one."""
    b = ArchiveBuilder(out.as_uri())
    last_close: dict[tuple[str, str], float] = {}

    def kl(market, symbol, interval, period, **kw):
        k = (market, symbol)
        key = b.klines(market, symbol, interval, period, seed=seed,
                       start_price=last_close.get(k, START_PRICE[symbol]), **kw)
        assert key.key not in real, key.key
        last_close[k] = float(b.frame(key).close.iloc[-1])      # next file continues the walk
        return key

    market, symbol, interval, month = MONTHLY
    kl(market, symbol, interval, month)
    last_close.clear()
    for market in ("spot", "um"):
        for symbol in SYMBOLS:
            for day in DAYS:
                kl(market, symbol, "1m", day, missing=GAP.get((market, symbol, day), ()))
    for month, symbol in FUNDING:
        key = b.funding("um", symbol, month, seed=seed)
        assert key.key not in real, key.key
    return b


def readme(real: list[str], generated: list[str], out: Path, seed: int) -> str:
    def rows(keys):
        return "\n".join(f"| `{k}` | {(out / k).stat().st_size:,} |" for k in keys if k.endswith(".zip"))

    return f"""# Sample archive

A small mirror of data.binance.vision in its own key layout, for the offline demo and tests
(`cl.BinanceArchive("file://<this directory>")`). Every `.zip` has its `.zip.CHECKSUM` beside it.
Rebuild with `python examples/make_sample_archive.py` (seed {seed}); `manifest.json` lists
the same split with sha256s.

## Real files (downloaded from data.binance.vision, byte for byte)

| key | bytes |
|---|---|
{rows(real)}

## Generated files (cryptolake.testing.archive.ArchiveBuilder, seeded random walks)

Realistic format: spot files dated 2025+ in microseconds without a header, futures files in
milliseconds with a header, funding `calc_time` with a few ms of jitter. Spot ETHUSDT
2026-05-02 lacks 90 bars (10:00-11:29 UTC), like a maintenance outage. The spot BTCUSDT
1h monthly file for 2026-04 (a closed month) leads into the real daily 1h files of May.
None of these numbers are market data.

| key | bytes |
|---|---|
{rows(generated)}
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", type=Path,
                    default=Path(os.environ.get("CRYPTOLAKE_FIXTURES", DEFAULT_FIXTURES)),
                    help="mirror root holding the real files (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()

    shutil.rmtree(out / "data", ignore_errors=True)             # rebuild from scratch
    out.mkdir(parents=True, exist_ok=True)
    real = copy_real(args.fixtures.resolve(), out)
    b = generate(out, args.seed, set(real))
    generated = sorted([k.key for k in b.keys] + [k.checksum_key for k in b.keys])

    def sha(k):
        return hashlib.sha256((out / k).read_bytes()).hexdigest()

    manifest = {"seed": args.seed,
                "real": [k for k in real],
                "generated": generated,
                "sha256": {k: sha(k) for k in sorted(real + generated)}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "README.md").write_text(readme(real, generated, out, args.seed))
    total = sum((out / k).stat().st_size for k in real + generated)
    print(f"{out}: {len(real)} real + {len(generated)} generated files "
          f"(zips and CHECKSUMs), {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
