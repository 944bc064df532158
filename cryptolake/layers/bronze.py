"""Bronze: source files byte for byte in the archive's own layout, plus a manifest.

The manifest is one Delta table for every lake table (`bronze/_manifest`, partitioned by
`table`), one row per source file: where it came from (key, upstream size/etag/last-modified),
what we hold (bytes, sha256, status, reason) and whether its rows are in silver yet
(`in_silver`), so an interrupted ingest is finished by the next one instead of being forgotten.
Rows are upserted by (table, key) with a Delta MERGE, so two writers never lose each other's
rows. `status` is free text: stored, quarantined, or whatever a writer records (e.g. missing,
with bytes/sha256 null).
"""
from __future__ import annotations

import datetime as dt

import hashlib
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..storage import LegacyLayoutError, Storage
from ..faults import checkpoint

MANIFEST_COLUMNS = {
    "key": "string", "table": "string", "market": "string", "data_type": "string",
    "symbol": "string", "interval": "string", "cadence": "string", "period": "string",
    "month": "string", "bytes": "Int64", "sha256": "string", "upstream_size": "Int64",
    "etag": "string", "last_modified": "string", "fetched_at": "datetime64[us, UTC]",
    "status": "string", "reason": "string", "in_silver": "boolean",
    "rows": "Int64", "first_time": "datetime64[us, UTC]", "last_time": "datetime64[us, UTC]",
    "previous_sha256": "string", "republished": "Int64",
}
# stored: verified and kept; quarantined: kept aside with the reason; missing: a file the
# archive should have (inside the symbol's listed life and an asked range) but does not list
STORED, QUARANTINED, MISSING = "stored", "quarantined", "missing"
MANIFEST_SCHEMA = pa.schema([
    (c, {"string": pa.string(), "Int64": pa.int64(), "boolean": pa.bool_(),
         "datetime64[us, UTC]": pa.timestamp("us", tz="UTC")}[t]) for c, t in MANIFEST_COLUMNS.items()])
MANIFEST_REL = layout.MANIFEST_DIR
# An "in silver" mark (in_silver = true) applies only to the same bytes it was made for: a
# writer that stored a republished file meanwhile (another sha256, in_silver false) keeps its row.
_NOT_STALE = "s.in_silver = false OR s.sha256 IS NULL OR t.sha256 IS NULL OR t.sha256 = s.sha256"


# manifest partitions up to this many rows are upserted by rewriting them (cheap while small);
# bigger ones by a Delta MERGE, which rewrites only the files holding matched rows
REWRITE_ROWS = 50_000


def _partition_rows(t, tables: list[str]) -> int:
    """Rows the manifest holds for `tables`, from the Delta log (no data read)."""
    acts = pa.table(t.get_add_actions(flatten=True))
    if not acts.num_rows:
        return 0
    hit = pc.is_in(acts["partition.table"].cast(pa.string()), pa.array(tables, pa.string()))
    return int(pc.sum(acts.filter(hit)["num_records"]).as_py() or 0)


def _upserted(cur: pa.Table, src: pa.Table) -> pa.Table:
    """`cur` with `src` upserted by (table, key), as the MERGE does: a source row replaces the
    target row unless it is a stale "in silver" mark (see _NOT_STALE); new keys are added."""
    index = {(a, b): i for i, (a, b) in enumerate(zip(cur["table"].to_pylist(), cur["key"].to_pylist()))}
    t_sha = cur["sha256"].to_pylist()
    s_rows = src.to_pylist()
    drop, keep = set(), []
    for r in s_rows:
        i = index.get((r["table"], r["key"]))
        if i is not None:
            if not (r["in_silver"] is False or r["sha256"] is None or t_sha[i] is None
                    or t_sha[i] == r["sha256"]):
                continue            # a stale mark: the target row (other bytes) stays
            drop.add(i)
        keep.append(r)
    if drop:
        cur = cur.filter(pa.array([i not in drop for i in range(cur.num_rows)]))
    return pa.concat_tables([cur, pa.Table.from_pylist(keep, schema=MANIFEST_SCHEMA)])


def _empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in MANIFEST_COLUMNS.items()})


def _fingerprint(size, etag, last_modified) -> tuple:
    return (None if pd.isna(size) else int(size),
            None if etag is None or pd.isna(etag) else str(etag),
            None if last_modified is None or pd.isna(last_modified) else str(last_modified))


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def legacy_manifests(storage: Storage) -> list[str]:
    """Per-table Parquet manifests of the pre-Delta layout (`bronze/_manifest/{table}.parquet`)."""
    return [p.rstrip("/").rsplit("/", 1)[-1] for p in storage.ls(MANIFEST_REL)
            if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith(".")]


