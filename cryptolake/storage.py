"""The storage boundary: fsspec for bronze files, Delta Lake (`deltalake`) for tables.

A `Storage` is a lake root (a local path, `file://`, `s3://`, `gs://`, `az://`) plus the user's
`storage_options` in the fsspec spelling (s3fs: `key`, `secret`, `token`, `endpoint_url`,
`client_kwargs`, `anon`). `delta_options()` is the one place they are mapped to delta-rs
options. Credentials live only in private attributes: they never appear in a repr, an error we
raise, or Delta commit metadata.

Bronze writes are atomic (a dot-prefixed temporary name, then a move). Table writes are Delta
commits (`commit()` wraps them in a bounded retry on fresh state).
"""
from __future__ import annotations

import logging
import os
import random
import re
import time
import uuid
from typing import Any, Callable

import fsspec

_log = logging.getLogger("cryptolake.storage")

DELTA_PROTOCOLS = ("file", "local", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
CHECKPOINT_INTERVAL = 100          # a checkpoint every 100 commits keeps opening a table fast
# Commit files are kept (no expired-log cleanup): `lake.at(...)` must reach old versions for
# as long as `lake.vacuum` keeps their data files, not only the 30 days Delta keeps by default.
TABLE_CONFIG = {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL),
                "delta.enableExpiredLogCleanup": "false"}
COMMIT_ATTEMPTS = 8


class LegacyLayoutError(RuntimeError):
    """The lake was written by the pre-Delta layout; `lake.migrate()` converts it."""


class CommitConflictError(RuntimeError):
    """A Delta commit still conflicted with other writers after every retry."""


def _truthy(v) -> bool:
    return v is True or str(v).lower() in ("1", "true", "yes")


def delta_options(storage_options: dict[str, Any] | None, protocol: str = "s3") -> dict[str, str]:
    """Map fsspec-style `storage_options` to delta-rs (object_store) options.

    s3 (s3fs spelling): key -> AWS_ACCESS_KEY_ID, secret -> AWS_SECRET_ACCESS_KEY,
    token -> AWS_SESSION_TOKEN, endpoint_url (or client_kwargs["endpoint_url"]) ->
    AWS_ENDPOINT_URL (+ AWS_ALLOW_HTTP=true for an http:// endpoint),
    client_kwargs["region_name"] (or region_name) -> AWS_REGION, anon=True -> AWS_SKIP_SIGNATURE,
    profile -> AWS_PROFILE.
    gs (gcsfs): token (a path, or a dict of service-account JSON) -> GOOGLE_SERVICE_ACCOUNT /
    GOOGLE_SERVICE_ACCOUNT_KEY; anon / token="anon" -> GOOGLE_SKIP_SIGNATURE.
    az (adlfs): account_name, account_key, sas_token, tenant_id, client_id, client_secret,
    anon -> AZURE_STORAGE_ACCOUNT_NAME, ..._ACCOUNT_KEY, ..._SAS_TOKEN, AZURE_TENANT_ID,
    AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_SKIP_SIGNATURE.
    Keys already in delta-rs spelling (AWS_*, GOOGLE_*, AZURE_*) pass through; other fsspec
    keys (block sizes, caching) only concern bronze and are dropped here.
    """
    opts = dict(storage_options or {})
    out: dict[str, str] = {}
    for k, v in opts.items():
        if isinstance(k, str) and k.split("_", 1)[0] in ("AWS", "GOOGLE", "AZURE") and v is not None:
            out[k] = str(v)
    proto = {"s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az"}.get(protocol, protocol)
    if proto == "s3":
        ck = opts.get("client_kwargs") or {}
        pairs = {"AWS_ACCESS_KEY_ID": opts.get("key"), "AWS_SECRET_ACCESS_KEY": opts.get("secret"),
                 "AWS_SESSION_TOKEN": opts.get("token"), "AWS_PROFILE": opts.get("profile"),
                 "AWS_ENDPOINT_URL": opts.get("endpoint_url") or ck.get("endpoint_url"),
                 "AWS_REGION": ck.get("region_name") or opts.get("region_name")}
        out.update({k: str(v) for k, v in pairs.items() if v is not None})
        if str(out.get("AWS_ENDPOINT_URL", "")).startswith("http://"):
            out["AWS_ALLOW_HTTP"] = "true"
        if _truthy(opts.get("anon", False)):
            out["AWS_SKIP_SIGNATURE"] = "true"
    elif proto == "gs":
        token = opts.get("token")
        if _truthy(opts.get("anon", False)) or token == "anon":
            out["GOOGLE_SKIP_SIGNATURE"] = "true"
        elif isinstance(token, dict):
            import json
            out["GOOGLE_SERVICE_ACCOUNT_KEY"] = json.dumps(token)
        elif isinstance(token, str) and token not in ("google_default", "cloud", "browser", "cache"):
            out["GOOGLE_SERVICE_ACCOUNT"] = token
    elif proto == "az":
        names = {"account_name": "AZURE_STORAGE_ACCOUNT_NAME", "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
                 "sas_token": "AZURE_STORAGE_SAS_TOKEN", "tenant_id": "AZURE_TENANT_ID",
                 "client_id": "AZURE_CLIENT_ID", "client_secret": "AZURE_CLIENT_SECRET"}
        out.update({dk: str(opts[k]) for k, dk in names.items() if opts.get(k) is not None})
        if _truthy(opts.get("anon", False)):
            out["AZURE_SKIP_SIGNATURE"] = "true"
    return out


