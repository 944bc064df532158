"""BinanceArchive against real parts: a moto S3 server on 127.0.0.1 (anonymous reads, like the
live bucket) and a file:// mirror, both holding the same synthetic archive; plus the real
archive files in the shared fixtures."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import fsspec
from fsspec.implementations.memory import MemoryFileSystem
import pytest

from cryptolake.layout import ArchiveKey
from cryptolake.sources.archive import BinanceArchive, Fetched, RemoteFile
from cryptolake.testing.archive import ArchiveBuilder, checksum_line
from cryptolake.testing.s3 import ARCHIVE_BUCKET

TODAY = dt.date(2024, 3, 11)


# ---------------------------------------------------------------- the synthetic archive
def days(first: str, last: str) -> list[str]:
    a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [str(a + dt.timedelta(i)) for i in range((b - a).days + 1)]


def build_scenario(b: ArchiveBuilder) -> dict:
    """What every backend holds (written with the shared builder). Returns keys tests use."""
    k = {}
    for p in ("2024-01", "2024-02"):
        b.klines("um", "BTCUSDT", "1h", p)
    for d in days("2024-02-25", "2024-03-10"):
        b.klines("um", "BTCUSDT", "1h", d)
    for d in days("2024-01-01", "2024-01-31"):                 # closed month, no monthly file
        b.klines("um", "ETHUSDT", "1h", d)
    b.klines("um", "LUNAUSDT", "1h", "2022-04")                # delisted: old files only
    b.klines("um", "ADAUSDT", "4h", "2024-03-01")              # no 1h directory
    for p in ("2024-01", "2024-02"):
        b.funding("um", "BTCUSDT", p)
    b.klines("spot", "BTCUSDT", "1h", "2024-03-01")
    # junk next to real files (docs/binance-archive.md §2.4)
    mdir = b.symbol_dir("um", "monthly", "klines", "BTCUSDT", "1h")
    b.junk(mdir)                                               # part-00000-<uuid>-c000.zip
    b.junk(mdir, "BTCUSDT-1h-2024-1.zip")                      # unpadded month
    b.junk(mdir, "README.txt")
    b.junk(b.symbol_dir("um", "daily", "klines", "BTCUSDT", "1h"), "ETHUSDT-1h-2024-03-01.zip")
    # fetch verdicts
    k["good"] = b.klines("um", "XRPUSDT", "1h", "2024-03-01")
    k["bad"] = b.klines("um", "XRPUSDT", "1h", "2024-03-02", checksum="bad")
    k["nosum"] = b.klines("um", "XRPUSDT", "1h", "2024-03-03", checksum="missing")
    k["corrupt"] = b.corrupt_zip(ArchiveKey("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-04"))
    k["wrongname"] = b.klines("um", "XRPUSDT", "1h", "2024-03-05")
    b.fs.pipe_file(b.path(k["wrongname"].checksum_key),
                   checksum_line(b.file(k["wrongname"]).zip, "XRPUSDT-1h-2024-03-06.zip"))
    k["gone"] = ArchiveKey("um", "daily", "klines", "XRPUSDT", "1h", "2024-03-07")  # never written
    return k


class Backend:
    def __init__(self, name, archive: BinanceArchive, builder: ArchiveBuilder, keys: dict):
        self.name, self.archive, self.builder, self.keys = name, archive, builder, keys

    def fresh(self) -> BinanceArchive:
        """A new BinanceArchive on the same location."""
        return BinanceArchive(self.archive.url, self.archive.storage_options)


@pytest.fixture(scope="module")
def s3_backend(moto_server):
    """The scenario in s3://data.binance.vision on the session's moto server, read anonymously.
    Built once for this module (the tests below never reset the server)."""
    moto_server.reset()
    url = moto_server.create_bucket(ARCHIVE_BUCKET, public=True)
    b = ArchiveBuilder(url, moto_server.auth_options())
    keys = build_scenario(b)
    return Backend("s3", BinanceArchive(url, moto_server.anon_options()), b, keys)


@pytest.fixture(scope="module")
def file_backend(tmp_path_factory):
    url = tmp_path_factory.mktemp("mirror").as_uri()
    b = ArchiveBuilder(url)
    keys = build_scenario(b)
    return Backend("file", BinanceArchive(url), b, keys)


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
    assert f.size == len(backend.builder.file(f.key).zip)
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
    backend.builder.klines("um", "SOLUSDT", "1h", "2023-06-01")
    after = arc.files("um", "klines", "SOLUSDT", "1h")
    assert (len(before), len(after)) == (0, 1)
    assert "SOLUSDT" in arc.symbols("um", "klines", "1h")


def test_s3_listing_paginates_past_1000(s3_backend):
    # 1100 PUTs over HTTP take ~10 s on moto; write straight into the in-process server's state
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends
        store = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    except (ImportError, KeyError) as exc:
        pytest.skip(f"moto internals changed: {exc!r}")
    want = days("2020-01-01", "2023-12-31")[:1100]
    for d in want:
        store.put_object(ARCHIVE_BUCKET, ArchiveKey("um", "daily", "klines", "PAGEUSDT", "1m", d).key, b"z")
    files = s3_backend.fresh().files("um", "klines", "PAGEUSDT", "1m", cadence="daily")
    assert [f.period for f in files] == want
    assert not any(f.has_checksum for f in files)


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
    with pytest.raises(ValueError) as err:
        arc.plan(*args, today=TODAY)
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


def test_unreachable_endpoint_fails_fast_and_says_where():
    arc = BinanceArchive("s3://data.binance.vision", {
        "endpoint_url": "http://127.0.0.1:9", "key": "AKIAEXAMPLEKEY", "secret": "s3cr3t-value",
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}, retries=1)
    with pytest.raises(OSError) as err:
        arc.files("um", "klines", "BTCUSDT", "1h")
    msg = str(err.value)
    assert "data/futures/um/" in msg and "127.0.0.1:9" in msg
    assert "s3cr3t" not in msg and "AKIAEXAMPLEKEY" not in msg
    got = arc.fetch(RemoteFile(ArchiveKey("um", "monthly", "fundingRate", "BTCUSDT", None, "2024-01"), 1))
    assert got.status == "failed" and "connect" in got.reason.lower()


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
    assert bad.status == "quarantined" and bad.data == backend.builder.file(k["bad"]).zip
    assert bad.expected_sha256 in bad.reason and bad.sha256 in bad.reason
    assert bad.expected_sha256 != bad.sha256

    nosum = arc.fetch(_remote(arc, k["nosum"]))
    assert (nosum.status, nosum.reason) == ("quarantined", "no .CHECKSUM published")
    assert nosum.data and nosum.checksum_text is None and nosum.expected_sha256 is None

    wrong = arc.fetch(_remote(arc, k["wrongname"]))
    assert wrong.status == "quarantined" and "XRPUSDT-1h-2024-03-06.zip" in wrong.reason

    corrupt = arc.fetch(_remote(arc, k["corrupt"]))
    assert corrupt.status == "quarantined" and "zip" in corrupt.reason and corrupt.data

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
    assert sum(s == "quarantined" for s in status.values()) == 4   # bad, missing, wrong-name checksum, and the corrupt zip
    assert list(arc.fetch_many([])) == []


def test_real_archive_files_verify(real_archive_dir):
    arc = BinanceArchive(real_archive_dir.as_uri())
    assert arc.markets() == ["spot", "um", "cm"]
    remotes = (arc.files("spot", "klines", "BTCUSDT", "1h") + arc.files("um", "fundingRate", "BTCUSDT")
               + arc.files("cm", "aggTrades", "BTCUSD_PERP"))
    assert len(remotes) == 4 and all(r.has_checksum for r in remotes)
    got = list(arc.fetch_many(remotes))
    assert [f.status for f in got] == ["ok"] * 4, [f.reason for f in got]
    assert "0cef4d20388635c1cac914a52a012bc07cc83d7dfe4d7ec1d30cb15edf28ab53" in {f.sha256 for f in got}
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
    return ArchiveBuilder("flakytest:///mirror").funding("um", "BTCUSDT", "2024-01")


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
    assert arc.fetch(RemoteFile(gone, None)).status == "failed"
    assert FlakyFS.calls and all(n == 1 for n in FlakyFS.calls.values())   # no second try


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



# Last in the module: `s3_real_archive` resets the moto server (s3_backend's bucket goes away).
def test_real_archive_files_verify_on_s3(s3_real_archive, real_archive_keys):
    arc = BinanceArchive(s3_real_archive.url, s3_real_archive.storage_options)
    remotes = arc.plan("spot", "klines", "BTCUSDT", "1h", "2026-05-01", today="2026-05-10")
    remotes += arc.plan("um", "fundingRate", "BTCUSDT", start="2026-04-01", today="2026-05-10")
    assert sorted(r.path for r in remotes) == sorted(k for k in real_archive_keys
                                                     if "/BTCUSDT/" in k and "cm/" not in k)
    assert all(r.etag and r.has_checksum for r in remotes)
    assert {f.status for f in arc.fetch_many(remotes)} == {"ok"}


def test_a_local_listing_gives_what_fsspec_lists(tmp_path):
    """The local mirror is listed with one os.scandir: names, sizes, types and mtimes equal
    fsspec's LocalFileSystem.ls (manifest fingerprints stay the same), links and dangling
    links included; a missing folder lists nothing."""
    import os
    from cryptolake.sources.archive import _ls_local
    d = tmp_path / "sym"
    (d / "sub").mkdir(parents=True)
    (d / "a.zip").write_bytes(b"x" * 10)
    (d / "a.zip.CHECKSUM").write_text("abc  a.zip\n")
    os.symlink(d / "a.zip", d / "link.zip")
    os.symlink(d / "sub", d / "linkdir")
    os.symlink(d / "gone", d / "dangling.zip")
    fields = ("name", "size", "type", "mtime")
    want = sorted(tuple(e[f] for f in fields) for e in fsspec.filesystem("file").ls(str(d), detail=True))
    got = sorted(tuple(e[f] for f in fields) for e in _ls_local(str(d)))
    assert got == want and len(got) == 6
    arc = BinanceArchive(tmp_path.as_uri())
    assert arc._ls("nowhere") == [] and {e["type"] for e in arc._ls("sym")} == {"file", "directory", "other"}
