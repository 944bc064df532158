"""data.binance.vision as a source: list, plan, fetch and verify archive files through fsspec.

`BinanceArchive()` reads the live public bucket anonymously; `BinanceArchive(url, storage_options)`
reads any fsspec location in the same layout (an S3 endpoint such as moto or MinIO, a
`file://` mirror whose root holds `data/...`, `memory://`). Sources never write the lake:
`fetch` hands back bytes plus a verdict, and the caller decides where they go.

Listing notes (docs/binance-archive.md §1-2): every listing is a delimiter listing through
`fs.ls(detail=True, refresh=True)` (s3fs paginates ListObjectsV2 past 1000 keys and the refresh
bypasses its directory cache, so a re-run sees new uploads). Objects that `parse_archive_key`
rejects (Spark `part-00000-…zip` leftovers, unpadded months, stray files) are ignored.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import io
import os
import re
import time
import zipfile
from dataclasses import dataclass
from typing import Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from .. import config
from ..layout import (KLINE_TYPES, ArchiveKey, market_dir, months_between, parse_archive_key,
                      symbol_dir, type_dir)
from ..schema import DAILY_INTERVALS, DATA_TYPES, MARKETS, _as_date, validate_request

DEFAULT_URL = "s3://data.binance.vision"
DEFAULT_REGION = "ap-northeast-1"
_CREDENTIAL_OPTIONS = ("anon", "key", "secret", "token", "profile", "session",
                       "aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_SECRET_OPTIONS = ("key", "secret", "token", "password", "aws_access_key_id",
                   "aws_secret_access_key", "aws_session_token")
_SYMBOL_RE = re.compile(r"^[A-Z0-9_]+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
STATUSES = ("ok", "quarantined", "failed")


@dataclass(frozen=True)
class RemoteFile:
    """One archive file as listed upstream (the listing's size/etag/last-modified are the
    fingerprint a re-run compares to decide whether a file was republished)."""
    key: ArchiveKey
    size: int | None
    etag: str | None = None
    last_modified: pd.Timestamp | None = None
    has_checksum: bool = False

    @property
    def path(self) -> str:
        """The object key, e.g. `data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip`."""
        return self.key.key

    @property
    def symbol(self) -> str:
        return self.key.symbol

    @property
    def period(self) -> str:
        return self.key.period

    @property
    def cadence(self) -> str:
        return self.key.cadence

    def __repr__(self) -> str:
        return f"RemoteFile({self.key.key!r}, size={self.size}, checksum={self.has_checksum})"


@dataclass(frozen=True)
class Plan:
    """What `plan_detail` chose: the files to fetch and, per symbol, the keys the archive
    lacks inside the symbol's listed life and the asked range."""
    files: list[RemoteFile]
    holes: dict[str, list[ArchiveKey]]
    life: dict[str, tuple[dt.date, dt.date]] = None     # symbol -> first and last listed day


@dataclass(frozen=True)
class Fetched:
    """The outcome of fetching one file.

    status: "ok" (bytes match the published SHA-256), "quarantined" (bytes kept, but the
    .CHECKSUM is missing, malformed, names another file, or disagrees; or the bytes verify
    but are not a readable zip) or "failed" (not read: 404, connection, permission). `data`
    is None only when the zip could not be read at all.
    """
    remote: RemoteFile
    data: bytes | None
    checksum_text: str | None
    expected_sha256: str | None
    sha256: str | None
    status: str
    reason: str = ""
    nbytes: int | None = None    # bytes read (set by `fetch_to`, whose `data` stays None)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        n = "-" if self.data is None else len(self.data)
        why = f", reason={self.reason!r}" if self.reason else ""
        return f"Fetched({self.remote.key.key!r}, status={self.status!r}, bytes={n}{why})"


# botocore has already retried these itself (its own retry policy); retrying them again here
# would only multiply the wait when an endpoint is down.
_ALREADY_RETRIED = {"EndpointConnectionError", "ConnectTimeoutError", "ProxyConnectionError"}


