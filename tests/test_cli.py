"""The command line, run as a user runs it (a real subprocess)."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cryptolake.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("ingest", "verify", "run", "demo"):
        assert cmd in out.stdout


def test_bad_input_exits_non_zero_with_a_one_line_reason(tmp_path):
    out = run("ingest", "futures", "klines", "--interval", "1m", "--lake", str(tmp_path / "lake"),
              "--archive", str(tmp_path / "nowhere"))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "futures" in lines[0] and "spot" in lines[0]


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
