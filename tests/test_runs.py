"""cl.runs(lake) lists run records; lake.at(run) re-opens the lake as that run left it, after
later ingests changed it; secrets never reach a record."""
from pathlib import Path

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake import pipelines
from cryptolake.runs import REDACTED, redact, secret_strings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-archive"


def test_runs_and_lake_at_a_run_after_a_later_ingest(tmp_path):
    url = str(tmp_path / "lake")
    base = {"markets": ["spot"], "data_types": ["klines"], "intervals": ["1m"], "symbols": ["ETHUSDT"]}
    first = pipelines.run_pipeline("daily_update", {**base, "end": "2026-05-01"}, lake_url=url)
    lake = cl.Lake(url)
    old = lake.silver.spot_klines_1m["ETHUSDT"]
    assert old.index.max() < pd.Timestamp("2026-05-02", tz="UTC") and len(old) > 0
    second = pipelines.run_pipeline("daily_update", base, lake_url=url)   # the later ingest
    new = lake.silver.spot_klines_1m["ETHUSDT"]
    assert len(new) > len(old)
    assert second["versions_before"] == first["versions"] != second["versions"]

    runs = cl.runs(lake)
    assert list(runs.columns[:6]) == ["pipeline", "started", "finished", "status", "duration", "error"]
    assert {"path", "versions"} <= set(runs.columns)
    assert list(runs["pipeline"]) == ["daily_update"] * 2 and list(runs["status"]) == ["ok", "ok"]
    assert runs["started"].is_monotonic_increasing and str(runs["started"].dt.tz) == "UTC"
    assert (runs["duration"] > pd.Timedelta(0)).all()
    assert list(runs["path"]) == [first["path"], second["path"]]
    assert runs["versions"].iloc[0] == first["versions"]

    # every way of naming the first run re-opens the lake as it left it
    for run in (runs.iloc[0], first, first["path"], first["path"] + "/record.json",
                f"{first['path'].split(url + '/', 1)[1]}/record.json"):
        pinned = lake.at(run)
        assert pinned.read_only
        pd.testing.assert_frame_equal(pinned.silver.spot_klines_1m["ETHUSDT"], old)
    pd.testing.assert_frame_equal(lake.at(runs.iloc[1]).silver.spot_klines_1m["ETHUSDT"], new)
    assert list(cl.runs(url, pipeline="quality_report")["pipeline"]) == []


def test_runs_of_an_empty_lake_is_an_empty_frame_with_the_columns(tmp_path):
    df = cl.runs(cl.Lake(str(tmp_path / "lake")))
    assert df.empty and {"pipeline", "started", "status", "duration", "path", "versions"} <= set(df.columns)


def test_a_path_without_a_record_is_refused(tmp_path):
    lake = cl.Lake(str(tmp_path / "lake"))
    with pytest.raises(ValueError, match="no run record"):
        lake.at("_runs/daily_update/2020-01-01T00-00-00Z")


def test_redact_hides_secrets_by_key_and_in_urls():
    params = {"storage_options": {"key": "AKIAEXAMPLE", "secret": "s3cr3t-value",
                                  "token": "tok-12345", "endpoint_url": "http://127.0.0.1:9000",
                                  "client_kwargs": {"region_name": "eu-west-1"}},
              "rest_endpoint": "https://user:pa55word@proxy.example/api", "symbols": ["BTCUSDT"],
              "api_key": "k-123456"}
    out = redact(params)
    so = out["storage_options"]
    assert so["key"] == so["secret"] == so["token"] == REDACTED
    assert so["endpoint_url"] == "http://127.0.0.1:9000" and so["client_kwargs"]["region_name"] == "eu-west-1"
    assert out["rest_endpoint"] == f"https://{REDACTED}@proxy.example/api"
    assert out["symbols"] == ["BTCUSDT"] and out["api_key"] == REDACTED
    assert set(secret_strings(params)) == {"AKIAEXAMPLE", "s3cr3t-value", "tok-12345", "user:pa55word",
                                           "k-123456"}
