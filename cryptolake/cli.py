"""Command line: `cryptolake ingest | verify | run | demo | migrate`. Exit 0 on success, non-zero with a
one-line reason on failure."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ARCHIVE = REPO / "examples" / "sample-archive"


def _lake(args):
    import cryptolake as cl
    archive = cl.BinanceArchive(args.archive) if getattr(args, "archive", None) else None
    return cl.Lake(args.lake, archive=archive)


def cmd_ingest(args) -> int:
    lake = _lake(args)
    symbols = args.symbols.split(",") if args.symbols else None
    report = lake.ingest(args.market, args.data_type, symbols, interval=args.interval,
                         start=args.start, end=args.end, top_up=not args.no_top_up,
                         progress=not args.quiet)
    print(report)
    for e in report.errors:
        print("  error:", e)
    return 0 if report.ok else 1


def cmd_verify(args) -> int:
    lake = _lake(args)
    res = lake.bronze.verify()
    absent = res["status"] == "not_published"          # the archive lacks them: gaps, not damage
    bad = res[(res["status"] != "ok") & ~absent]
    print(f"{int((~absent).sum())} files checked, {int((~absent).sum()) - len(bad)} ok, {len(bad)} not ok"
          + (f"; {int(absent.sum())} periods the archive never published" if absent.any() else ""))
    if len(bad):
        print(bad.to_string(index=False))
    return 0 if bad.empty else 1


def cmd_migrate(args) -> int:
    import cryptolake as cl
    lake = cl.Lake(args.url)
    if not lake.is_legacy():
        print(f"{lake.url} is already a Delta lake; nothing to migrate")
        return 0
    done = lake.migrate(progress=not args.quiet)
    for name, rows in done.items():
        print(f"  {name}: {rows:,} rows")
    print(f"migrated {lake.url}: {len(done)} tables now Delta tables")
    return 0


def cmd_run(args) -> int:
    from .pipelines import run_pipeline
    params = {k: v for k, v in args.param}
    out = run_pipeline(args.name, params, output_dir=args.output)
    print(f"ran {args.name}: {out}")
    return 0


def demo_plan(archive_dir: Path) -> list[tuple[str, str, str | None]]:
    """(market, data_type, interval) of every ingestible table in a local archive mirror."""
    import fsspec

    from .layout import parse_archive_key
    from .schema import INGESTIBLE
    fs = fsspec.filesystem("file")
    root = str(archive_dir.resolve())
    found = set()
    for path in fs.find(root):
        key = parse_archive_key(path[len(root):].lstrip("/"))
        if key and key.data_type in INGESTIBLE:
            found.add((key.market, key.data_type, key.interval))
    return sorted(found, key=lambda x: (x[0], x[1], x[2] or ""))


def cmd_demo(args) -> int:
    import pandas as pd

    import cryptolake as cl
    archive_dir = Path(args.archive or SAMPLE_ARCHIVE)
    if not archive_dir.exists():
        raise SystemExit(f"sample archive not found at {archive_dir}; run examples/make_sample_archive.py")
    lake = cl.Lake(args.lake, archive=cl.BinanceArchive(archive_dir.resolve().as_uri()))
    print(f"Ingesting the sample archive {archive_dir} into {lake.url} (offline)\n")
    show_bars = not args.quiet and sys.stderr.isatty()
    gaps = []
    for market, data_type, interval in demo_plan(archive_dir):
        report = lake.ingest(market, data_type, interval=interval, top_up=False, progress=show_bars)
        print(report)
        for e in report.errors:
            print("   !", e)
        if len(report.gaps):
            gaps.append(report.gaps.assign(table=report.table))
    pd.set_option("display.width", 200)
    coverage = pd.concat([lake.silver[n].coverage().assign(table=n) for n in lake.silver.tables])
    print("\nCoverage")
    print(coverage.set_index(["table", "symbol"]).to_string())
    if gaps:
        print("\nGaps")
        print(pd.concat(gaps).set_index(["table", "symbol"]).to_string())
    print(f"\nExplore it: lake = cl.Lake({args.lake!r}); lake.silver.tables")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cryptolake", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def lake_args(sp):
        sp.add_argument("--lake", default=None, help="lake URL (default $CRYPTOLAKE_ROOT or ~/.cryptolake)")
        sp.add_argument("--archive", default=None, help="archive URL (default: the live public archive)")

    sp = sub.add_parser("ingest", help="fetch archive files into the lake")
    sp.add_argument("market", help="spot, um or cm")
    sp.add_argument("data_type", help="klines, fundingRate, markPriceKlines, ...")
    sp.add_argument("--symbols", help="comma-separated (default: every listed symbol)")
    sp.add_argument("--interval")
    sp.add_argument("--start")
    sp.add_argument("--end")
    sp.add_argument("--no-top-up", action="store_true")
    sp.add_argument("--quiet", action="store_true")
    lake_args(sp)
    sp.set_defaults(func=cmd_ingest)

    sp = sub.add_parser("verify", help="re-check every bronze file against its SHA-256")
    sp.add_argument("--lake", default=None)
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser("migrate", help="convert a lake in the pre-Delta layout to Delta tables, in place")
    sp.add_argument("url", help="lake URL (a local path, file://, s3://, ...)")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_migrate)

    sp = sub.add_parser("run", help="run a pipeline notebook with papermill")
    sp.add_argument("name", help="notebook name under notebooks/pipelines/ (without .ipynb)")
    sp.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    sp.add_argument("--output", default=None, help="directory for the executed notebook")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("demo", help="ingest the bundled sample archive offline and print coverage")
    sp.add_argument("--lake", default="./demo-lake")
    sp.add_argument("--archive", default=None, help=f"default {SAMPLE_ARCHIVE}")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"cryptolake {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:   # one line for people and schedulers; CRYPTOLAKE_DEBUG=1 for the trace
        if os.environ.get("CRYPTOLAKE_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"cryptolake {args.command}: {type(e).__name__}: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
