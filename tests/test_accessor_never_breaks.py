"""`df.lake` never breaks a DataFrame: construction never raises, so `dir(df)`, `hasattr` and
Tab completion work on every frame; the verbs validate when called (issue 6, defect 1)."""
from __future__ import annotations

import os
import queue
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cryptolake  # noqa: F401  (registers df.lake)

REPO = Path(__file__).resolve().parents[1]


def _ohlc(idx):
    n = len(idx)
    c = np.linspace(10.0, 11.0, n)
    return pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                         "volume": np.ones(n)}, index=idx)


FRAMES = {
    "range_index": lambda: pd.DataFrame({"a": [1, 2, 3]}),
    "naive_index": lambda: _ohlc(pd.date_range("2024-01-01", periods=5, freq="1h")),
    "no_ohlc_columns": lambda: pd.DataFrame(
        {"x": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2, freq="1h", tz="UTC")),
    "empty": lambda: pd.DataFrame(),
    "multiindex_without_times": lambda: pd.DataFrame(
        {"v": [1, 2, 3]}, index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)])),
    "unsorted_index": lambda: _ohlc(pd.date_range("2024-01-01", periods=5, freq="1h",
                                                  tz="UTC")[::-1]),
    "string_index": lambda: pd.DataFrame({"open": [1.0]}, index=["x"]),
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_dir_and_hasattr_never_raise(name):
    df = FRAMES[name]()
    names = dir(df)                     # what Jupyter's completer calls on Tab
    assert "lake" in names
    assert hasattr(df, "lake")
    assert "resample" in dir(df.lake) and "gaps" in dir(df.lake)
    assert "rsi" in dir(df.lake.indicators)


@pytest.mark.parametrize("name", ["range_index", "naive_index", "multiindex_without_times",
                                  "unsorted_index", "string_index"])
def test_verbs_still_say_what_is_wrong(name):
    df = FRAMES[name]()
    for verb in (lambda: df.lake.resample("1h"), lambda: df.lake.gaps(),
                 lambda: df.lake.fill_gaps(), lambda: df.lake.plot(),
                 lambda: df.lake.indicators.rsi()):
        with pytest.raises(ValueError, match="DatetimeIndex|naive|sort_index|missing column"):
            verb()


def test_tab_completion_in_a_real_kernel():
    """Start a python3 kernel (ipykernel), import cryptolake, and ask it to complete `df.`."""
    jc = pytest.importorskip("jupyter_client")
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    km = jc.KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        code = ("import cryptolake, pandas as pd; df = pd.DataFrame({'a': [1]}); "
                "assert cryptolake.__file__.startswith(%r)" % str(REPO))
        reply = kc.execute_interactive(code, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        msg_id = kc.complete("df.", 3)
        while True:
            try:
                msg = kc.get_shell_msg(timeout=60)
            except queue.Empty:
                pytest.fail("no complete_reply from the kernel")
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        assert content["status"] == "ok", content
        matches = {m.split(".")[-1] for m in content["matches"]}
        assert {"a", "lake"} <= matches, sorted(matches)[:20]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
