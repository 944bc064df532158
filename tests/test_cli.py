"""The command line, run as a user (or cron) runs it: real subprocesses."""
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-archive"
COMMANDS = ("ingest", "verify", "run", "demo", "tables", "sql", "history", "runs", "migrate")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cryptolake.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def sample_rows(symbol: str, days=("2026-05-01", "2026-05-02")) -> int:
    """Rows of the sample archive's spot 1m files of `symbol` on `days` (from the zips)."""
    d = SAMPLE / "data" / "spot" / "daily" / "klines" / symbol / "1m"
    return sum(zipfile.ZipFile(d / f"{symbol}-1m-{day}.zip").read(f"{symbol}-1m-{day}.csv").count(b"\n")
               for day in days)


def one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in COMMANDS:
        assert cmd in out.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    out = run(cmd, "--help")
    assert out.returncode == 0 and f"usage: cryptolake {cmd}" in out.stdout


def test_bad_input_exits_non_zero_with_a_one_line_reason(tmp_path):
    out = run("ingest", "futures", "klines", "--interval", "1m", "--lake", str(tmp_path / "lake"),
              "--archive", str(tmp_path / "nowhere"))
    assert out.returncode != 0
    line = one_line(out)
    assert "futures" in line and "spot" in line


def test_a_missing_argument_is_one_line_too():
    out = run("history")
    assert out.returncode == 2 and "table" in one_line(out)