class Bronze:
    """`lake.bronze`: the stored source files and their manifest (a Delta table).

    `pinned`: a manifest version (int) or timestamp to read at (under `lake.at(...)`);
    a pinned Bronze is read-only.
    """

    def __init__(self, storage: Storage, pinned=None):
        self.storage = storage
        self.pinned = pinned
        self._rows: dict[str, dict[str, dict]] = {}     # table -> symbol -> key -> row
        self._dirty: dict[tuple[str, str], dict] = {}   # (table, key) -> row not yet committed
        self._frame: pd.DataFrame | None = None
        # (tables, version, rows): the partitions of `tables` exactly as our own last commit
        # (a rewrite) left them at `version`; a re-read at that version needs no data read
        self._own: tuple[tuple[str, ...], int, pa.Table] | None = None

    def __repr__(self) -> str:
        # no I/O: only what this session has already read of the manifest
        known = sum(len(keys) for table in self._rows.values() for keys in table.values())
        return (f"<Bronze {self.storage.url}/bronze: {known} manifest rows loaded; "
                f"lake.bronze.files() lists them all>")

    # ------------------------------------------------------------ manifest table
    def _open(self):
        """The manifest DeltaTable (at the pin), or None before the first commit."""
        if not self.storage.is_delta(MANIFEST_REL):
            if legacy_manifests(self.storage):
                raise LegacyLayoutError(
                    f"{self.storage.url} holds a pre-Delta bronze manifest (bronze/_manifest/*.parquet); "
                    f"run lake.migrate() or `cryptolake migrate {self.storage.url}` first")
            return None
        if isinstance(self.pinned, int):
            return self.storage.open_table(MANIFEST_REL, version=self.pinned)
        t = self.storage.open_table(MANIFEST_REL)
        if self.pinned is not None:
            when = pd.Timestamp(self.pinned)
            when = (when.tz_localize("UTC") if when.tz is None else when.tz_convert("UTC")).to_pydatetime()
            created = t.metadata().created_time
            if created is not None and when.timestamp() * 1000 < created:
                return None                               # the manifest did not exist yet
            t.load_as_version(when)
        return t

    @property
    def version(self) -> int | None:
        t = self._open()
        return None if t is None else t.version()

    def _read(self, table: str | None = None, symbol: str | None = None) -> pa.Table:
        """Manifest rows (of one table / symbol). MERGE writes string_view columns, so the
        symbol filter runs after the cast; the table filter prunes partitions."""
        t = self._open()
        if t is None:
            return MANIFEST_SCHEMA.empty_table()
        own = self._own
        if own is not None and table in own[0] and self.pinned is None and t.version() == own[1]:
            data = own[2]                 # nobody committed since our rewrite: its rows
        else:
            prune = [("table", "=", table)] if table is not None else None
            data = t.to_pyarrow_dataset(file_pruning_predicate=prune).to_table()
            data = data.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA)
        if table is not None:
            data = data.filter(pc.equal(data["table"], table))
        if symbol is not None:
            data = data.filter(pc.equal(data["symbol"], symbol))
        return data

    def arrow(self) -> pa.Table:
        """The whole manifest as Arrow (what `bronze.files` in SQL shows)."""
        return self._read()

    def _ensure(self):
        self.storage.ensure_table(MANIFEST_REL, MANIFEST_SCHEMA, ["table"], "create the bronze manifest")

    def _merge(self, rows: list[dict], note: str = "") -> None:
        """Upsert `rows` by (table, key) in one MERGE commit, retried on conflicts."""
        if not rows:
            return
        if self.pinned is not None:
            raise PermissionError("this lake is pinned (lake.at(...)) and read-only")
        from deltalake import CommitProperties
        self._ensure()
        src = pa.Table.from_pylist([{c: r.get(c) for c in MANIFEST_COLUMNS} for r in rows],
                                   schema=MANIFEST_SCHEMA)
        tables = sorted({r["table"] for r in rows})
        part = " AND t.table IN (" + ", ".join(map(_sql_str, tables)) + ")"
        props = CommitProperties(custom_metadata={"cryptolake": note or "bronze manifest upsert"},
                                 max_commit_retries=5)

        def merge():
            t = self.storage.open_table(MANIFEST_REL)
            checkpoint("manifest_upsert")
            if _partition_rows(t, tables) <= REWRITE_ROWS:
                # a small manifest: rewrite its partitions with the rows upserted in Arrow (one
                # predicate overwrite: a plain write, several times cheaper than a MERGE; a
                # concurrent writer to these partitions makes it conflict and be redone)
                from deltalake import write_deltalake
                cur = t.to_pyarrow_dataset(file_pruning_predicate=[("table", "in", tables)]).to_table()
                cur = cur.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA)
                cur = cur.filter(pc.is_in(cur["table"], pa.array(tables, pa.string())))
                rows = _upserted(cur, src)
                self._own = None
                write_deltalake(t, rows, mode="overwrite", predicate="table IN (" +
                                ", ".join(map(_sql_str, tables)) + ")", partition_by=["table"],
                                commit_properties=props)
                self._own = (tuple(tables), t.version(), rows)
                return
            self._own = None
            (t.merge(src, predicate="t.table = s.table AND t.key = s.key" + part, source_alias="s",
                     target_alias="t", commit_properties=props)
             .when_matched_update_all(predicate=_NOT_STALE).when_not_matched_insert_all().execute())
        self.storage.commit(merge, f"bronze manifest upsert of {len(rows)} rows")

    # ------------------------------------------------------------ manifest rows
    def _tables(self) -> list[str]:
        t = self._read()
        return sorted(set(t["table"].to_pylist()))

    def rows(self, table: str) -> dict[str, dict[str, dict]]:
        """Manifest rows of one table as symbol -> key -> row (read once, then kept in memory)."""
        if table not in self._rows:
            index: dict[str, dict[str, dict]] = {}
            for r in self._read(table).to_pylist():
                index.setdefault(r["symbol"], {})[r["key"]] = r
            self._rows[table] = index
        return self._rows[table]

    def refresh(self, table: str, symbol: str) -> list[dict]:
        """Re-read one symbol's rows from the manifest table (other writers' rows included),
        keeping this writer's uncommitted rows on top; returns them."""
        return self.refresh_symbols(table, [symbol])[symbol]

    def refresh_symbols(self, table: str, symbols: list[str]) -> dict[str, list[dict]]:
        """`refresh` of several symbols with ONE read of the manifest: symbol -> rows."""
        want = list(dict.fromkeys(symbols))
        data = self._read(table)
        if want and data.num_rows:
            data = data.filter(pc.is_in(data["symbol"], pa.array(want, pa.string())))
        fresh: dict[str, dict[str, dict]] = {s: {} for s in want}
        for r in data.to_pylist():
            fresh[r["symbol"]][r["key"]] = r
        for (tb, key), r in self._dirty.items():
            if tb == table and r["symbol"] in fresh:
                fresh[r["symbol"]][key] = r
        index = self.rows(table)
        for s, rows in fresh.items():
            index[s] = rows
        self._frame = None
        return {s: list(rows.values()) for s, rows in fresh.items()}

    def symbol_rows_all(self, table: str) -> list[dict]:
        """Every manifest row of one table."""
        return [r for sym in self.rows(table).values() for r in sym.values()]

    def symbol_rows(self, table: str, symbol: str) -> list[dict]:
        return list(self.rows(table).get(symbol, {}).values())

    def manifest(self) -> pd.DataFrame:
        """Every table's manifest as one DataFrame, sorted by key."""
        if self._frame is None:
            df = self._read().to_pandas()
            if len(df):
                cached = {(r["table"], r["key"]): r for t in self._rows.values()
                          for sym in t.values() for r in sym.values()}
                if cached:    # this writer's rows not yet committed win
                    keys = set(cached)
                    df = df[[(a, b) not in keys for a, b in zip(df["table"], df["key"])]]
                    df = pd.concat([df, pd.DataFrame(list(cached.values()), columns=list(MANIFEST_COLUMNS))])
            else:
                rows = [r for t in self._rows.values() for sym in t.values() for r in sym.values()]
                df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)) if rows else _empty_manifest()
            self._frame = df.astype(MANIFEST_COLUMNS).sort_values("key", ignore_index=True)
        return self._frame

    def upsert(self, rows: Iterable[dict], write: bool = True, note: str = "") -> None:
        """Insert or replace manifest rows by (table, key); `write` commits them now (one MERGE),
        otherwise they wait for `save()`."""
        rows = [dict(r) for r in rows]
        for r in rows:
            self.rows(r["table"]).setdefault(r["symbol"], {})[r["key"]] = r
            self._dirty[(r["table"], r["key"])] = r
        self._frame = None
        if write:
            self.save({r["table"] for r in rows}, note=note)

    def save(self, tables: Iterable[str] | None = None, note: str = "") -> None:
        """Commit the uncommitted rows of `tables` (all when None) in one MERGE."""
        tables = None if tables is None else set(tables)
        keys = [k for k in self._dirty if tables is None or k[0] in tables]
        if not keys:
            return
        self._merge([self._dirty[k] for k in keys], note)
        for k in keys:
            self._dirty.pop(k, None)

    def lookup(self, table: str, remote) -> dict | None:
        return self.rows(table).get(remote.key.symbol, {}).get(remote.key.key)

    def is_unchanged(self, remote, table: str) -> bool:
        """True when `remote` (an upstream file) matches what bronze already holds."""
        row = self.lookup(table, remote)
        if row is None or row["status"] not in (STORED, QUARANTINED):
            return False
        if row["status"] == QUARANTINED and remote.has_checksum and "no .CHECKSUM" in (row["reason"] or ""):
            return False          # Binance published the .CHECKSUM since: verify the file now
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
        return self._finish_store(fetched, table, status, len(fetched.data))

    def store_stream(self, archive, remote, table: str):
        """Stream one upstream file straight into bronze (bounded memory: 1 MiB chunks, hashed
        on the way) and verify it: `(Fetched, manifest row)`, the row None when the download
        failed (nothing is left behind). The bytes land under a temporary name beside their
        place and are moved once verified: to `bronze/<key>`, or to quarantine on a checksum
        mismatch, a missing .CHECKSUM or an unreadable zip."""
        from dataclasses import replace
        from ..sources.archive import _zip_problem
        key = remote.key
        tmp = self.storage.tmp_path(layout.bronze_path(key.key))
        try:
            with self.storage.fs.open(tmp, "wb") as dst:
                fetched = archive.fetch_to(remote, dst)
            checkpoint("fetch")
            if fetched.status == "ok":
                with self.storage.fs.open(tmp, "rb") as fh:
                    problem = _zip_problem(fh)
                if problem:
                    fetched = replace(fetched, status="quarantined", reason=problem)
        except BaseException:
            self._drop(tmp)
            raise
        if fetched.status == "failed":
            self._drop(tmp)
            return fetched, None
        status = STORED if fetched.status == "ok" else QUARANTINED
        where = layout.bronze_path if status == STORED else layout.quarantine_path
        self.storage.move_into(tmp, where(key.key))
        return fetched, self._finish_store(fetched, table, status, fetched.nbytes)

    def _drop(self, tmp: str) -> None:
        try:
            if self.storage.fs.exists(tmp):
                self.storage.fs.rm(tmp)
        except OSError:
            pass

    def _finish_store(self, fetched, table: str, status: str, nbytes: int) -> dict:
        """After the data file is in place: its .CHECKSUM, and the manifest row."""
        remote, key = fetched.remote, fetched.remote.key
        where = layout.bronze_path if status == STORED else layout.quarantine_path
        checkpoint("bronze_write")
        if fetched.checksum_text:
            self.storage.write_bytes(where(key.checksum_key), fetched.checksum_text.encode())
        if status == STORED:   # a file that was quarantined before and is good now
            self.storage.remove(layout.quarantine_path(key.key))
        row = self.row(remote, table, status=status, reason=fetched.reason or "",
                       sha256=fetched.sha256, nbytes=nbytes)
        return {**row, **self._republished(table, key.symbol, key.key, fetched.sha256)}

    def _republished(self, table: str, symbol: str, key: str, sha256: str | None) -> dict:
        """Old and new checksums when a stored file comes back with other bytes."""
        old = self.rows(table).get(symbol, {}).get(key)
        if old is None or old.get("status") != STORED or not old.get("sha256") or old["sha256"] == sha256:
            return {"previous_sha256": (old or {}).get("previous_sha256"),
                    "republished": (old or {}).get("republished") or 0}
        return {"previous_sha256": old["sha256"], "republished": (old.get("republished") or 0) + 1}

    def store_page(self, key: str, data: bytes, table: str, *, market: str, data_type: str,
                   symbol: str, interval: str | None, day) -> dict:
        """Keep one day of raw REST responses byte for byte at `bronze/<key>`; its manifest row
        (cadence `rest`, period the day)."""
        import hashlib
        self.storage.write_bytes(layout.bronze_path(key), data)
        sha = hashlib.sha256(data).hexdigest()
        day = str(day)
        return {"key": key, "table": table, "market": market, "data_type": data_type,
                "symbol": symbol, "interval": interval, "cadence": "rest", "period": day,
                "month": day[:7], "bytes": len(data), "sha256": sha, "upstream_size": None,
                "etag": None, "last_modified": None, "fetched_at": dt.datetime.now(dt.timezone.utc),
                "status": STORED, "reason": "", "in_silver": False, "rows": None,
                "first_time": None, "last_time": None,
                **self._republished(table, symbol, key, sha)}

    def quarantine(self, row: dict, reason: str) -> dict:
        """Move a stored file to quarantine (e.g. it verified but does not parse)."""
        key = row["key"]
        for rel in (key, key + ".CHECKSUM"):
            src = layout.bronze_path(rel)
            if self.storage.exists(src):      # moved, never read whole (files run to GBs)
                self.storage.move_into(self.storage.path(src), layout.quarantine_path(rel))
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

    def open(self, key: str):
        """A seekable binary file of a stored file (parse it in batches with `iter_parse`)."""
        return self.storage.open(layout.bronze_path(key))

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
            if row.status != STORED:          # quarantined, missing, ...: nothing to re-hash
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