def _is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError,
                            NotADirectoryError, ValueError, TypeError)) or \
        type(exc).__name__ in _ALREADY_RETRIED


def _redact_url(url: str) -> str:
    """Drop user:password@ from a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _ls_local(path: str) -> list[dict]:
    """`fs.ls(path, detail=True)` of a local directory with the fields listing reads (name,
    size, type, mtime) exactly as fsspec's LocalFileSystem gives them: a link is typed and
    dated as itself ("other") and sized as its target (0 when dangling)."""
    out = []
    with os.scandir(path) as it:
        for e in it:
            st = e.stat(follow_symlinks=False)
            kind = ("directory" if e.is_dir(follow_symlinks=False) else
                    "file" if e.is_file(follow_symlinks=False) else "other")
            size = st.st_size
            if e.is_symlink():
                try:
                    size = e.stat(follow_symlinks=True).st_size
                except OSError:
                    size = 0
            out.append({"name": f"{path.rstrip('/')}/{e.name}", "size": size, "type": kind,
                        "mtime": st.st_mtime})
    return out


def _read_local(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class BinanceArchive:
    """Read-only access to Binance's public archive (or a mirror in the same layout).

    >>> arc = BinanceArchive()                                     # live bucket, anonymous
    >>> arc = BinanceArchive("s3://data.binance.vision",
    ...                      {"endpoint_url": "http://127.0.0.1:5000"})   # moto / MinIO mirror
    >>> arc = BinanceArchive("file:///data/binance-mirror")        # holds data/spot/...
    >>> files = arc.plan("um", "klines", ["BTCUSDT"], "1h", "2024-01-01", "2024-03-15")
    >>> for f in arc.fetch_many(files): ...

    For `s3://` URLs with no credentials in `storage_options` the bucket is read anonymously
    (`anon=True`), and the region defaults to ap-northeast-1. Construction does no I/O.
    `retries` transient errors (timeouts, connection resets) are retried with a doubling
    `backoff` (seconds); 404 and permission errors are not retried.
    """

    def __init__(self, url: str | None = None, storage_options: dict | None = None, *,
                 retries: int = 2, backoff: float = 0.25):
        opts = dict(storage_options or {})
        url = DEFAULT_URL if url is None else str(url)
        if url.startswith(("s3://", "s3a://")):
            if not any(k in opts for k in _CREDENTIAL_OPTIONS):
                opts["anon"] = True
            ck = dict(opts.get("client_kwargs") or {})
            if "region_name" not in ck:
                ck["region_name"] = DEFAULT_REGION
            opts["client_kwargs"] = ck
            if "config_kwargs" not in opts:     # botocore's legacy mode waits ~9 s on a dead host
                opts["config_kwargs"] = {"retries": {"mode": "standard", "max_attempts": 3},
                                         "connect_timeout": 10, "read_timeout": 30}
        self.url = url
        self.storage_options = opts
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self._fs = None
        self._root = None

    # ------------------------------------------------------------------ plumbing
    @property
    def fs(self):
        """The fsspec filesystem (created on first use; creating it does no network I/O)."""
        if self._fs is None:
            import fsspec
            fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
            if hasattr(fs, "retries") and type(fs).__name__ == "S3FileSystem":
                # s3fs retries each call 5 times, nested twice (25 tries), under botocore's own
                # retries and ours: a stalled connection would wait 25 x read_timeout per try
                fs.retries = 1
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    @property
    def root(self) -> str:
        self.fs
        return self._root

    @property
    def endpoint(self) -> str | None:
        ep = self.storage_options.get("endpoint_url") or \
            (self.storage_options.get("client_kwargs") or {}).get("endpoint_url")
        return None if ep is None else _redact_url(str(ep))

    def __repr__(self) -> str:
        ep = self.endpoint
        return f"BinanceArchive({_redact_url(self.url)!r}" + (f", endpoint={ep!r})" if ep else ")")

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def _rel(self, name: str) -> str:
        name = name.rstrip("/")
        prefix = self.root + "/" if self.root else ""
        if prefix and name.startswith(prefix):
            return name[len(prefix):]
        if prefix and name.startswith("/" + prefix):          # some fs return a leading slash
            return name[len(prefix) + 1:]
        return name

    def _clean(self, text: str) -> str:
        """An error text safe to show: no secrets from storage_options, no user:pass@ in URLs."""
        text = re.sub(r"(//)[^/@\s]+@", r"\1***@", str(text))
        secrets = [self.storage_options.get(k) for k in _SECRET_OPTIONS]
        secrets += [(self.storage_options.get("client_kwargs") or {}).get(k) for k in _SECRET_OPTIONS]
        for s in secrets:
            if isinstance(s, str) and len(s) >= 4:
                text = text.replace(s, "***")
        return text

    def _retry(self, fn, *args, **kwargs):
        """Call fn, retrying errors that may be transient; permanent ones propagate at once."""
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:   # noqa: BLE001 - classified below
                if _is_permanent(exc) or attempt == self.retries:
                    raise
                time.sleep(self.backoff * (2 ** attempt))
        raise AssertionError("unreachable")

    def _ls(self, rel: str) -> list[dict]:
        """Fresh detailed listing of one directory; [] when it does not exist."""
        path = self._path(rel)

        def go():
            if self.is_local:        # one scandir: fsspec stats every entry through ~6 calls
                return _ls_local(path)
            try:
                return self.fs.ls(path, detail=True, refresh=True)
            except TypeError:                     # a filesystem without `refresh`
                self.fs.invalidate_cache(path)
                return self.fs.ls(path, detail=True)
        try:
            return self._retry(go)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except Exception as exc:   # noqa: BLE001 - re-raised with where and what, no secrets
            msg = self._clean(f"cannot list {rel} on {self!r}: {type(exc).__name__}: {exc}")
            raise (PermissionError if isinstance(exc, PermissionError) else OSError)(msg) from None

    def _dirnames(self, rel: str) -> set[str]:
        return {self._rel(e["name"]).rsplit("/", 1)[-1] for e in self._ls(rel)
                if e.get("type") == "directory"}

    # ------------------------------------------------------------------ listing
    def markets(self) -> list[str]:
        """Markets present at this location, in ("spot", "um", "cm") order."""
        top = self._dirnames("data")
        fut = self._dirnames("data/futures") if "futures" in top else set()
        present = {"spot"} & top | {"um", "cm"} & fut
        return [m for m in MARKETS if m in present]

    def data_types(self, market: str) -> list[str]:
        """Data-type directories listed under the market's daily and monthly trees (sorted)."""
        if market not in MARKETS:
            raise ValueError(f"unknown market {market!r}; allowed: {', '.join(MARKETS)}")
        names = self._dirnames(f"{market_dir(market)}/daily") | \
            self._dirnames(f"{market_dir(market)}/monthly")
        return sorted(names)

    def symbols(self, market: str, data_type: str, interval: str | None = None) -> list[str]:
        """Every symbol listed for (market, data_type) in the daily or monthly tree, sorted;
        delisted symbols included (they keep their old files). For kline-class types an
        `interval` keeps only symbols that have that interval directory (one extra listing
        per symbol, run concurrently)."""
        _check(market, data_type, interval, need_interval=False)
        cads = _cadences(market, data_type, interval)
        by_cad = {c: self._dirnames(type_dir(market, c, data_type)) for c in cads}
        names = sorted(set().union(*by_cad.values()))
        names = [n for n in names if _SYMBOL_RE.match(n)]
        if interval is None or data_type not in KLINE_TYPES:
            return names

        def has(sym: str) -> bool:
            return any(sym in by_cad[c] and
                       interval in self._dirnames(f"{type_dir(market, c, data_type)}/{sym}")
                       for c in cads)
        with cf.ThreadPoolExecutor(max_workers=_listing_workers(len(names))) as ex:
            keep = list(ex.map(has, names))
        return [n for n, k in zip(names, keep) if k]

    def files(self, market: str, data_type: str, symbol: str, interval: str | None = None,
              cadence: str | None = None) -> list[RemoteFile]:
        """Archive files listed for one symbol (both cadences unless `cadence` is given),
        sorted by period. Junk objects and names `parse_archive_key` rejects are skipped."""
        req = _check(market, data_type, interval, need_interval=True)
        symbol = _check_symbol(symbol)
        if cadence not in (None, "daily", "monthly"):
            raise ValueError(f"unknown cadence {cadence!r}; allowed: daily, monthly (or None for both)")
        cads = _cadences(market, data_type, req.interval)
        cads = [c for c in cads if cadence in (None, c)]
        out: list[RemoteFile] = []
        for c in cads:
            out += self._list_files(market, c, data_type, symbol, req.interval)
        return sorted(out, key=_order)

    def _list_files(self, market, cadence, data_type, symbol, interval) -> list[RemoteFile]:
        entries = self._ls(symbol_dir(market, cadence, data_type, symbol, interval))
        rels = {self._rel(e["name"]): e for e in entries if e.get("type") != "directory"}
        out = []
        for rel, e in rels.items():
            key = parse_archive_key(rel)
            if key is None or key.market != market or key.cadence != cadence or \
                    key.data_type != data_type or key.symbol != symbol or key.interval != interval:
                continue
            out.append(RemoteFile(key, _size(e), _etag(e), _mtime(e), rel + ".CHECKSUM" in rels))
        return out

    # ------------------------------------------------------------------ planning
    def plan(self, market: str, data_type: str, symbols=None, interval: str | None = None,
             start=None, end=None, today=None) -> list[RemoteFile]:
        """The files to fetch for a date range, sorted by symbol then period (see `plan_detail`)."""
        return self.plan_detail(market, data_type, symbols, interval, start, end, today).files

    def plan_detail(self, market: str, data_type: str, symbols=None, interval: str | None = None,
                    start=None, end=None, today=None) -> "Plan":
        """The files to fetch for a date range, and the periods the archive lacks.

        Validates first (nothing is listed for a bad request). `symbols`: one symbol, a list,
        or None for every listed symbol. Closed months (ending before `today`, UTC) that lie
        wholly inside [start, end] come from their monthly file when it is listed; every other
        day from daily files. A closed month only partly inside the range also comes from its
        monthly file when some of its days in range have no daily file (archive holes are
        often filled in the other cadence; the caller trims rows to the range). Monthly-only
        types (fundingRate, 3d/1w/1mo klines) use every monthly file overlapping the range;
        daily-only types every daily file in it. `start=None` starts at the symbol's earliest
        listed file; `end=None` means up to today.

        `Plan.holes` names, per symbol, the archive keys (daily, or monthly for monthly-only
        types) that should exist inside the symbol's listed life — its first to its last listed
        file — and the range, but are listed in neither cadence: the lake records them so that
        the bars they should hold are reported as `missing_file` gaps.
        """
        req = validate_request(market, data_type, interval, start, end, ingestible_only=False)
        today = _as_date(today, "today") or dt.datetime.now(dt.timezone.utc).date()
        if symbols is None:
            syms = None
        else:
            syms = [symbols] if isinstance(symbols, str) else list(symbols)
            syms = list(dict.fromkeys(_check_symbol(s) for s in syms))
        if syms is None:     # no interval filter: a symbol without it simply lists no files
            syms = self.symbols(market, data_type)
        cads = _cadences(market, data_type, req.interval)

        def one(sym: str):
            listed = {c: self._list_files(market, c, data_type, sym, req.interval) for c in cads}
            return _plan_symbol(listed.get("monthly", []), listed.get("daily", []),
                                req.start, req.end, today)
        with cf.ThreadPoolExecutor(max_workers=_listing_workers(len(syms))) as ex:
            parts = list(ex.map(one, syms))
        files = sorted((f for chosen, _, _ in parts for f in chosen), key=_order)
        holes, life = {}, {}
        for sym, (_, absent, span) in zip(syms, parts):
            if absent:
                holes[sym] = [ArchiveKey(market, cad, data_type, sym, req.interval, period)
                              for cad, period in absent]
            if span is not None:
                life[sym] = span
        return Plan(files, holes, life)

    # ------------------------------------------------------------------ fetching
    def fetch(self, remote: RemoteFile) -> Fetched:
        """Read one file and its .CHECKSUM and verify the SHA-256 before anything parses it.
        Never raises for a bad file: the verdict is in `status` and `reason`."""
        try:
            return self._fetch(remote)
        except Exception as exc:   # noqa: BLE001 - one bad file must not stop a batch
            return Fetched(remote, None, None, None, None, "failed",
                           self._clean(f"{type(exc).__name__}: {exc}"))

    @property
    def is_local(self) -> bool:
        """True for a mirror on a local file system."""
        return "file" in self.fs.protocol

    def _read(self, rel: str) -> bytes:
        if self.is_local:     # a local mirror: plain OS reads (fsspec's file objects cost ~4x more)
            return self._retry(_read_local, self._path(rel))
        return self._retry(self.fs.cat_file, self._path(rel))

    def _fetch(self, remote: RemoteFile) -> Fetched:
        key = remote.key
        try:
            raw_sum = self._read(key.checksum_key)
            checksum_text = raw_sum.decode("utf-8", errors="replace")
        except FileNotFoundError:
            checksum_text = None
        except Exception as exc:   # noqa: BLE001
            return self._failed(remote, f"reading {key.filename}.CHECKSUM", exc)
        try:
            data = self._read(key.key)
        except Exception as exc:   # noqa: BLE001
            return self._failed(remote, f"reading {key.filename}", exc)
        if remote.size is not None and len(data) != remote.size:
            # a short read (a dropped connection) or a file replaced since the listing: a fault
            # of this download, not of the file -- fail it (nothing stored), a re-run retries
            return Fetched(remote, None, None, None, None, "failed", self._clean(
                f"reading {key.filename}: got {len(data)} bytes, the listing says {remote.size} "
                f"(truncated download, or republished since listed)"))
        actual = hashlib.sha256(data).hexdigest()
        got = self._verdict(remote, data, checksum_text, actual, len(data))
        if got.status != "ok":
            return got
        problem = _zip_problem(data, key)
        if problem:       # verified bytes, unreadable zip
            return Fetched(remote, data, checksum_text, got.expected_sha256, actual, "quarantined",
                           problem, len(data))
        return got

    def fetch_to(self, remote: RemoteFile, dst) -> Fetched:
        """Stream one file into the writable file object `dst` in 1 MiB chunks, hashing as it
        goes, then verify the SHA-256 against the .CHECKSUM: the bounded-memory `fetch` for
        big files. The returned `Fetched` has `data=None` and `nbytes` set; status "failed"
        means `dst` holds nothing usable. The zip structure is not checked here (the caller
        holds the bytes). Never raises for a bad file."""
        from .stream import sha256_stream
        key = remote.key
        try:
            try:
                checksum_text = self._read(key.checksum_key).decode("utf-8", errors="replace")
            except FileNotFoundError:
                checksum_text = None
            except Exception as exc:   # noqa: BLE001
                return self._failed(remote, f"reading {key.filename}.CHECKSUM", exc)
            try:
                src = self._retry(self.fs.open, self._path(key.key), "rb", block_size=8 << 20)
                with src:
                    actual, n = sha256_stream(src, dst, chunk_size=1 << 20)
            except Exception as exc:   # noqa: BLE001
                return self._failed(remote, f"reading {key.filename}", exc)
            if remote.size is not None and n != remote.size:
                return Fetched(remote, None, None, None, None, "failed", self._clean(
                    f"reading {key.filename}: got {n} bytes, the listing says {remote.size} "
                    f"(truncated download, or republished since listed)"))
            return self._verdict(remote, None, checksum_text, actual, n)
        except Exception as exc:   # noqa: BLE001 - one bad file must not stop a batch
            return Fetched(remote, None, None, None, None, "failed",
                           self._clean(f"{type(exc).__name__}: {exc}"))

    def published_sha256(self, remote: RemoteFile) -> str | None:
        """The SHA-256 the file's .CHECKSUM states now (None: absent, unreadable or malformed).
        A file quarantined for its .CHECKSUM heals when Binance corrects the .CHECKSUM alone,
        which leaves the zip's listing fingerprint as it was."""
        try:
            tokens = self._read(remote.key.checksum_key).decode("utf-8", errors="replace").split()
        except Exception:   # noqa: BLE001 - no verdict possible: treat as not published
            return None
        expected = tokens[0].lower() if tokens else ""
        return expected if _HEX64.match(expected) else None

    def _verdict(self, remote, data, checksum_text, actual, nbytes) -> Fetched:
        """ok / quarantined from the .CHECKSUM text and the bytes' SHA-256."""
        key = remote.key

        def verdict(status, reason="", expected=None):
            return Fetched(remote, data, checksum_text, expected, actual, status, reason, nbytes)

        if checksum_text is None:
            return verdict("quarantined", "no .CHECKSUM published")
        tokens = checksum_text.split()
        expected = tokens[0].lower() if tokens else ""
        if not _HEX64.match(expected):
            return verdict("quarantined", f"malformed .CHECKSUM: {checksum_text.strip()[:100]!r}")
        if len(tokens) > 1:
            named = tokens[1].lstrip("*").rsplit("/", 1)[-1]
            if named != key.filename:
                return verdict("quarantined", f".CHECKSUM names {named!r}, not {key.filename!r}",
                               expected)
        if expected != actual:
            return verdict("quarantined", f"sha256 mismatch: .CHECKSUM says {expected}, "
                                          f"file hashes to {actual}", expected)
        return verdict("ok", "", expected)

    def _failed(self, remote, what, exc) -> Fetched:
        kind = "not found" if isinstance(exc, FileNotFoundError) else type(exc).__name__
        return Fetched(remote, None, None, None, None, "failed",
                       self._clean(f"{what}: {kind}: {exc}"))

    def fetch_many(self, remotes: Iterable[RemoteFile], max_workers: int | None = None
                   ) -> Iterator[Fetched]:
        """Fetch concurrently on threads, yielding each `Fetched` as it completes (not in input
        order). Never raises for one bad file. Stopping the iteration early cancels what has
        not started. `max_workers` defaults to `config.max_workers()` ($CRYPTOLAKE_WORKERS)."""
        remotes = list(remotes)
        if not remotes:
            return
        workers = max(1, min(len(remotes), max_workers or config.max_workers()))
        ex = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cryptolake-fetch")
        try:
            futures = {ex.submit(self.fetch, r): r for r in remotes}
            for fut in cf.as_completed(futures):
                try:
                    yield fut.result()
                except Exception as exc:   # noqa: BLE001 - fetch already catches; belt and braces
                    yield Fetched(futures[fut], None, None, None, None, "failed",
                                  self._clean(f"{type(exc).__name__}: {exc}"))
        finally:
            ex.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------- helpers
