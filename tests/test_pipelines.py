"""Pipeline notebooks run unattended with papermill, as a scheduler would run them, and leave
run records (executed notebook, record.json, figures) under the lake's _runs/ — on a moto S3
lake with the fake Binance REST server, and on local lakes."""
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
from papermill.inspection import inspect_notebook

import cryptolake as cl
from cryptolake import pipelines
from cryptolake.testing.rest_server import FakeBinance, kline_rows

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-archive"
NOTEBOOKS = sorted((ROOT / "notebooks" / "pipelines").glob("*.ipynb"))


def sample_lines(pattern: str, market: str = "spot") -> int:
    """Rows in the sample archive's spot files matching `pattern` (counted from the zips)."""
    return sum(zipfile.ZipFile(z).read(z.name[:-4] + ".csv").count(b"\n")
               for z in (SAMPLE / "data" / market).rglob(pattern))


def timed(name, *args, **kw):
    t0 = time.perf_counter()
    try:
        return pipelines.run_pipeline(name, *args, **kw)
    finally:
        print(f"\nrun_pipeline {name}: {time.perf_counter() - t0:.1f} s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_pipeline_has_one_documented_parameters_cell_and_no_outputs(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    params = inspect_notebook(str(path))
    assert {"lake_url", "smoke"} <= set(params)
    assert params["smoke"]["inferred_type_name"] == "bool" and params["smoke"]["default"] == "False"
    lines = [ln for ln in "".join(tagged[0]["source"]).splitlines() if re.match(r"^\w+\s*[:=]", ln)]
    assert len(lines) == len(params)
    for line in lines:                          # typed default + same-line help comment
        assert re.match(r"^\w+: \w+ = .+  # \S", line), line
    assert not any(c.get("outputs") or c.get("execution_count")
                   for c in nb["cells"] if c["cell_type"] == "code")


def test_the_new_pipelines_take_the_issue_parameters():
    daily = set(pipelines.declared("daily_update"))
    assert {"lake_url", "storage_options", "archive_url", "rest_endpoint", "markets", "data_types",
            "symbols", "intervals", "start", "end", "top_up", "smoke", "figures_dir"} <= daily
    assert {"lake_url", "storage_options", "smoke", "figures_dir"} <= set(pipelines.declared("quality_report"))


# ---------------------------------------------------------------- S3 lake + fake REST
def test_daily_update_and_quality_report_on_a_moto_s3_lake_with_rest_top_up(s3_lake):
    url = f"{s3_lake.url}/research"
    opts = s3_lake.storage_options
    rest_rows = kline_rows("spot", "BTCUSDT", "1m", "2026-05-04", "2026-05-05")
    with FakeBinance({("spot", "klines", "BTCUSDT", "1m"): rest_rows}) as srv:
        rec = timed("daily_update", {
            "archive_url": SAMPLE.as_uri(), "rest_endpoint": srv.url, "markets": ["spot"],
            "data_types": ["klines"], "intervals": ["1m"], "end": "2026-05-04", "top_up": True,
            "smoke": True}, lake_url=url, storage_options=opts)
        assert srv.hits("/api/v3/klines")                 # the kernel topped up through it
    lake = cl.Lake(url, storage_options=opts)
    df = lake.silver.spot_klines_1m["BTCUSDT"]
    archive_rows = sample_lines("BTCUSDT-1m-*.zip")
    assert len(df) == archive_rows + len(rest_rows)      # smoke: the first symbol only
    assert lake.silver.spot_klines_1m.symbols == ["BTCUSDT"]
    assert set(df.loc["2026-05-04", "source"]) == {"rest"}

    # the record, the notebook and the figures are in the S3 lake, found by listing it
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["path"].startswith("s3://lake/research/_runs/daily_update/")
    st = lake.storage
    [rel] = st.find("_runs/daily_update", "/record.json")
    assert re.fullmatch(r"_runs/daily_update/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ/record.json", rel)
    stored = json.loads(st.read_bytes(rel))
    assert stored["rows"] == {"silver.spot_klines_1m": archive_rows + len(rest_rows)}
    assert stored["versions"] == lake.versions() and stored["versions_before"] == {}
    assert stored["parameters"]["storage_options"]["secret"] == "REDACTED"
    assert stored["parameters"]["storage_options"]["key"] == "REDACTED"
    assert stored["parameters"]["markets"] == ["spot"] and stored["parameters"]["top_up"] is True
    assert stored["duration_s"] > 0 and stored["started"] < stored["finished"]
    assert stored["python"] and stored["cryptolake"] == cl.__version__
    notebook = st.read_bytes(stored["notebook"]).decode()
    assert opts["secret"] not in notebook and "REDACTED" in notebook
    assert "injected-parameters" in notebook
    [png] = stored["figures"]
    assert png.endswith("/figures/coverage.png") and st.read_bytes(png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(f.endswith("quality_summary.csv") for f in stored["files"])

    q = timed("quality_report", {"smoke": True}, lake_url=url, storage_options=opts)
    assert q["status"] == "ok" and q["versions"] == q["versions_before"] == lake.versions()
    assert [f.rsplit("/", 1)[1] for f in q["figures"]] == ["quality.png"]
    assert st.read_bytes(q["figures"][0])[:4] == b"\x89PNG"
    runs = cl.runs(lake)
    assert list(runs["pipeline"]) == ["daily_update", "quality_report"]
    assert list(runs["status"]) == ["ok", "ok"]


# ---------------------------------------------------------------- local lakes
def test_ingest_pipeline_still_runs_and_fills_the_lake(tmp_path):
    rec = timed("ingest", {"market": "spot", "data_type": "klines", "interval": "1h",
                           "archive_url": str(SAMPLE), "symbols": "BTCUSDT", "smoke": True},
                lake_url=str(tmp_path / "lake"))
    assert rec["status"] == "ok"
    lake = cl.Lake(str(tmp_path / "lake"))
    assert len(lake.silver["spot_klines_1h"]["BTCUSDT"]) == sample_lines("BTCUSDT-1h-*.zip")
    assert rec["rows"] == {"silver.spot_klines_1h": sample_lines("BTCUSDT-1h-*.zip")}
    assert (tmp_path / "lake" / rec["notebook"]).is_file() and rec["figures"] == []


def test_a_failing_cell_leaves_a_failed_record_the_notebook_and_a_committed_lake(tmp_path):
    url = str(tmp_path / "lake")
    with pytest.raises(pipelines.PipelineError, match=r"ValueError: .*nowhere") as err:
        pipelines.run_pipeline("daily_update", {"markets": ["spot", "nowhere"], "smoke": True},
                               lake_url=url)
    rec = err.value.record
    assert rec["status"] == "failed"
    assert rec["error"]["ename"] == "ValueError" and "nowhere" in rec["error"]["evalue"]
    assert isinstance(rec["error"]["cell"], int)
    lake = cl.Lake(url)
    run_dir = Path(rec["path"])
    on_disk = json.loads((run_dir / "record.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["error"] == rec["error"]
    executed = json.loads((run_dir / "daily_update.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "ValueError"
    # spot committed before the failing market: the lake is at that committed version
    assert rec["versions"] == lake.versions() and "silver.spot_klines_1h" in rec["versions"]
    assert len(lake.at(rec).silver.spot_klines_1h["BTCUSDT"]) == sample_lines("BTCUSDT-1h-*.zip")
    assert list(cl.runs(lake)["status"]) == ["failed"]


def test_a_kernel_that_cannot_start_still_leaves_a_failed_record(tmp_path):
    url = str(tmp_path / "lake")
    with pytest.raises(pipelines.PipelineError, match=r"failed: NoSuchKernel"):
        pipelines.run_pipeline("quality_report", {"smoke": True}, lake_url=url,
                               kernel_name="no-such-kernel")
    runs = cl.runs(url)
    assert list(runs["status"]) == ["failed"] and runs["error"].iloc[0].startswith("NoSuchKernel")


def test_unknown_pipeline_names_the_available_ones():
    with pytest.raises(ValueError, match="available: daily_update, ingest, quality_report"):
        pipelines.run_pipeline("nope")


@pytest.mark.parametrize("params,message", [
    ({"top_up": "maybe"}, r"'top_up' must be bool .*got str 'maybe'"),
    ({"markets": 5}, r"'markets' must be list"),
    ({"storage_options": "key=x"}, r"'storage_options' must be dict"),
    ({"colour": "red"}, r"no parameter 'colour'; allowed: lake_url, storage_options"),
])
def test_wrong_parameters_are_refused_before_anything_runs(tmp_path, params, message):
    with pytest.raises(ValueError, match=message):
        pipelines.run_pipeline("daily_update", params, lake_url=str(tmp_path / "lake"))
    assert not (tmp_path / "lake" / "_runs").exists()


def test_command_line_values_keep_the_declared_types():
    raw = {"start": "2024-01-01", "symbols": "BTCUSDT,ETHUSDT", "top_up": "false", "lake_url": "123"}
    parsed = {k: pipelines.parse_value(v) for k, v in raw.items()}
    out = pipelines.check_params("daily_update", parsed, raw)
    assert out == {"start": "2024-01-01", "symbols": ["BTCUSDT", "ETHUSDT"], "top_up": False,
                   "lake_url": "123"}
    assert pipelines.parse_value("[BTCUSDT, ETHUSDT]") == ["BTCUSDT", "ETHUSDT"]
