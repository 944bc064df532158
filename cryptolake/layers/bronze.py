"""Bronze: source files byte for byte in the archive's own layout, plus a manifest.

The manifest (`bronze/_manifest/{table}.parquet`) has one row per source file: where it came from
(key, upstream size/etag/last-modified), what we hold (bytes, sha256, status, reason) and
whether its rows are in silver yet (`in_silver`), so an interrupted ingest is finished by the
next one instead of being forgotten.
"""
from __future__ import annotations

import datetime as dt

import hashlib
from typing import Iterable

import pandas as pd
import pyarrow as pa

from .. import layout
from ..storage import Storage

MANIFEST_COLUMNS = {
    "key": "string", "table": "string", "market": "string", "data_type": "string",
    "symbol": "string", "interval": "string", "cadence": "string", "period": "string",
    "month": "string", "bytes": "Int64", "sha256": "string", "upstream_size": "Int64",
    "etag": "string", "last_modified": "string", "fetched_at": "datetime64[us, UTC]",
    "status": "string", "reason": "string", "in_silver": "boolean",
    "rows": "Int64", "first_time": "datetime64[us, UTC]", "last_time": "datetime64[us, UTC]",
}
# stored: verified and kept; quarantined: kept aside with the reason; missing: a file the
# archive should have (inside the symbol's listed life and an asked range) but does not list
STORED, QUARANTINED, MISSING = "stored", "quarantined", "missing"
MANIFEST_SCHEMA = pa.schema([
    (c, {"string": pa.string(), "Int64": pa.int64(), "boolean": pa.bool_(),
         "datetime64[us, UTC]": pa.timestamp("us", tz="UTC")}[t]) for c, t in MANIFEST_COLUMNS.items()])


def _empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in MANIFEST_COLUMNS.items()})


def _fingerprint(size, etag, last_modified) -> tuple:
    return (None if pd.isna(size) else int(size),
            None if etag is None or pd.isna(etag) else str(etag),
            None if last_modified is None or pd.isna(last_modified) else str(last_modified))


