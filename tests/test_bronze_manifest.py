"""The manifest upsert: a small manifest partition is rewritten in Arrow, a big one MERGEd;
both must leave exactly the same rows (stale "in silver" marks ignored, new keys added)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake.layers import bronze as bz


def _row(table, key, sha, in_silver=False, status="stored"):
    r = {c: None for c in bz.MANIFEST_COLUMNS}
    r.update(key=key, table=table, symbol=key.split("/")[0], market="um", data_type="klines",
             month="2024-03", sha256=sha, status=status, in_silver=in_silver, reason="",
             fetched_at=dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc))
    return r


def _script(path) -> pd.DataFrame:
    lake = cl.Lake(str(path))
    b = lake.bronze
    b.upsert([_row("t1", "BTC/a", "s1"), _row("t1", "BTC/b", "s2"), _row("t2", "ETH/a", "e1")])
    b.upsert([_row("t1", "BTC/a", "s1", in_silver=True)])            # a mark for the same bytes
    b.upsert([_row("t1", "BTC/b", "s3")])                            # republished: new bytes
    b.upsert([_row("t1", "BTC/b", "s2", in_silver=True)])            # stale mark (old bytes)
    b.upsert([_row("t1", "BTC/c", None, in_silver=True, status="missing"),
              _row("t1", "SOL/a", "x", in_silver=True)])             # new keys, marked
    m = bz.Bronze(cl.Lake(str(path)).storage).manifest()
    return m.drop(columns=["fetched_at"]).sort_values(["table", "key"], ignore_index=True)


@pytest.mark.parametrize("rewrite_rows", [bz.REWRITE_ROWS, 0])
def test_upsert_keeps_every_row_and_ignores_stale_marks(tmp_path, monkeypatch, rewrite_rows):
    monkeypatch.setattr(bz, "REWRITE_ROWS", rewrite_rows)   # 0: every upsert is a MERGE
    m = _script(tmp_path / "lake")
    got = {(t, k): (s, i) for t, k, s, i in m[["table", "key", "sha256", "in_silver"]]
           .itertuples(index=False, name=None)}
    assert got == {("t1", "BTC/a"): ("s1", True), ("t1", "BTC/b"): ("s3", False),
                   ("t1", "BTC/c"): (pd.NA, True), ("t1", "SOL/a"): ("x", True),
                   ("t2", "ETH/a"): ("e1", False)}


def test_rewrite_and_merge_paths_leave_the_same_manifest(tmp_path, monkeypatch):
    small = _script(tmp_path / "a")
    monkeypatch.setattr(bz, "REWRITE_ROWS", 0)
    merged = _script(tmp_path / "b")
    pd.testing.assert_frame_equal(small, merged)


def _keys(rows) -> dict:
    return {r["key"]: (r["sha256"], r["in_silver"]) for r in rows}


def test_a_reread_after_our_own_rewrite_equals_a_fresh_read_and_sees_other_writers(tmp_path):
    """After its own rewrite commit a writer re-reads those partitions from memory while the
    table is still at that version; once anybody else commits, it reads the table again."""
    path = str(tmp_path / "lake")
    ours, theirs = cl.Lake(path).bronze, cl.Lake(path).bronze
    ours.upsert([_row("t1", "BTC/a", "s1"), _row("t1", "ETH/a", "e1"), _row("t2", "BTC/z", "z")])
    ours.upsert([_row("t1", "BTC/a", "s1", in_silver=True)])
    assert ours._own is not None                          # the rewrite path was taken
    fresh = bz.Bronze(cl.Lake(path).storage)
    for sym in ("BTC", "ETH"):
        assert _keys(ours.refresh("t1", sym)) == _keys(fresh.refresh("t1", sym))
    assert _keys(ours.refresh("t1", "BTC")) == {"BTC/a": ("s1", True)}
    theirs.upsert([_row("t1", "BTC/b", "s9")])            # another writer, same partition
    assert _keys(ours.refresh("t1", "BTC")) == {"BTC/a": ("s1", True), "BTC/b": ("s9", False)}
    theirs.upsert([_row("t2", "BTC/y", "y")])             # another writer, another partition
    assert set(_keys(ours.refresh("t1", "BTC"))) == {"BTC/a", "BTC/b"}
    assert set(_keys(ours.refresh("t2", "BTC"))) == {"BTC/z", "BTC/y"}
