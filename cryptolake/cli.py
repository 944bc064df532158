"""Command line: `cryptolake ingest | verify | run | demo | tables | sql | history | runs | migrate`.
Exit 0 on success, non-zero with a one-line reason on failure (CRYPTOLAKE_DEBUG=1 shows the trace)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ARCHIVE = REPO / "examples" / "sample-archive"


def _options(args) -> dict | None:
    text = getattr(args, "storage_options", None)
    if not text:
        return None
    from .pipelines import parse_value
    opts = parse_value(text)
    if not isinstance(opts, dict):
        raise ValueError(f"--storage-options must be a mapping like '{{key: K, secret: S}}'; got {text!r}")
    return opts


def _lake(args):
    import cryptolake as cl
    archive = cl.BinanceArchive(args.archive) if getattr(args, "archive", None) else None
    return cl.Lake(args.lake, storage_options=_options(args), archive=archive)


def _print_frame(df) -> None:
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 80):
        print(df.to_string(index=False) if len(df) else "(no rows)")


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
    from .pipelines import PipelineError, parse_value, run_pipeline
    raw = {k: v for k, v in args.param}
    params = {k: parse_value(v) for k, v in raw.items()}
    try:
        rec = run_pipeline(args.name, params, lake_url=args.lake, storage_options=_options(args),
                           raw=raw)
    except PipelineError as e:
        print(f"cryptolake run: {e}", file=sys.stderr)
        return 1
    print(f"ran {args.name}: {rec['status']} in {rec['duration_s']:.1f} s; "
          f"record: {rec['path']}/record.json")
    return 0


def cmd_tables(args) -> int:
    import pandas as pd
    lake = _lake(args)
    rows = []
    for layer in (lake.silver, lake.gold):
        for name in layer.tables:
            t = layer[name]
            try:
                n = int(t.partition_stats()["rows"].sum())
            except Exception:
                n = None
            rows.append((layer.layer, name, t.version, len(t.symbols), n))
    _print_frame(pd.DataFrame(rows, columns=["layer", "table", "version", "symbols", "rows"]))
    return 0


def cmd_sql(args) -> int:
    _print_frame(_lake(args).sql(args.query))
    return 0


def _table(lake, name: str):
    layer, _, table = name.rpartition(".")
    layers = {"silver": lake.silver, "gold": lake.gold}
    if layer and layer not in layers:
        raise ValueError(f"table {name!r}: layer must be silver or gold")
    for lay in ([layers[layer]] if layer else layers.values()):
        if table in lay.tables:
            return lay[table]
    known = [f"{lay.layer}.{t}" for lay in layers.values() for t in lay.tables]
    raise ValueError(f"no table {name!r}; tables: {', '.join(known) or 'none (ingest first)'}")


def cmd_history(args) -> int:
    _print_frame(_table(_lake(args), args.table).history(limit=args.limit))
    return 0


def cmd_runs(args) -> int:
    from .runs import runs
    df = runs(_lake(args), pipeline=args.pipeline)
    df = df.assign(started=df["started"].dt.strftime("%Y-%m-%d %H:%M:%SZ"),
                   duration=[f"{d.total_seconds():.1f}s" for d in df["duration"]],
                   error=df["error"].fillna(""))
    _print_frame(df[["pipeline", "started", "status", "duration", "error", "path"]])
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


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (schedulers log one line per failure)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cryptolake", description=__doc__)
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

    sp = sub.add_parser("run", help="run a pipeline notebook with papermill and record the run",
                        description="Run notebooks/pipelines/NAME.ipynb (kernel python3). The run leaves "
                        "the executed notebook, record.json and figures under the lake's "
                        "_runs/NAME/<UTC time>/. Values are YAML: -p symbols '[BTCUSDT]' -p top_up false.")
    sp.add_argument("name", help="pipeline name: daily_update, quality_report, ingest")
    sp.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="a parameter of the notebook's parameters cell (papermill --help-notebook lists them)")
    sp.add_argument("--lake", default=None, help="lake URL (same as -p lake_url URL; default: the "
                    "notebook's lake_url, else $CRYPTOLAKE_ROOT or ~/.cryptolake)")
    sp.add_argument("--storage-options", default=None, help="fsspec options as YAML/JSON, e.g. "
                    "'{endpoint_url: http://...}' (credentials are REDACTED in the record)")
    sp.set_defaults(func=cmd_run)

    def read_args(sp):
        sp.add_argument("--lake", default=None, help="lake URL (default $CRYPTOLAKE_ROOT or ~/.cryptolake)")
        sp.add_argument("--storage-options", default=None, help="fsspec options as YAML/JSON")

    sp = sub.add_parser("tables", help="list silver and gold tables: version, symbols, rows")
    read_args(sp)
    sp.set_defaults(func=cmd_tables)

    sp = sub.add_parser("sql", help="run a DuckDB query over silver.<t>, gold.<t>, bronze.files")
    sp.add_argument("query", help='e.g. "SELECT symbol, count(*) FROM silver.spot_klines_1h GROUP BY 1"')
    read_args(sp)
    sp.set_defaults(func=cmd_sql)

    sp = sub.add_parser("history", help="the Delta commit history of one table")
    sp.add_argument("table", help="table name: spot_klines_1h or silver.spot_klines_1h")
    sp.add_argument("--limit", type=int, default=None, help="the latest N commits only")
    read_args(sp)
    sp.set_defaults(func=cmd_history)

    sp = sub.add_parser("runs", help="list pipeline runs recorded under the lake's _runs/")
    sp.add_argument("--pipeline", default=None, help="one pipeline's runs only")
    read_args(sp)
    sp.set_defaults(func=cmd_runs)

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
