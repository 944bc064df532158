"""The exploration notebooks in notebooks/ are programs: one documented `parameters` cell,
outputs stripped, and they run unattended with papermill (smoke=True, local and moto S3
lakes) and under `pytest --nbval-lax --nbval-current-env` with their defaults."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import papermill as pm
import pytest
from papermill.inspection import inspect_notebook

import cryptolake as cl

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["quickstart", "gaps_and_quality", "resample_and_indicators", "explorer", "lake_to_backtest"]


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]


def _text(nb) -> str:
    """Every stdout/stderr text and text/plain output of an executed notebook, joined."""
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            out.append(o.get("text", "") if o.get("output_type") == "stream"
                       else o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def _run(name: str, tmp_path: Path, **params):
    t0 = time.perf_counter()
    nb = pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.out.ipynb"),
                             parameters={"smoke": True, **params}, kernel_name="python3",
                             progress_bar=False, cwd=str(tmp_path))
    print(f"\npapermill {name} smoke=True: {time.perf_counter() - t0:.1f} s")
    return nb


@pytest.mark.parametrize("name", NAMES)
def test_one_documented_parameters_cell_and_no_outputs(name):
    cells = _cells(name)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    params = {p["name"]: p for p in inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb")).values()}
    assert {"lake_url", "smoke"} <= set(params)
    assert params["smoke"]["inferred_type_name"] == "bool" and params["smoke"]["default"] == "False"
    source = "".join(tagged[0]["source"]).splitlines()
    assignments = [line for line in source if re.match(r"^\w+\s*[:=]", line)]
    assert len(assignments) == len(params)
    for line in assignments:               # typed default and a same-line help comment
        assert re.match(r"^\w+: \w+ = .+  # \S", line), line
    for p in params.values():
        assert p["help"].strip() and p["inferred_type_name"] != "None", p
    code = [c for c in cells if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code)


def test_quickstart_runs_with_papermill(tmp_path):
    nb = _run("quickstart", tmp_path, lake_url=str(tmp_path / "lake"))
    text = _text(nb)
    # smoke: the first symbol only; the sample archive holds 3 days of BTCUSDT 1m bars
    assert "spot_klines_1m: 1 symbols, 4,320 BTCUSDT rows" in text
    lake = cl.Lake(str(tmp_path / "lake"))
    assert lake.silver.tables == ["spot_klines_1m"]
    assert lake.silver.spot_klines_1m.symbols == ["BTCUSDT"]
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_quickstart_runs_against_a_moto_s3_lake(tmp_path, s3_lake):
    url = f"{s3_lake.url}/research"
    nb = _run("quickstart", tmp_path, lake_url=url, storage_options=s3_lake.storage_options,
              symbols="ETHUSDT")
    assert "4,230 ETHUSDT rows" in _text(nb)              # the sample's ETHUSDT lacks 90 bars
    lake = cl.Lake(url, storage_options=s3_lake.storage_options)
    assert len(lake.silver.spot_klines_1m["ETHUSDT"]) == 4230


def test_gaps_and_quality_runs_with_papermill(tmp_path):
    text = _text(_run("gaps_and_quality", tmp_path))
    # the sample archive's spot ETHUSDT misses 2026-05-02 10:00-11:29 (an outage)
    assert "spot_klines_1m: 1 symbols, 1 gaps, 90 bars in gaps" in text
    assert "outage" in text


def test_resample_and_indicators_runs_with_papermill(tmp_path):
    text = _text(_run("resample_and_indicators", tmp_path, rule="1h", indicators="rsi,atr"))
    assert "ETHUSDT: 1,440 rows -> 24 1h bars with 2 indicator columns" in text


def test_explorer_runs_with_papermill(tmp_path):
    nb = _run("explorer", tmp_path, rule="1h", symbol="SOLUSDT")
    assert "spot_klines_1m SOLUSDT: 72 bars drawn (1h)" in _text(nb)
    views = [o for c in nb.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1 and nb.metadata["widgets"]


def test_lake_to_backtest_runs_on_a_moto_s3_lake_pinned_with_lake_at(tmp_path, s3_lake):
    url = f"{s3_lake.url}/research"
    nb = _run("lake_to_backtest", tmp_path, lake_url=url, storage_options=s3_lake.storage_options,
              fast=5, slow=30)
    text = _text(nb)
    lake = cl.Lake(url, storage_options=s3_lake.storage_options)
    close = lake.silver.spot_klines_1m["BTCUSDT"]["close"]
    # smoke: the empty lake was filled with the first symbol, then pinned at its versions
    assert f"pinned {url} at {lake.versions()}" in text
    assert f"silver.spot_klines_1m: 1 symbols x {len(close):,} bars" in text
    m = re.search(r"SMA 5/30, (\d+) trades, total return ([-+][\d.]+)%", text)
    assert m, text[-2000:]
    # the same crossover computed here with plain pandas (the oracle) trades as often
    fast, slow = close.rolling(5).mean(), close.rolling(30).mean()
    pos = (fast > slow).astype(float).shift(1).fillna(0.0)
    assert int(m[1]) == int((pos.diff().abs() > 0).sum()) + int(pos.iloc[0] > 0)
    assert f"same panel from lake.at(versions): {len(close):,} bars" in text


def test_notebooks_pass_nbval_with_their_defaults(tmp_path):
    paths = [str(NOTEBOOKS / f"{n}.ipynb") for n in NAMES]
    env = {**os.environ, "TMPDIR": str(tmp_path), "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--nbval-lax", "--nbval-current-env", *paths],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
    print(f"\nnbval on {len(paths)} notebooks: {time.perf_counter() - t0:.1f} s")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    cells = sum(1 for n in NAMES for c in _cells(n) if c["cell_type"] == "code")
    assert re.search(rf"\b{cells} passed\b", proc.stdout), proc.stdout[-2000:]
    assert list(tmp_path.glob("cryptolake-*")), "the default lakes belong in the temp dir"


@pytest.mark.parametrize("name,params,expect", [
    ("gaps_and_quality", {}, "spot_klines_1m: 1 symbols, 1 gaps, 90 bars in gaps"),
    ("resample_and_indicators", {"rule": "1h", "indicators": "rsi,atr"},
     "ETHUSDT: 1,440 rows -> 24 1h bars with 2 indicator columns"),
    ("explorer", {"rule": "1h", "symbol": "SOLUSDT"}, "spot_klines_1m SOLUSDT: 72 bars drawn (1h)"),
])
def test_exploration_notebooks_run_against_a_moto_s3_lake(tmp_path, s3_lake, name, params, expect):
    url = f"{s3_lake.url}/research"
    sample = ROOT / "examples" / "sample-archive"
    lake = cl.Lake(url, storage_options=s3_lake.storage_options, archive=cl.BinanceArchive(sample.as_uri()))
    lake.ingest("spot", "klines", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], interval="1m", top_up=False,
                progress=False)
    text = _text(_run(name, tmp_path, lake_url=url, storage_options=s3_lake.storage_options, **params))
    assert expect in text