class Bronze:
    """`lake.bronze`: the stored source files and their manifest.

    The manifest is kept per table (`bronze/_manifest/{table}.parquet`) so that ingests of
    different tables never overwrite each other's bookkeeping; `manifest()` shows them all.
    """

    def __init__(self, storage: Storage):
        self.storage = storage
        self._rows: dict[str, dict[str, dict]] = {}     # table -> key -> row
        self._frame: pd.DataFrame | None = None

    def __repr__(self) -> str:
        # no I/O: only what this session has already read of the manifest
        known = sum(len(keys) for table in self._rows.values() for keys in table.values())
        return (f"<Bronze {self.storage.url}/bronze: {known} manifest rows loaded; "
                f"lake.bronze.files() lists them all>")

    # ------------------------------------------------------------ manifest
    def _tables(self) -> list[str]:
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.storage.ls(layout.MANIFEST_DIR)]
        return sorted(n[: -len(".parquet")] for n in names if n.endswith(".parquet") and not n.startswith("."))

    def rows(self, table: str) -> dict[str, dict[str, dict]]:
        """Manifest rows of one table as symbol -> key -> row (read once, then kept in memory)."""
        if table not in self._rows:
            rel = layout.manifest_path(table)
            index: dict[str, dict[str, dict]] = {}
            if self.storage.exists(rel):
                for r in self.storage.read_table(rel).to_pylist():
                    index.setdefault(r["symbol"], {})[r["key"]] = r
            self._rows[table] = index
        return self._rows[table]

    def symbol_rows_all(self, table: str) -> list[dict]:
        """Every manifest row of one table."""
        return [r for sym in self.rows(table).values() for r in sym.values()]

    def symbol_rows(self, table: str, symbol: str) -> list[dict]:
        return list(self.rows(table).get(symbol, {}).values())

    def manifest(self) -> pd.DataFrame:
        """Every table's manifest as one DataFrame, sorted by key."""
        if self._frame is None:
            rows = [r for t in self._tables() for sym in self.rows(t).values() for r in sym.values()]
            df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)) if rows else _empty_manifest()
            self._frame = df.astype(MANIFEST_COLUMNS).sort_values("key", ignore_index=True)
        return self._frame

    def upsert(self, rows: Iterable[dict], write: bool = True) -> None:
        """Insert or replace manifest rows by key; `write` saves the touched tables atomically."""
        touched = set()
        for r in rows:
            self.rows(r["table"]).setdefault(r["symbol"], {})[r["key"]] = dict(r)
            touched.add(r["table"])
        self._frame = None
        if write:
            self.save(touched)

    def save(self, tables: Iterable[str]) -> None:
        """Write the manifests of `tables` atomically."""
        for table in tables:
            rows = sorted((r for sym in self.rows(table).values() for r in sym.values()),
                          key=lambda r: r["key"])
            self.storage.write_table(layout.manifest_path(table),
                                     pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))

    def lookup(self, table: str, remote) -> dict | None:
        return self.rows(table).get(remote.key.symbol, {}).get(remote.key.key)

    def is_unchanged(self, remote, table: str) -> bool:
        """True when `remote` (an upstream file) matches what bronze already holds."""
        row = self.lookup(table, remote)
        if row is None:
            return False
        same = _fingerprint(row["upstream_size"], row["etag"], row["last_modified"]) == \
            _fingerprint(remote.size, remote.etag, remote.last_modified)
        where = layout.bronze_path if row["status"] == STORED else layout.quarantine_path
        return same and self.storage.exists(where(row["key"]))

    # ------------------------------------------------------------ files
    def store(self, fetched, table: str) -> dict:
        """Write a fetched file (and its .CHECKSUM) byte for byte; returns its manifest row.

        Verified files go to `bronze/<key>`, the others to `bronze/_quarantine/<key>`.
        """
        remote, key = fetched.remote, fetched.remote.key
        status = STORED if fetched.status == "ok" else QUARANTINED
        where = layout.bronze_path if status == STORED else layout.quarantine_path
        self.storage.write_bytes(where(key.key), fetched.data)
        if fetched.checksum_text:
            self.storage.write_bytes(where(key.checksum_key), fetched.checksum_text.encode())
        if status == STORED:   # a file that was quarantined before and is good now
            self.storage.remove(layout.quarantine_path(key.key))
        return self.row(remote, table, status=status, reason=fetched.reason or "",
                        sha256=fetched.sha256, nbytes=len(fetched.data))

    def quarantine(self, row: dict, reason: str) -> dict:
        """Move a stored file to quarantine (e.g. it verified but does not parse)."""
        key = row["key"]
        for rel in (key, key + ".CHECKSUM"):
            src = layout.bronze_path(rel)
            if self.storage.exists(src):
                self.storage.write_bytes(layout.quarantine_path(rel), self.storage.read_bytes(src))
                self.storage.remove(src)
        return {**row, "status": QUARANTINED, "reason": reason, "in_silver": False}

    @staticmethod
    def row(remote, table: str, *, status: str, reason: str, sha256: str | None,
            nbytes: int | None) -> dict:
        k = remote.key
        return {
            "key": k.key, "table": table, "market": k.market, "data_type": k.data_type,
            "symbol": k.symbol, "interval": k.interval, "cadence": k.cadence, "period": k.period,
            "month": k.month, "bytes": nbytes, "sha256": sha256, "upstream_size": remote.size,
            "etag": None if remote.etag is None else str(remote.etag),
            "last_modified": None if remote.last_modified is None else str(remote.last_modified),
            "fetched_at": dt.datetime.now(dt.timezone.utc), "status": status, "reason": reason,
            "in_silver": False, "rows": None, "first_time": None, "last_time": None,
        }

    @staticmethod
    def missing_row(key, table: str) -> dict:
        """The manifest row of a file the archive should have but does not list."""
        return {"key": key.key, "table": table, "market": key.market, "data_type": key.data_type,
                "symbol": key.symbol, "interval": key.interval, "cadence": key.cadence,
                "period": key.period, "month": key.month, "bytes": None, "sha256": None,
                "upstream_size": None, "etag": None, "last_modified": None,
                "fetched_at": dt.datetime.now(dt.timezone.utc), "status": MISSING,
                "reason": "not listed in the archive", "in_silver": True, "rows": 0,
                "first_time": None, "last_time": None}

    def read(self, key: str) -> bytes:
        return self.storage.read_bytes(layout.bronze_path(key))

    def files(self, **filters) -> pd.DataFrame:
        """Manifest rows matching every filter: `files(symbol="BTCUSDT", status="stored")`;
        a list value matches any of its items."""
        m = self.manifest()
        for col, want in filters.items():
            if col not in m.columns:
                raise ValueError(f"unknown manifest column {col!r}; columns: {', '.join(m.columns)}")
            m = m[m[col].isin(want if isinstance(want, (list, tuple, set)) else [want])]
        return m.reset_index(drop=True)

    def verify(self) -> pd.DataFrame:
        """Re-read every stored file and check its SHA-256 against the manifest and its .CHECKSUM.

        Returns one row per manifest entry: key, status (ok, mismatch, missing, quarantined,
        not_published), detail. `missing`: the file is gone from bronze; `not_published`: the
        archive never listed it (its bars are `missing_file` gaps).
        """
        out = []
        for row in self.manifest().itertuples(index=False):
            if row.status in (QUARANTINED, MISSING):
                out.append((row.key, "not_published" if row.status == MISSING else row.status, row.reason))
                continue
            path = layout.bronze_path(row.key)
            if not self.storage.exists(path):
                out.append((row.key, "missing", "file absent from bronze"))
                continue
            actual = hashlib.sha256(self.storage.read_bytes(path)).hexdigest()
            published = ""
            if self.storage.exists(path + ".CHECKSUM"):
                published = self.storage.read_bytes(path + ".CHECKSUM").decode().split()[0].lower()
            if actual != row.sha256:
                out.append((row.key, "mismatch", f"sha256 {actual} != manifest {row.sha256}"))
            elif published and published != actual:
                out.append((row.key, "mismatch", f"sha256 {actual} != .CHECKSUM {published}"))
            else:
                out.append((row.key, "ok", ""))
        return pd.DataFrame(out, columns=["key", "status", "detail"])