def _check(market, data_type, interval, need_interval: bool):
    """Validate names (not dates) before any listing; every error names the allowed values."""
    if data_type in KLINE_TYPES and interval is None and not need_interval:
        interval = "1d"     # any valid interval: only the names are being checked
        req = validate_request(market, data_type, interval, ingestible_only=False)
        return type(req)(req.market, req.data_type, None, None, None)
    return validate_request(market, data_type, interval, ingestible_only=False)


def _check_symbol(symbol) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol.upper()):
        raise ValueError(f"symbol {symbol!r} is not an archive symbol; use the exchange id in "
                         f"upper case, like 'BTCUSDT', 'BTCUSD_PERP' or '1000BONKUSDT'")
    return symbol.upper()


def _listing_workers(n: int) -> int:
    """Listings are tiny, latency-bound requests: use more threads than downloads do."""
    return max(1, min(n, max(16, config.max_workers())))


def _cadences(market: str, data_type: str, interval: str | None) -> list[str]:
    """Cadences worth listing: what the archive publishes for this type (and interval)."""
    pub = DATA_TYPES[market][data_type]
    cads = [c for c, flag in (("monthly", "m"), ("daily", "d")) if flag in pub]
    if interval is not None and interval not in DAILY_INTERVALS:
        cads = [c for c in cads if c == "monthly"]
    return cads