S3_MAX_ATTEMPTS = 10
"""Tries of each S3 request for bronze bytes (botocore's standard retry mode, exponential
backoff), unless `storage_options["config_kwargs"]["retries"]` says otherwise. botocore's
default of 5 lets a store answering 500 to 30% of writes fail one write in ~400: an ingest of
a few dozen files then fails one run in ~20 (delta-rs retries its own requests 10 times)."""


def _fs_options(storage_options: dict[str, Any], protocol: str) -> dict[str, Any]:
    """fsspec options for the lake's bronze bytes: the user's, plus S3_MAX_ATTEMPTS on S3."""
    opts = dict(storage_options)
    if protocol in ("s3", "s3a"):
        ck = dict(opts.get("config_kwargs") or {})
        ck.setdefault("retries", {"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"})
        opts["config_kwargs"] = ck
    return opts


def _secrets(options: dict[str, str]) -> list[str]:
    words = ("SECRET", "KEY", "TOKEN", "PASSWORD", "SAS")
    return [v for k, v in options.items()
            if any(w in k.upper() for w in words) and "KEY_ID" not in k.upper() and len(v) >= 4]


class Storage:
    """A lake root: fsspec for bronze bytes, Delta URIs and options for tables."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = str(url)
        proto = fsspec.core.split_protocol(self.url)[0] or "file"
        if proto == "memory":
            raise ValueError(f"a Lake cannot live on memory:// ({self.url!r}): Delta tables there exist "
                             "only inside one handle. Use a temporary directory instead, e.g. "
                             "cl.Lake(tempfile.mkdtemp()) or pytest's tmp_path")
        if proto not in DELTA_PROTOCOLS:
            raise ValueError(f"unsupported lake URL {self.url!r}; allowed: a local path, file://, "
                             "s3://, gs://, az:// (abfs://)")
        self._options = dict(storage_options or {})
        self.fs, root = fsspec.core.url_to_fs(self.url, **_fs_options(self._options, proto))
        self.root = root.rstrip("/") or "/"
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if self.protocol in ("file", "local"):
            self.fs.makedirs(self.root, exist_ok=True)
            self._base = self.root
        else:
            self._base = f"{proto}://{self.root}"
        self._delta = delta_options(self._options, proto)

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel.lstrip('/')}" if rel else self.root

    # ------------------------------------------------------------ Delta
    def table_uri(self, rel: str) -> str:
        """The URI delta-rs opens for the table at `rel` (e.g. `silver/um_klines_1m`)."""
        return f"{self._base.rstrip('/')}/{rel.strip('/')}"

    @property
    def delta_storage_options(self) -> dict[str, str]:
        """delta-rs options for this lake (a copy; holds credentials, never print it)."""
        return dict(self._delta)

    def scrub(self, text: str) -> str:
        """`text` with every credential of this lake replaced by `***`."""
        for s in _secrets(self._delta) + _secrets({k: str(v) for k, v in self._options.items()
                                                    if isinstance(v, (str, int))}):
            text = text.replace(s, "***")
        return text

    def is_delta(self, rel: str) -> bool:
        """True when a Delta table lives at `rel` (its `_delta_log` has a commit). One HEAD of
        the first commit (kept: no expired-log cleanup), else one listing."""
        log = f"{rel}/_delta_log"
        try:
            if self.fs.exists(self.path(f"{log}/{0:020d}.json")):
                return True
        except OSError:
            pass
        return any(p.rstrip("/").endswith((".json", ".checkpoint.parquet")) for p in self.ls(log))

    def open_table(self, rel: str, version: int | None = None):
        """`deltalake.DeltaTable` at `rel` (optionally at `version`); errors are scrubbed."""
        from deltalake import DeltaTable
        try:
            return DeltaTable(self.table_uri(rel), version=version, storage_options=self._delta or None)
        except Exception as e:
            raise type(e)(self.scrub(str(e))) from None

    def ensure_table(self, rel: str, schema, partition_by=None, what: str = "") -> None:
        """Create the empty Delta table at `rel` unless it exists (race-safe: concurrent
        creators agree, `mode="ignore"`, retried like any commit)."""
        from deltalake import DeltaTable

        def create():
            if not self.is_delta(rel):
                DeltaTable.create(self.table_uri(rel), schema, partition_by=partition_by, mode="ignore",
                                  configuration=TABLE_CONFIG,
                                  storage_options=self.delta_storage_options or None)
        self.commit(create, what or f"create {rel}")

    def commit(self, action: Callable[[], Any], what: str, attempts: int = COMMIT_ATTEMPTS):
        """Run `action` (which must re-read whatever it depends on: it is a whole
        read-merge-commit) until it commits, retrying conflicts with jittered backoff.

        Raises CommitConflictError naming `what` when `attempts` tries all conflict."""
        from deltalake.exceptions import CommitFailedError, DeltaError
        last = None
        for i in range(attempts):
            try:
                return action()
            except (CommitFailedError, DeltaError) as e:
                msg = str(e)
                if not _is_conflict(e, msg):
                    raise type(e)(self.scrub(msg)) from None
                last = msg
                _log.info("%s: commit conflict (attempt %d of %d), retrying on fresh state: %s",
                          what, i + 1, attempts, self.scrub(msg)[:200])
                time.sleep(min(2.0, 0.05 * 2 ** i) * (0.5 + random.random()))
        raise CommitConflictError(f"{what}: could not commit after {attempts} attempts because other "
                                  f"writers kept committing first ({self.scrub(str(last))[:300]}); "
                                  "re-run it (nothing was half-written)")

    # ------------------------------------------------------------ bytes
    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def _tmp_name(self, target: str) -> str:
        parent, _, name = target.rpartition("/")
        return f"{parent}/.tmp-{uuid.uuid4().hex[:12]}-{name}"

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write `data` to `rel` atomically (temporary name, then move)."""
        target = self.path(rel)
        parent = target.rpartition("/")[0]
        tmp = self._tmp_name(target)
        if self.is_local:      # the same steps with plain OS calls (fsspec costs ~4x more here)
            os.makedirs(parent, exist_ok=True)
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
            return
        self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(tmp, data)
        try:
            self.fs.mv(tmp, target)
        except Exception:
            self.fs.rm(tmp)
            raise

    def tmp_path(self, rel: str) -> str:
        """A fresh temporary name (full fsspec path) beside `rel`, its folder created: stream
        into it with `fs.open(tmp, "wb")`, then `move_into(tmp, rel)`."""
        target = self.path(rel)
        self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        return self._tmp_name(target)

    def move_into(self, tmp: str, rel: str) -> None:
        """Move a temporary file (from `tmp_path`) to `rel` (its folder created)."""
        target = self.path(rel)
        self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        self.fs.mv(tmp, target)

    def open(self, rel: str, mode: str = "rb"):
        """A file object for `rel` (seekable when read: zip members stream from it)."""
        if self.is_local:
            return open(self.path(rel), mode)
        return self.fs.open(self.path(rel), mode)

    def remove(self, rel: str, recursive: bool = False) -> None:
        p = self.path(rel)
        if self.is_local and not recursive:
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
            return
        if self.fs.exists(p):
            self.fs.rm(p, recursive=recursive)

    def ls(self, rel: str, detail: bool = False) -> list:
        p = self.path(rel)
        try:
            self.fs.invalidate_cache(p)
            return self.fs.ls(p, detail=detail)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def isdir(self, rel: str) -> bool:
        return self.fs.isdir(self.path(rel))

    def find(self, rel: str, suffix: str = "") -> list[str]:
        """Every file under `rel` ending with `suffix`, as paths relative to the root."""
        p = self.path(rel)
        self.fs.invalidate_cache(p)
        try:
            found = self.fs.find(p)
        except FileNotFoundError:
            return []
        return sorted(f[len(self.root) + 1:] for f in found if f.endswith(suffix))

    def local_path(self, rel: str) -> str | None:
        """An OS path for `rel` on a local lake, else None."""
        return os.path.join(self.root, rel) if self.is_local else None


_CONFLICT = re.compile(r"concurrent|conflict|already exists|commit failed|transaction failed|"
                       r"max commit attempts|retries", re.I)


def _is_conflict(err: Exception, msg: str) -> bool:
    from deltalake.exceptions import CommitFailedError
    return isinstance(err, CommitFailedError) or bool(_CONFLICT.search(msg))
