"""Storage credentials never leak: a lake on S3 (moto in its own process) opened with
recognisable fake credentials is ingested, read, queried, printed and made to fail, and every
output is scanned: captured logs/stdout/stderr, reprs and _repr_html_, exceptions and their
tracebacks, every object the lake bucket holds (Delta `_delta_log/*.json` commit metadata,
checkpoints, the bronze manifest, data files), the ingest report, and an executed pipeline
notebook run with the credentials in its environment."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import traceback

import pytest

import cryptolake as cl
from cryptolake import pipelines
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.s3 import LAKE_BUCKET

KEY = "AKIAFAKECRYPTOLAKEKEY"
SECRET = "cryptolake/FAKE+secret/do-not-leak-0123456789"
TOKEN = "FAKE-SESSION-TOKEN-cryptolake-9876"
NEEDLES = (KEY, SECRET, TOKEN, "do-not-leak", "FAKECRYPTOLAKE")
TODAY = dt.date(2026, 11, 26)


def leaks(text) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [n for n in NEEDLES if n in str(text)]


@pytest.fixture
def secret_lake(s3_delta, tmp_path):
    url = s3_delta.create_bucket(LAKE_BUCKET)
    opts = {"key": KEY, "secret": SECRET, "token": TOKEN, "endpoint_url": s3_delta.endpoint_url,
            "client_kwargs": {"region_name": "ap-northeast-1"}}
    root = tmp_path / "archive"
    b = ArchiveBuilder(root.as_uri())
    b.klines("um", "AAAUSDT", "1h", "2024-05-01")
    b.klines("um", "AAAUSDT", "1h", "2024-05-02", checksum="bad")      # a quarantine reason too
    return url, opts, root.as_uri(), s3_delta


def test_credentials_appear_in_no_output(secret_lake, caplog, capsys):
    url, opts, archive_url, srv = secret_lake
    # every logger at INFO, ours at DEBUG (botocore's own DEBUG request dumps print the key id
    # and session token in the signed headers: that is botocore's switch, not ours)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="cryptolake")
    outputs = []
    lake = cl.Lake(url, storage_options=opts, archive=cl.BinanceArchive(archive_url))
    r = lake.ingest("um", "klines", "AAAUSDT", interval="1h", start="2024-05-01", end="2024-05-02",
                    progress=True, today=TODAY)
    assert r.rows == {"um_klines_1h": 24}
    t = lake.silver.um_klines_1h
    outputs += [repr(lake), lake._repr_html_(), repr(lake.storage), repr(lake.bronze), repr(t),
                t._repr_html_(), repr(lake.silver), repr(r), getattr(r, "_repr_html_", lambda: "")(),
                r.files.to_csv(), r.gaps.to_csv(), "\n".join(r.errors), "\n".join(r.notes),
                lake.bronze.files().to_csv(), t.history().to_csv(), repr(lake.versions()),
                lake.sql("SELECT * FROM bronze.files").to_csv(), repr(lake.archive),
                t.read().to_csv(), repr(lake.storage.delta_storage_options.keys())]
    # failing S3 calls: a bucket that does not exist, and an endpoint nothing listens on
    for bad in (cl.Lake(f"s3://no-such-bucket-xyz", storage_options=opts,
                        archive=cl.BinanceArchive(archive_url)),
                cl.Lake(url, storage_options={**opts, "endpoint_url": "http://127.0.0.1:9",
                                              "config_kwargs": {"retries": {"max_attempts": 1},
                                                                "connect_timeout": 1}},
                        archive=cl.BinanceArchive(archive_url))):
        raised = 0
        for op in (lambda: bad.ingest("um", "klines", "AAAUSDT", interval="1h", start="2024-05-01",
                                      end="2024-05-01", progress=False, today=TODAY),
                   lambda: bad.storage.read_bytes("bronze/nothing-here"),
                   lambda: bad.silver.um_klines_1h.read(),
                   lambda: bad.sql("SELECT * FROM silver.um_klines_1h")):
            try:
                res = op()
                outputs.append(repr(res))
            except Exception as e:   # noqa: BLE001 - every failure's text is scanned
                raised += 1
                outputs += [str(e), repr(e), "".join(traceback.format_exception(e))]
        assert raised >= 1
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, caplog.text]
    found = {i: leaks(o) for i, o in enumerate(outputs) if leaks(o)}
    assert not found, {i: (found[i], str(outputs[i])[:300]) for i in found}
    # every object the lake bucket holds: Delta logs (commit metadata), checkpoints, data, manifest
    c = srv.client()
    keys = [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET)
            for o in page.get("Contents", [])]
    assert any("_delta_log/" in k and k.endswith(".json") for k in keys)
    assert any(k.startswith("bronze/_manifest/") for k in keys)
    bad = [k for k in keys if leaks(c.get_object(Bucket=LAKE_BUCKET, Key=k)["Body"].read())]
    assert not bad, bad


def test_an_executed_pipeline_notebook_holds_no_credentials(tmp_path, monkeypatch):
    """The pipeline takes credentials from the environment (never as parameters): run it with
    recognisable ones set and scan the executed notebook."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    root = tmp_path / "archive"
    b = ArchiveBuilder(root.as_uri())
    b.klines("um", "AAAUSDT", "1h", "2024-05-01")
    record = pipelines.run_pipeline("ingest", {"market": "um", "data_type": "klines", "interval": "1h",
                                               "archive_url": root.as_uri(), "symbols": "AAAUSDT",
                                               "start": "2024-05-01", "end": "2024-05-01"},
                                    lake_url=str(tmp_path / "lake"))
    text = (tmp_path / "lake" / record["notebook"]).read_text()
    text += json.dumps(record)
    assert "AAAUSDT" in text and not leaks(text), leaks(text)
