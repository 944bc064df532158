"""Pipeline notebooks run unattended with papermill, as a scheduler would run them."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cryptolake as cl
from cryptolake import pipelines

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks" / "pipelines").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_pipeline_has_one_parameters_cell_with_smoke_and_no_outputs(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "smoke: bool" in "".join(tagged[0]["source"])
    assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_ingest_pipeline_runs_with_papermill_and_fills_the_lake(tmp_path):
    out = pipelines.run_pipeline("ingest", {"lake_url": str(tmp_path / "lake"), "market": "spot",
                                            "data_type": "klines", "interval": "1h",
                                            "archive_url": str(ROOT / "examples" / "sample-archive"),
                                            "symbols": "BTCUSDT", "smoke": "true"},
                                 output_dir=str(tmp_path / "runs"))
    assert out.exists() and out.parent == tmp_path / "runs"
    executed = json.loads(out.read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "smoke = True" in "".join(injected[0]["source"])
    zips = (ROOT / "examples" / "sample-archive" / "data/spot").rglob("BTCUSDT-1h-*.zip")
    lines = sum(zipfile.ZipFile(z).read(z.name[:-4] + ".csv").count(b"\n") for z in zips)
    assert len(cl.Lake(str(tmp_path / "lake")).silver["spot_klines_1h"]["BTCUSDT"]) == lines


def test_cli_run_reports_a_failing_pipeline_with_a_non_zero_exit(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cryptolake.cli", "run", "ingest",
                           "-p", "lake_url", str(tmp_path / "lake"), "-p", "market", "nowhere",
                           "--output", str(tmp_path / "runs")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "nowhere" in proc.stderr
    assert list((tmp_path / "runs").glob("ingest-*.ipynb"))   # the executed notebook is kept


def test_unknown_pipeline_names_the_available_ones():
    with pytest.raises(ValueError, match="ingest"):
        pipelines.run_pipeline("nope")