def test_demo_ingests_the_sample_archive_offline_and_prints_coverage(tmp_path):
    lake = tmp_path / "demo-lake"
    out = run("demo", "--lake", str(lake), "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Coverage" in out.stdout and "spot_klines_1h" in out.stdout
    # a Delta lake: the manifest and every silver table have a Delta log
    assert (lake / "bronze" / "_manifest" / "_delta_log").is_dir()
    assert (lake / "silver" / "spot_klines_1h" / "_delta_log").is_dir()
    # the demo is the same lake a user gets: read it back
    import cryptolake as cl
    t = cl.Lake(str(lake)).silver["spot_klines_1h"]
    zips = (ROOT / "examples" / "sample-archive" / "data/spot").rglob("BTCUSDT-1h-*.zip")
    lines = sum(zipfile.ZipFile(z).read(z.name[:-4] + ".csv").count(b"\n") for z in zips)
    assert t.coverage().set_index("symbol").loc["BTCUSDT", "rows"] == lines

    out = run("verify", "--lake", str(lake))
    assert out.returncode == 0 and "0 not ok" in out.stdout


# ---------------------------------------------------------------- run + the lake commands
@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """A lake filled by `cryptolake run daily_update` with YAML -p values."""
    lake = tmp_path_factory.mktemp("cli") / "lake"
    out = run("run", "daily_update", "--lake", str(lake), "-p", "symbols", "[BTCUSDT, ETHUSDT]",
              "-p", "intervals", "[1m]", "-p", "top_up", "false", "-p", "end", "2026-05-02")
    return lake, out


def test_run_records_the_run_and_prints_where(ran):
    lake, out = ran
    assert out.returncode == 0, out.stderr
    m = re.search(r"ran daily_update: ok in [\d.]+ s; record: (\S+/record.json)", out.stdout)
    assert m, out.stdout
    rec = json.loads(Path(m[1]).read_text())
    assert rec["status"] == "ok" and rec["parameters"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert rec["parameters"]["top_up"] is False and rec["parameters"]["end"] == "2026-05-02"
    assert Path(m[1]).parent.parent == lake / "_runs" / "daily_update"
    assert (Path(m[1]).parent / "figures" / "coverage.png").is_file()
    assert rec["rows"]["silver.spot_klines_1m"] == sample_rows("BTCUSDT") + sample_rows("ETHUSDT")


def test_tables_sql_history_and_runs(ran):
    lake, _ = ran
    out = run("tables", "--lake", str(lake))
    assert out.returncode == 0, out.stderr
    total = sample_rows("BTCUSDT") + sample_rows("ETHUSDT")
    assert re.search(rf"silver\s+spot_klines_1m\s+\d+\s+2\s+{total}\b", out.stdout), out.stdout

    out = run("sql", "SELECT symbol, count(*) AS n FROM silver.spot_klines_1m GROUP BY 1 ORDER BY 1",
              "--lake", str(lake))
    assert out.returncode == 0, out.stderr
    for sym in ("BTCUSDT", "ETHUSDT"):
        assert re.search(rf"{sym}\s+{sample_rows(sym)}\b", out.stdout), out.stdout

    out = run("history", "silver.spot_klines_1m", "--lake", str(lake))
    assert out.returncode == 0 and "version" in out.stdout, out.stderr

    out = run("runs", "--lake", str(lake))
    assert out.returncode == 0, out.stderr
    assert re.search(r"daily_update\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+ok\s+[\d.]+s\s+\S*_runs/daily_update/",
                     out.stdout), out.stdout


@pytest.mark.parametrize("args,expected", [
    (("sql", "SELECT * FROM silver.nope"), "nope"),
    (("history", "silver.nope"), "tables: silver.spot_klines_1m"),
])
def test_lake_commands_refuse_bad_input_in_one_line(ran, args, expected):
    lake, _ = ran
    out = run(*args, "--lake", str(lake))
    assert out.returncode != 0 and expected in one_line(out)


def test_run_an_unknown_pipeline_names_the_allowed_ones(tmp_path):
    out = run("run", "daly_update", "--lake", str(tmp_path / "lake"))
    assert out.returncode != 0
    assert "available: daily_update, ingest, quality_report" in one_line(out)


@pytest.mark.parametrize("key,value,expected", [
    ("top_up", "maybe", "'top_up' must be bool (true or false); got str 'maybe'"),
    ("markets", "{a: 1}", "'markets' must be list"),
    ("colour", "red", "no parameter 'colour'; allowed: lake_url"),
])
def test_run_with_a_wrong_parameter_exits_with_one_line(tmp_path, key, value, expected):
    out = run("run", "daily_update", "--lake", str(tmp_path / "lake"), "-p", key, value)
    assert out.returncode != 0 and expected in one_line(out)
    assert not (tmp_path / "lake" / "_runs").exists()


def test_run_with_a_failing_cell_records_failed_and_exits_non_zero(tmp_path):
    lake = tmp_path / "lake"
    out = run("run", "daily_update", "--lake", str(lake), "-p", "markets", "[nowhere]")
    assert out.returncode == 1
    line = one_line(out)
    assert "ValueError" in line and "nowhere" in line and "record.json" in line
    [record] = (lake / "_runs" / "daily_update").glob("*/record.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "failed" and rec["error"]["ename"] == "ValueError"
    assert (record.parent / "daily_update.ipynb").is_file()
    out = run("runs", "--lake", str(lake))
    assert out.returncode == 0 and "failed" in out.stdout


def test_run_against_an_s3_lake_redacts_the_credentials(tmp_path, s3_lake):
    opts = json.dumps(s3_lake.storage_options)
    out = run("run", "quality_report", "--lake", f"{s3_lake.url}/x", "--storage-options", opts,
              "-p", "smoke", "true")
    assert out.returncode == 0, out.stderr
    import cryptolake as cl
    lake = cl.Lake(f"{s3_lake.url}/x", storage_options=s3_lake.storage_options)
    [rel] = lake.storage.find("_runs/quality_report", "/record.json")
    rec = json.loads(lake.storage.read_bytes(rel))
    assert rec["status"] == "ok" and rec["parameters"]["storage_options"]["secret"] == "REDACTED"
    assert s3_lake.storage_options["secret"] not in lake.storage.read_bytes(rec["notebook"]).decode()
