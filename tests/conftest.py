"""Shared pytest fixtures. Keep each fixture small and documented; append new ones by section.

Archive fixtures (cryptolake.testing.archive / .s3):
  moto_server       session   a MotoS3 server on 127.0.0.1 (OS-picked port), fake AWS env
  moto_process      session   a MotoS3 `moto_server` subprocess (Delta on S3 needs it: delta-rs
                              holds the GIL while waiting on the network)
  s3_delta          function  moto_process reset; yields it
  s3                function  moto reset (no buckets, s3fs caches cleared); yields the server
  s3_archive        function  public bucket data.binance.vision + ArchiveBuilder -> ArchiveSite
  s3_lake           function  private bucket `lake` on moto_process -> LakeSite(url, storage_options)
  local_archive     function  ArchiveSite on a tmp_path directory (file://)
  real_archive_dir  session   local mirror root holding only the real archive files
  real_archive_keys session   their zip keys (data/...), sorted
  s3_real_archive   function  s3_archive with the real files uploaded
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import os

import pytest
from hypothesis import settings

from cryptolake.testing.archive import ArchiveBuilder, ArchiveSite
from cryptolake.testing.s3 import ARCHIVE_BUCKET, LAKE_BUCKET, MotoS3

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "data.binance.vision"
SAMPLE_ARCHIVE = REPO / "examples" / "sample-archive"

# `make test` (and so CI) runs hypothesis with HYPOTHESIS_PROFILE=ci: the same examples every
# run, so a red run is a reproducible defect, not the luck of the draw. A plain `pytest` keeps
# hypothesis' random search (and its local example database), which is how defects are found.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# ---------------------------------------------------------------- S3 (moto)
@dataclass
class LakeSite:
    """A writable lake location for tests."""
    url: str
    storage_options: dict


@pytest.fixture(scope="session")
def moto_server():
    """One moto S3 server for the whole session; tests reset it through `s3`."""
    srv = MotoS3().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def moto_process():
    """A moto S3 server in its own process for the whole session: delta-rs holds the GIL while
    some calls wait on the network, so Delta tables on S3 need a server outside this process."""
    srv = MotoS3(process=True).start()
    yield srv
    srv.stop()


@pytest.fixture
def s3_delta(moto_process) -> MotoS3:
    """The moto subprocess server, emptied, with s3fs's caches cleared."""
    moto_process.reset()
    return moto_process


@pytest.fixture
def s3(moto_server) -> MotoS3:
    """The moto server, emptied (every bucket gone) and with s3fs's caches cleared."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def s3_archive(s3) -> ArchiveSite:
    """An empty `s3://data.binance.vision` (ap-northeast-1, anonymous reads allowed).
    `.storage_options` read anonymously like the real archive; `.builder` writes with keys."""
    url = s3.create_bucket(ARCHIVE_BUCKET, public=True)
    return ArchiveSite(url, s3.anon_options(), ArchiveBuilder(url, s3.auth_options()))


@pytest.fixture
def s3_lake(s3_delta) -> LakeSite:
    """An empty private bucket `s3://lake` (on the moto subprocess, so Delta works) with
    key/secret storage_options."""
    return LakeSite(s3_delta.create_bucket(LAKE_BUCKET), s3_delta.auth_options())


# ---------------------------------------------------------------- local archive
@pytest.fixture
def local_archive(tmp_path) -> ArchiveSite:
    """An empty archive mirror in a temp directory (file:// URL) with a builder."""
    root = tmp_path / "archive"
    root.mkdir()
    url = root.as_uri()
    return ArchiveSite(url, {}, ArchiveBuilder(url))


# ---------------------------------------------------------------- real archive files
@pytest.fixture(scope="session")
def real_archive_dir(tmp_path_factory) -> Path:
    """Mirror root (contains `data/...`) holding only real files from data.binance.vision:
    the shared fixtures beside the repo, else the real files bundled in examples/sample-archive
    (listed in its manifest.json)."""
    if (SHARED_FIXTURES / "data").is_dir():
        return SHARED_FIXTURES
    manifest = SAMPLE_ARCHIVE / "manifest.json"
    if not manifest.is_file():
        pytest.fail(f"no real archive files: neither {SHARED_FIXTURES} nor {manifest} exists")
    root = tmp_path_factory.mktemp("real-archive")
    for key in json.loads(manifest.read_text())["real"]:
        dst = root / key
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_ARCHIVE / key, dst)
    return root


@pytest.fixture(scope="session")
def real_archive_keys(real_archive_dir) -> list[str]:
    """Keys (`data/...zip`) of the real archive files."""
    return sorted(p.relative_to(real_archive_dir).as_posix() for p in real_archive_dir.rglob("*.zip"))


@pytest.fixture
def s3_real_archive(s3_archive, s3, real_archive_dir) -> ArchiveSite:
    """`s3_archive` with every real file (zips and CHECKSUMs) uploaded in its layout."""
    s3.upload_dir(real_archive_dir, ARCHIVE_BUCKET)
    return s3_archive
