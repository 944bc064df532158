"""A real S3 endpoint for tests: moto's server on 127.0.0.1 (an OS-picked port), in a thread
of this process or, with ``process=True``, in its own process.

    srv = MotoS3().start()                     # sets fake AWS credentials in os.environ
    srv = MotoS3(process=True).start()         # `moto_server` subprocess: needed for Delta on S3
    srv.reset()                                # POST /moto-api/reset + s3fs cache clear
    srv.create_bucket(ARCHIVE_BUCKET, public=True)
    srv.upload_dir("/path/to/mirror", ARCHIVE_BUCKET)
    fs_opts = srv.anon_options()               # anonymous reads, like the real archive
    lake_opts = srv.auth_options()             # key/secret, for a writable lake bucket
    srv.stop()

Anonymous reads of the archive bucket work because it gets a bucket policy allowing
``s3:GetObject`` *and* ``s3:HeadObject`` to everyone: moto checks the (non-IAM) action
``s3:HeadObject`` for anonymous HEAD requests, which s3fs sends before most reads
(docs/testing-real-parts.md §1). Moto does not refuse anonymous writes, so tests cannot use it
to prove that read-only code never writes.

Delta Lake (delta-rs) holds the GIL while some calls wait on the network
(`DeltaTable.history()`), which deadlocks against a server thread in the same process: use
``process=True`` (``moto_server -H 127.0.0.1 -p PORT``, polled on ``/moto-api/`` until ready)
for anything that writes or reads Delta tables on S3. ``delta_options()`` gives the delta-rs
storage options for it.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["MotoS3", "ARCHIVE_BUCKET", "ARCHIVE_REGION", "LAKE_BUCKET", "set_fake_aws_env"]

ARCHIVE_BUCKET = "data.binance.vision"
ARCHIVE_REGION = "ap-northeast-1"
LAKE_BUCKET = "lake"
_KEY = _SECRET = "testing"


def set_fake_aws_env(environ=os.environ) -> dict:
    """Point boto at fake credentials and no config files; returns the previous values
    (None where unset) so a caller can restore them."""
    new = {"AWS_ACCESS_KEY_ID": _KEY, "AWS_SECRET_ACCESS_KEY": _SECRET,
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "BOTO_CONFIG": "/dev/null", "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None,
           "AWS_SESSION_TOKEN": None}
    old = {k: environ.get(k) for k in new}
    for k, v in new.items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = v
    return old


def _restore_env(old: dict, environ=os.environ) -> None:
    for k, v in old.items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = v


class MotoS3:
    """moto's ThreadedMotoServer with helpers for buckets, uploads and storage_options."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, process: bool = False):
        self.ip_address, self.port, self.process = ip_address, port, process
        self._server = None
        self._proc: subprocess.Popen | None = None
        self._old_env: dict | None = None
        self.endpoint_url: str | None = None

    def __repr__(self) -> str:
        state = self.endpoint_url or "stopped"
        return f"MotoS3({state})"

    def __enter__(self) -> "MotoS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- lifecycle
    def start(self) -> "MotoS3":
        """Start the server (idempotent), set the fake AWS environment, quiet werkzeug."""
        if self._server is not None or self._proc is not None:
            return self
        self._old_env = set_fake_aws_env()
        if self.process:
            self._start_process()
            return self
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=self.ip_address, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{self.ip_address}:{port}"
        return self

    def _start_process(self, timeout: float = 30.0) -> None:
        port = self.port or _free_port(self.ip_address)
        exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
        cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
        self._proc = subprocess.Popen(cmd + ["-H", self.ip_address, "-p", str(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://{self.ip_address}:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as r:
                    r.read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self._proc.kill()
                    self._proc = None
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.1)
        self.endpoint_url = url

    def stop(self) -> None:
        """Stop the server and restore the environment."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.endpoint_url = None
        if self._old_env is not None:
            _restore_env(self._old_env)
            self._old_env = None
        _clear_s3fs_cache()

    def reset(self) -> None:
        """Forget every bucket and object (``POST /moto-api/reset``) and s3fs's cached
        filesystems and listings."""
        import urllib.request

        req = urllib.request.Request(f"{self._ep()}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
        _clear_s3fs_cache()

    # -- buckets and objects
    def client(self, region: str = ARCHIVE_REGION):
        """An authenticated boto3 S3 client for the server."""
        import boto3

        return boto3.client("s3", endpoint_url=self._ep(), region_name=region,
                            aws_access_key_id=_KEY, aws_secret_access_key=_SECRET)

    def create_bucket(self, name: str, region: str = ARCHIVE_REGION, public: bool = False) -> str:
        """Create a bucket (dotted names are fine: path-style URLs); ``public=True`` lets anyone
        list and read it anonymously. Returns ``s3://name``."""
        c = self.client(region)
        kw = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        c.create_bucket(Bucket=name, **kw)
        if public:
            policy = {"Version": "2012-10-17", "Statement": [{
                "Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]}]}
            c.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        _clear_s3fs_cache()
        return f"s3://{name}"

    def upload_dir(self, local_dir: str | os.PathLike, bucket: str, prefix: str = "") -> list[str]:
        """Upload every file under ``local_dir`` keeping relative paths (under ``prefix``);
        returns the keys written, sorted."""
        root = Path(local_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"no directory to upload at {root}")
        c = self.client()
        keys = []
        for p in sorted(root.rglob("*")):
            if p.is_file():
                key = "/".join(filter(None, [prefix.strip("/"), p.relative_to(root).as_posix()]))
                c.put_object(Bucket=bucket, Key=key, Body=p.read_bytes())
                keys.append(key)
        _clear_s3fs_cache()
        return keys

    # -- storage_options for fsspec/s3fs
    def anon_options(self, region: str = ARCHIVE_REGION) -> dict:
        """Anonymous reads, as the real public archive is read."""
        return {"anon": True, "endpoint_url": self._ep(), "client_kwargs": {"region_name": region}}

    def auth_options(self, region: str = ARCHIVE_REGION) -> dict:
        """Key/secret access (a writable lake bucket, or a builder writing the archive)."""
        return {"key": _KEY, "secret": _SECRET, "endpoint_url": self._ep(),
                "client_kwargs": {"region_name": region}}

    def delta_options(self, region: str = ARCHIVE_REGION) -> dict:
        """delta-rs storage options for the server (what cryptolake maps `auth_options` to)."""
        return {"AWS_ENDPOINT_URL": self._ep(), "AWS_ALLOW_HTTP": "true", "AWS_REGION": region,
                "AWS_ACCESS_KEY_ID": _KEY, "AWS_SECRET_ACCESS_KEY": _SECRET}

    def _ep(self) -> str:
        if self.endpoint_url is None:
            raise RuntimeError("the moto server is not running; call start() first")
        return self.endpoint_url


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _clear_s3fs_cache() -> None:
    try:
        import s3fs
    except ImportError:                     # pragma: no cover - s3fs is a dependency
        return
    s3fs.S3FileSystem.clear_instance_cache()