def _order(f: RemoteFile):
    return (f.key.symbol, f.key.period, f.key.cadence)


def _plan_symbol(monthly: list[RemoteFile], daily: list[RemoteFile],
                 start: dt.date | None, end: dt.date | None, today: dt.date):
    """(files to fetch, absent (cadence, period)s inside the listed life and the range,
    (first, last) listed day or None)."""
    if not monthly and not daily:
        return [], [], None
    life_first = min(f.key.first_day for f in monthly + daily)
    life_last = max(f.key.last_day for f in monthly + daily)
    start = start or life_first
    end = end or today
    if start > end:
        return [], [], (life_first, life_last)
    chosen = _choose(monthly, daily, start, end, today)
    lo, hi = max(start, life_first), min(end, life_last)
    return chosen, _absent(chosen, lo, hi, "monthly" if not daily else "daily"), (life_first, life_last)


def _choose(monthly, daily, start, end, today) -> list[RemoteFile]:
    by_month = {f.key.period: f for f in monthly}
    by_day = {f.key.first_day: f for f in daily}
    if not daily:          # monthly-only type or interval: every listed month overlapping
        return [f for f in monthly if f.key.last_day >= start and f.key.first_day <= end]
    if not monthly:        # daily-only type (or nothing monthly listed)
        return [f for f in daily if start <= f.key.first_day <= end]
    out = []
    for month in months_between(start, end):
        first = dt.date.fromisoformat(month + "-01")
        m = by_month.get(month)
        last = m.key.last_day if m else _month_end(first)
        closed = last < today
        lo, hi = max(first, start), min(last, end)
        days = [by_day.get(lo + dt.timedelta(d)) for d in range((hi - lo).days + 1)]
        if m is not None and closed:
            whole = first >= start and last <= end
            if whole or any(d is None for d in days):
                out.append(m)
                continue
        out += [d for d in days if d is not None]
    return out


