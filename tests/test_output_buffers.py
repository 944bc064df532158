"""ops/_buffers: big outputs reuse memory only when nothing refers to it any more."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cryptolake.accessors  # noqa: F401  (registers df.lake)
from cryptolake.ops import _buffers

N = 4096


@pytest.fixture
def small_pool(monkeypatch):
    """Pool outputs of N rows and more, in a pool of its own."""
    monkeypatch.setattr(_buffers, "MIN_ROWS", N)
    monkeypatch.setattr(_buffers, "_SLABS", [])
    monkeypatch.setenv("CRYPTOLAKE_OUTPUT_POOL_MB", "64")
    yield
    gc.collect()


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return np.shares_memory(a, b)


@pytest.mark.usefixtures("small_pool")
def test_a_dropped_output_is_reused_and_a_held_one_never_is():
    a = _buffers.empty(N)
    where = _addr(a)
    b = _buffers.empty(N)                       # a is alive: other memory
    assert not _overlaps(a, b)
    del a
    c = _buffers.empty(N)                       # a's slab is free again
    assert _addr(c) == where
    assert not _overlaps(b, c)
    assert _buffers.empty(N - 1).shape == (N - 1,)      # another size: its own slab


HOLDERS = {
    "slice": lambda a: a[5:100],
    "reshaped": lambda a: a.reshape(2, -1)[1],
    "series": lambda a: pd.Series(a),
    "frame column": lambda a: pd.DataFrame({"x": a}, copy=False)["x"],
    "arrow": lambda a: pa.array(a),
    "memoryview": lambda a: memoryview(a),
    "frombuffer": lambda a: np.frombuffer(memoryview(a), dtype=np.float64),
}


@pytest.mark.usefixtures("small_pool")
@pytest.mark.parametrize("kind", sorted(HOLDERS))
def test_anything_still_over_the_memory_keeps_it_out_of_reuse(kind):
    a = _buffers.empty(N)
    a[:] = 7.0
    holder = HOLDERS[kind](a)
    del a
    gc.collect()
    for _ in range(3):
        b = _buffers.empty(N)
        b[:] = -1.0
        got = np.asarray(holder if kind != "arrow" else holder.to_numpy())
        assert (got == 7.0).all(), kind
        del b


@pytest.mark.usefixtures("small_pool")
def test_indicator_outputs_held_by_the_user_keep_their_values():
    idx = pd.date_range("2024-01-01", periods=N + 50, freq="1min", tz="UTC")
    rng = np.random.default_rng(1)
    c = 100 + rng.standard_normal(len(idx)).cumsum()
    df = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                       "volume": rng.uniform(1, 2, len(idx))}, index=idx)
    first = df.lake.indicators(["sma", "rsi", "macd", "bbands"])
    keep = first[["sma_12", "macd"]].copy(deep=False)      # shares the outputs' memory
    want = keep.to_numpy(copy=True)
    del first
    gc.collect()
    for k in range(3):
        other = (df * (k + 2)).lake.indicators(["sma", "rsi", "macd", "bbands"])
        np.testing.assert_array_equal(keep.to_numpy(), want)
        assert not np.allclose(other["sma_12"].to_numpy()[20:], want[20:, 0])
        del other


@pytest.mark.usefixtures("small_pool")
def test_threads_never_get_the_same_memory_while_they_hold_it():
    errors: list = []
    live: dict = {}
    lock = threading.Lock()

    def work(t):
        try:
            mine = []
            for i in range(60):
                a = _buffers.empty(N)
                a[:] = t * 1000 + i
                with lock:
                    if any(_overlaps(a, b) for b in live.values()):
                        errors.append(("shared", t, i))
                    live[id(a)] = a
                mine.append(a)
                if i % 3:                       # drop some, keep others
                    old = mine.pop(0)
                    with lock:
                        del live[id(old)]
                    del old
            for k, a in enumerate(mine):
                if not (a == a[0]).all():
                    errors.append(("overwritten", t, k))
        except Exception as e:   # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_the_pool_keeps_no_more_than_its_limit(monkeypatch):
    monkeypatch.setattr(_buffers, "MIN_ROWS", N)
    monkeypatch.setattr(_buffers, "_SLABS", [])
    monkeypatch.setenv("CRYPTOLAKE_OUTPUT_POOL_MB", str(3 * N * 8 / (1 << 20)))
    held = [_buffers.empty(N) for _ in range(5)]          # two of them past the limit
    assert sum(s.nbytes for s in _buffers._SLABS) == 3 * N * 8
    del held
    big = _buffers.empty(2 * N)                           # free slabs make room
    assert sum(s.nbytes for s in _buffers._SLABS) <= 3 * N * 8
    del big
    assert _buffers.release() > 0 and _buffers._SLABS == []
    monkeypatch.setenv("CRYPTOLAKE_OUTPUT_POOL_MB", "0")
    a = _buffers.empty(N)
    assert _buffers._SLABS == [] and a.shape == (N,)


def test_every_indicator_writes_every_row_of_its_outputs(monkeypatch):
    """Reused memory holds the last call's values: a kernel must write every output row
    (leading NaNs included). Outputs pre-filled with two different sentinels must come out
    the same."""
    from cryptolake.ops.indicators import INDICATORS
    idx = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")
    rng = np.random.default_rng(5)
    c = 100 + rng.standard_normal(len(idx)).cumsum()
    df = pd.DataFrame({"open": c, "high": c + rng.uniform(0, 1, len(idx)),
                       "low": c - rng.uniform(0, 1, len(idx)), "close": c,
                       "volume": rng.uniform(0, 2, len(idx))}, index=idx)
    df.loc[df.index[100:110], "volume"] = 0.0
    runs, made = [], []

    def full(n, s):
        made.append(n)
        return np.full(n, s)

    for sentinel in (1.5e300, -7.25e-300):
        monkeypatch.setattr(_buffers, "empty", lambda n, s=sentinel: full(n, s))
        runs.append({name: df.lake.indicators([name]).drop(columns=df.columns)
                     for name in sorted(INDICATORS)})
    assert len(runs[0]) >= 25 and len(made) >= 2 * len(runs[0])
    for name in runs[0]:
        a, b = runs[0][name].to_numpy(), runs[1][name].to_numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)
