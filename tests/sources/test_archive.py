"""BinanceArchive against real parts: a moto S3 server on 127.0.0.1 (anonymous reads, like the
live bucket) and a file:// mirror, both holding the same synthetic archive; plus the real
archive files in the shared fixtures."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import time
import zipfile
from pathlib import Path

import fsspec
from fsspec.implementations.memory import MemoryFileSystem
import pytest

from cryptolake.layout import ArchiveKey
from cryptolake.sources.archive import BinanceArchive, Fetched, RemoteFile

BUCKET = "data.binance.vision"
TODAY = dt.date(2024, 3, 11)
REAL = Path(os.environ.get("CRYPTOLAKE_REAL_ARCHIVE", "/work/shared/fixtures/data.binance.vision"))


# ---------------------------------------------------------------- archive writing (inline)
def kline_zip(key: ArchiveKey, rows: int = 3) -> bytes:
    t0 = int(dt.datetime.combine(key.first_day, dt.time(), dt.timezone.utc).timestamp() * 1000)
    lines = [f"{t0 + i * 3_600_000},1.0,2.0,0.5,1.5,10.0,{t0 + (i + 1) * 3_600_000 - 1},15.0,7,5.0,7.5,0"
             for i in range(rows)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:     # fixed mtime: same bytes each call
        zf.writestr(zipfile.ZipInfo(key.filename[:-4] + ".csv", (2024, 1, 1, 0, 0, 0)),
                    "\n".join(lines) + "\n", zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def checksum_line(data: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()


class Writer:
    """Writes archive-format objects under `root` of an fsspec filesystem."""

    def __init__(self, fs, root: str):
        self.fs, self.root, self.batch = fs, root.rstrip("/"), {}

    def put(self, rel: str, data: bytes):
        self.batch[f"{self.root}/{rel}"] = data

    def file(self, market, cadence, data_type, symbol, interval, period, checksum="good",
             data: bytes | None = None) -> ArchiveKey:
        key = ArchiveKey(market, cadence, data_type, symbol, interval, period)
        data = kline_zip(key) if data is None else data
        self.put(key.key, data)
        if checksum == "good":
            self.put(key.checksum_key, checksum_line(data, key.filename))
        elif checksum == "bad":
            self.put(key.checksum_key, checksum_line(data + b"x", key.filename))
        return key

    def flush(self):
        if self.batch:
            self.fs.pipe(self.batch)
            self.batch = {}


def days(first: str, last: str) -> list[str]:
    a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [str(a + dt.timedelta(i)) for i in range((b - a).days + 1)]


def build_scenario(w: Writer) -> dict:
    """The synthetic archive every backend holds. Returns the keys tests refer to."""
    k = {}
    for p in ("2024-01", "2024-02"):
        w.file("um", "monthly", "klines", "BTCUSDT", "1h", p)
    for d in days("2024-02-25", "2024-03-10"):
        w.file("um", "daily", "klines", "BTCUSDT", "1h", d)
    for d in days("2024-01-01", "2024-01-31"):                 # closed month, no monthly file
        w.file("um", "daily", "klines", "ETHUSDT", "1h", d)
    w.file("um", "monthly", "klines", "LUNAUSDT", "1h", "2022-04")   # delisted: old files only
    w.file("um", "daily", "klines", "ADAUSDT", "4h", "2024-03-01")   # no 1h directory
    for p in ("2024-01", "2024-02"):
        w.file("um", "monthly", "fundingRate", "BTCUSDT", None, p)
    w.file("spot", "daily", "klines", "BTCUSDT", "1h", "2024-03-01")
    # junk next to real files (docs/binance-archive.md §2.4)
    mdir = "data/futures/um/monthly/klines/BTCUSDT/1h"
    w.put(f"{mdir}/part-00000-0fae7358-5a0f-4c52-8a5d-1d1c0ab1c4b2-c000.zip", b"PK junk")
    w.put(f"{mdir}/BTCUSDT-1h-2024-1.zip", b"unpadded")
    w.put(f"{mdir}/BTCUSDT-1h-2024-1.zip.CHECKSUM", b"0" * 64 + b"  BTCUSDT-1h-2024-1.zip\n")
    w.put(f"{mdir}/README.txt", b"hello")
    # fetch verdicts
    k["good"] = w.file("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-01")
    k["bad"] = w.file("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-02", checksum="bad")
    k["nosum"] = w.file("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-03", checksum="none")
    k["corrupt"] = w.file("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-04",
                          data=b"PK\x03\x04 this is not a zip")      # checksum matches the junk
    wrong = ArchiveKey("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-05")
    data = kline_zip(wrong)
    w.put(wrong.key, data)
    w.put(wrong.checksum_key, checksum_line(data, "XRPUSDT-1h-2024-03-06.zip"))
    k["wrongname"] = wrong
    k["gone"] = ArchiveKey("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-07")  # never written
    w.flush()
    return k


# ---------------------------------------------------------------- backends
@pytest.fixture(scope="module")
def moto_endpoint():
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {v: os.environ.get(v) for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                                            "AWS_PROFILE", "BOTO_CONFIG")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                      BOTO_CONFIG="/dev/null")
    os.environ.pop("AWS_PROFILE", None)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.get_host_and_port()[1]}"
    finally:
        srv.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def s3_writer_fs(endpoint):
    import s3fs
    return s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=endpoint,
                             client_kwargs={"region_name": "ap-northeast-1"}, skip_instance_cache=True)


def anon_options(endpoint):
    return {"anon": True, "endpoint_url": endpoint, "client_kwargs": {"region_name": "ap-northeast-1"}}


class Backend:
    def __init__(self, name, archive, writer, keys):
        self.name, self.archive, self.writer, self.keys = name, archive, writer, keys

    def fresh(self) -> BinanceArchive:
        """A new BinanceArchive on the same location (no shared caches of ours)."""
        return BinanceArchive(self.archive.url, self.archive.storage_options)


@pytest.fixture(scope="module")
def s3_backend(moto_endpoint):
    import boto3
    import s3fs
    s3fs.S3FileSystem.clear_instance_cache()
    boto = boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-1")
    boto.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    # Public read like the real bucket. moto checks s3:HeadObject for anonymous HEADs
    # (docs/testing-real-parts.md §1), so the policy names it too.
    boto.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}]}))
    w = Writer(s3_writer_fs(moto_endpoint), BUCKET)
    keys = build_scenario(w)
    return Backend("s3", BinanceArchive(f"s3://{BUCKET}", anon_options(moto_endpoint)), w, keys)


@pytest.fixture(scope="module")
def file_backend(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    w = Writer(fsspec.filesystem("file", auto_mkdir=True), str(root))
    keys = build_scenario(w)
    return Backend("file", BinanceArchive(root.as_uri()), w, keys)


@pytest.fixture(params=["s3", "file"])
def backend(request):
    return request.getfixturevalue(f"{request.param}_backend")


# ---------------------------------------------------------------- listing
def test_listing(backend):
    arc = backend.archive
    assert arc.markets() == ["spot", "um"]
    assert arc.data_types("um") == ["fundingRate", "klines"]
    assert arc.symbols("um", "klines") == ["ADAUSDT", "BTCUSDT", "ETHUSDT", "LUNAUSDT", "XRPUSDT"]
    assert arc.symbols("um", "klines", "1h") == ["BTCUSDT", "ETHUSDT", "LUNAUSDT", "XRPUSDT"]
    assert arc.symbols("um", "klines", "4h") == ["ADAUSDT"]
    assert arc.symbols("um", "fundingRate") == ["BTCUSDT"]
    assert arc.symbols("spot", "klines", "1h") == ["BTCUSDT"]
    assert arc.symbols("cm", "klines") == []


def test_files_ignores_junk_and_carries_fingerprints(backend):
    files = backend.archive.files("um", "klines", "BTCUSDT", "1h")
    periods = [f.period for f in files]
    assert periods == ["2024-01", "2024-02"] + days("2024-02-25", "2024-03-10")
    assert all(isinstance(f, RemoteFile) and f.has_checksum for f in files)
    monthly = backend.archive.files("um", "klines", "BTCUSDT", "1h", cadence="monthly")
    assert [f.key.filename for f in monthly] == ["BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h-2024-02.zip"]
    f = monthly[0]
    assert f.size == len(kline_zip(f.key))
    assert f.last_modified is not None and str(f.last_modified.tz) == "UTC"
    if backend.name == "s3":
        assert f.etag and '"' not in f.etag
    nosum = [f for f in backend.archive.files("um", "klines", "XRPUSDT", "1h")
             if f.key == backend.keys["nosum"]]
    assert len(nosum) == 1 and not nosum[0].has_checksum
    assert backend.archive.files("um", "klines", "NOSUCHUSDT", "1h") == []


def test_listing_refreshes_new_uploads(backend):
    arc = backend.archive
    before = arc.files("um", "klines", "SOLUSDT", "1h")
    assert arc.symbols("um", "klines", "1h").count("SOLUSDT") == 0
    backend.writer.file("um", "daily", "klines", "SOLUSDT", "1h", "2023-06-01")
    backend.writer.flush()
    after = arc.files("um", "klines", "SOLUSDT", "1h")
    assert (len(before), len(after)) == (0, 1)
    assert "SOLUSDT" in arc.symbols("um", "klines", "1h")


def test_s3_listing_paginates_past_1000(s3_backend):
    w = s3_backend.writer
    for d in days("2020-01-01", "2023-12-31")[:1100]:
        w.put(ArchiveKey("um", "daily", "klines", "PAGEUSDT", "1m", d).key, b"z")
    w.flush()
    files = s3_backend.fresh().files("um", "klines", "PAGEUSDT", "1m", cadence="daily")
    assert len(files) == 1100 and not any(f.has_checksum for f in files)


# ---------------------------------------------------------------- planning
def _names(files):
    return [(f.symbol, f.cadence, f.period) for f in files]


def test_plan_monthly_for_closed_months_daily_for_the_rest(backend):
    arc = backend.archive
    got = arc.plan("um", "klines", ["ETHUSDT", "BTCUSDT"], "1h", "2024-01-01", "2024-03-10", today=TODAY)
    expect = ([("BTCUSDT", "monthly", "2024-01"), ("BTCUSDT", "monthly", "2024-02")]
              + [("BTCUSDT", "daily", d) for d in days("2024-03-01", "2024-03-10")]
              + [("ETHUSDT", "daily", d) for d in days("2024-01-01", "2024-01-31")])
    assert _names(got) == expect
    # start/end None: from the earliest listed file up to today
    assert _names(arc.plan("um", "klines", "BTCUSDT", "1h", today=TODAY)) == expect[:12]
    # a partly covered closed month whose days all exist daily -> daily
    got = arc.plan("um", "klines", "BTCUSDT", "1h", "2024-02-26", "2024-03-02", today=TODAY)
    assert _names(got) == [("BTCUSDT", "daily", d) for d in days("2024-02-26", "2024-03-02")]
    # ... whose days are missing daily -> the monthly file (the caller trims to the range)
    got = arc.plan("um", "klines", "BTCUSDT", "1h", "2024-01-15", "2024-01-20", today=TODAY)
    assert _names(got) == [("BTCUSDT", "monthly", "2024-01")]
    # a month that is not closed yet on `today` -> daily, even if a monthly file were listed
    got = arc.plan("um", "klines", "BTCUSDT", "1h", "2024-02-01", "2024-02-29", today="2024-02-29")
    assert _names(got) == [("BTCUSDT", "daily", d) for d in days("2024-02-25", "2024-02-29")]
    # delisted symbol, default range
    assert _names(arc.plan("um", "klines", "lunausdt", "1h", today=TODAY)) == \
        [("LUNAUSDT", "monthly", "2022-04")]
    # symbols=None: every listed symbol of that interval
    every = arc.plan("um", "klines", None, "1h", "2024-03-01", "2024-03-01", today=TODAY)
    assert {f.symbol for f in every} == {"BTCUSDT", "XRPUSDT"}


def test_plan_funding_is_monthly_only(backend):
    got = backend.archive.plan("um", "fundingRate", ["BTCUSDT"], None, "2024-01-10", "2024-02-05",
                               today=TODAY)
    assert _names(got) == [("BTCUSDT", "monthly", "2024-01"), ("BTCUSDT", "monthly", "2024-02")]
    assert backend.archive.plan("um", "fundingRate", "BTCUSDT", start="2024-03-01", today=TODAY) == []


@pytest.mark.parametrize("args, words", [
    (("xx", "klines", "BTCUSDT", "1h"), ["'xx'", "spot, um, cm"]),
    (("um", "kline", "BTCUSDT", "1h"), ["'kline'", "klines, aggTrades"]),
    (("spot", "fundingRate", "BTCUSDT"), ["'spot'", "klines, aggTrades, trades"]),
    (("um", "klines", "BTCUSDT", "1M"), ["'1mo'"]),
    (("um", "klines", "BTCUSDT", "2h30"), ["'2h30'", "1m, 3m"]),
    (("um", "klines", "BTCUSDT", "1s"), ["'1s'", "spot"]),
    (("um", "klines", "BTCUSDT", None), ["interval", "1m, 3m"]),
    (("um", "klines", "BTCUSDT", "1h", "2024-03-02", "2024-03-01"), ["2024-03-02", "after"]),
    (("um", "klines", "BTC/USDT", "1h"), ["'BTC/USDT'", "BTCUSDT"]),
])
def test_validation_happens_before_any_io(args, words):
    # an endpoint nothing listens on: any I/O would hang in retries or raise something else
    arc = BinanceArchive("s3://data.binance.vision", {"endpoint_url": "http://127.0.0.1:9"})
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as err:
        arc.plan(*args, today=TODAY)
    assert time.perf_counter() - t0 < 1
    for w in words:
        assert w in str(err.value)
    assert arc._fs is None                       # no filesystem was even created


def test_listing_validates_names_first():
    arc = BinanceArchive("s3://data.binance.vision", {"endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match="spot, um, cm"):
        arc.data_types("usdm")
    with pytest.raises(ValueError, match="has no 'metrics'"):
        arc.symbols("spot", "metrics")
    with pytest.raises(ValueError, match="needs an interval"):
        arc.files("um", "klines", "BTCUSDT")
    with pytest.raises(ValueError, match="daily, monthly"):
        arc.files("um", "klines", "BTCUSDT", "1h", cadence="weekly")
    assert arc._fs is None


# ---------------------------------------------------------------- fetching
def _remote(arc, key):
    listed = {f.key: f for f in arc.files(key.market, key.data_type, key.symbol, key.interval)}
    return listed.get(key) or RemoteFile(key, None)


def test_fetch_verdicts(backend):
    arc, k = backend.archive, backend.keys
    good = arc.fetch(_remote(arc, k["good"]))
    assert good.status == "ok" and good.ok and good.reason == ""
    assert good.sha256 == hashlib.sha256(good.data).hexdigest() == good.expected_sha256
    assert good.checksum_text.split()[1] == "XRPUSDT-1h-2024-03-01.zip"
    assert zipfile.ZipFile(io.BytesIO(good.data)).namelist() == ["XRPUSDT-1h-2024-03-01.csv"]

    bad = arc.fetch(_remote(arc, k["bad"]))
    assert bad.status == "quarantined" and bad.data == kline_zip(k["bad"])
    assert bad.expected_sha256 in bad.reason and bad.sha256 in bad.reason
    assert bad.expected_sha256 != bad.sha256

    nosum = arc.fetch(_remote(arc, k["nosum"]))
    assert (nosum.status, nosum.reason) == ("quarantined", "no .CHECKSUM published")
    assert nosum.data and nosum.checksum_text is None and nosum.expected_sha256 is None

    wrong = arc.fetch(_remote(arc, k["wrongname"]))
    assert wrong.status == "quarantined" and "XRPUSDT-1h-2024-03-06.zip" in wrong.reason

    corrupt = arc.fetch(_remote(arc, k["corrupt"]))
    assert corrupt.status == "failed" and "zip" in corrupt.reason

    gone = arc.fetch(RemoteFile(k["gone"], 100, None, None, True))
    assert gone.status == "failed" and gone.data is None and "not found" in gone.reason


def test_fetch_many_yields_every_file_without_raising(backend):
    arc, k = backend.archive, backend.keys
    remotes = [_remote(arc, k[n]) for n in ("good", "bad", "nosum", "wrongname", "corrupt", "gone")]
    remotes += arc.files("um", "klines", "BTCUSDT", "1h")
    got = list(arc.fetch_many(remotes, max_workers=4))
    assert sorted(f.remote.path for f in got) == sorted(r.path for r in remotes)
    status = {f.remote.key: f.status for f in got}
    assert status[k["good"]] == "ok" and status[k["gone"]] == "failed"
    assert sum(s == "ok" for s in status.values()) == 1 + 2 + 15
    assert sum(s == "quarantined" for s in status.values()) == 3
    assert list(arc.fetch_many([])) == []


def test_real_archive_files_verify():
    if not (REAL / "data").is_dir():
        pytest.skip(f"real archive fixtures not at {REAL}")
    arc = BinanceArchive(REAL.as_uri())
    assert arc.markets() == ["spot", "um", "cm"]
    remotes = (arc.files("spot", "klines", "BTCUSDT", "1h") + arc.files("um", "fundingRate", "BTCUSDT")
               + arc.files("cm", "aggTrades", "BTCUSD_PERP"))
    assert len(remotes) == 4 and all(r.has_checksum for r in remotes)
    got = list(arc.fetch_many(remotes))
    assert [f.status for f in got] == ["ok"] * 4, [f.reason for f in got]
    assert {f.sha256 for f in got} >= {"0cef4d20388635c1cac914a52a012bc07cc83d7dfe4d7ec1d30cb15edf28ab53"}
    plan = arc.plan("spot", "klines", "BTCUSDT", "1h", "2026-05-01", "2026-05-31", today="2026-06-10")
    assert [f.period for f in plan] == ["2026-05-08", "2026-05-09"]


# ---------------------------------------------------------------- retries (a flaky fsspec fs)
class FlakyFS(MemoryFileSystem):
    """In-memory filesystem whose first `fail` reads of a path raise ConnectionError."""
    protocol = "flakytest"
    root_marker = "/"
    store: dict = {}
    pseudo_dirs = [""]
    fail = 0
    calls: dict = {}

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("flakytest://"))

    def cat_file(self, path, start=None, end=None, **kwargs):
        n = self.calls[path] = self.calls.get(path, 0) + 1
        if n <= self.fail:
            raise ConnectionError("connection reset by peer")
        return super().cat_file(path, start, end, **kwargs)


@pytest.fixture
def flaky():
    fsspec.register_implementation("flakytest", FlakyFS, clobber=True)
    FlakyFS.store.clear()
    FlakyFS.calls.clear()
    w = Writer(FlakyFS(skip_instance_cache=True), "/mirror")
    key = w.file("um", "monthly", "fundingRate", "BTCUSDT", None, "2024-01")
    w.flush()
    return key


def test_transient_errors_are_retried(flaky):
    FlakyFS.fail = 2
    arc = BinanceArchive("flakytest:///mirror", retries=2, backoff=0.01)
    got = arc.fetch(arc.files("um", "fundingRate", "BTCUSDT")[0])
    assert got.status == "ok"
    FlakyFS.calls.clear()
    FlakyFS.fail = 5
    got = BinanceArchive("flakytest:///mirror", retries=1, backoff=0.01).fetch(RemoteFile(flaky, None))
    assert got.status == "failed" and "ConnectionError" in got.reason
    assert max(FlakyFS.calls.values()) == 2                 # one try + one retry


def test_not_found_is_not_retried(flaky):
    FlakyFS.fail = 0
    arc = BinanceArchive("flakytest:///mirror", retries=3, backoff=0.5)
    gone = ArchiveKey("um", "monthly", "fundingRate", "BTCUSDT", None, "2023-01")
    t0 = time.perf_counter()
    assert arc.fetch(RemoteFile(gone, None)).status == "failed"
    assert time.perf_counter() - t0 < 0.4
    assert all(n == 1 for n in FlakyFS.calls.values())


# ---------------------------------------------------------------- construction and repr
def test_default_is_the_live_bucket_anonymously_without_io():
    arc = BinanceArchive()
    assert arc.url == "s3://data.binance.vision"
    assert arc.storage_options["anon"] is True
    assert arc.storage_options["client_kwargs"]["region_name"] == "ap-northeast-1"
    assert arc._fs is None
    assert repr(arc) == "BinanceArchive('s3://data.binance.vision')"


def test_repr_and_reasons_hide_credentials():
    opts = {"key": "AKIAEXAMPLEKEY", "secret": "s3cr3t-value",
            "endpoint_url": "http://user:pa55word@127.0.0.1:9"}
    arc = BinanceArchive("s3://data.binance.vision", opts)
    r = repr(arc)
    assert "\n" not in r and "127.0.0.1:9" in r
    for secret in ("AKIAEXAMPLEKEY", "s3cr3t-value", "pa55word", "user"):
        assert secret not in r
    assert "anon" not in arc.storage_options             # credentials given: not forced anonymous
    cleaned = arc._clean("denied for AKIAEXAMPLEKEY at http://user:pa55word@127.0.0.1:9/x s3cr3t-value")
    assert "AKIAEXAMPLEKEY" not in cleaned and "pa55word" not in cleaned and "s3cr3t" not in cleaned
    assert repr(Fetched(RemoteFile(ArchiveKey("um", "monthly", "fundingRate", "BTCUSDT", None,
                                              "2024-01"), 1), None, None, None, None, "failed", "x")
                ).startswith("Fetched('data/futures/um/monthly/fundingRate/BTCUSDT/")