def _absent(chosen: list[RemoteFile], lo: dt.date, hi: dt.date, cadence: str) -> list[tuple[str, str]]:
    """(cadence, period) of every day (or month) in [lo, hi] no chosen file covers."""
    if lo > hi:
        return []
    covered = set()
    for f in chosen:
        d = f.key.first_day
        while d <= f.key.last_day:
            covered.add(d)
            d += dt.timedelta(days=1)
    if cadence == "monthly":
        months = {c.strftime("%Y-%m") for c in covered}
        return [("monthly", m) for m in months_between(lo, hi) if m not in months]
    out, d = [], lo
    while d <= hi:
        if d not in covered:
            out.append(("daily", d.isoformat()))
        d += dt.timedelta(days=1)
    return out


def _month_end(first: dt.date) -> dt.date:
    nxt = dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _zip_problem(data, key: ArchiveKey | None = None) -> str | None:
    """A cheap structural check (central directory only, nothing decompressed) of zip bytes
    or a seekable binary file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"corrupt zip (checksum matched): {exc}"
    if not names:
        return "corrupt zip (checksum matched): no member"
    return None


def _size(e: dict) -> int | None:
    v = e.get("size", e.get("Size"))
    return None if v is None else int(v)


def _etag(e: dict) -> str | None:
    v = e.get("ETag") or e.get("etag") or e.get("ETAG")
    return None if v is None else str(v).strip('"')


def _mtime(e: dict) -> pd.Timestamp | None:
    v = e.get("LastModified") or e.get("last_modified") or e.get("mtime") or e.get("created")
    if v is None:
        return None
    try:
        if isinstance(v, (int, float)):
            return pd.Timestamp(v, unit="s", tz="UTC")
        ts = pd.Timestamp(v)
        return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError):
        return None
