"""The step kernels behind `bar_step`'s ambiguity rule, against numpy, and the rule itself as
a property over random diffs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptolake.kernels import resample as kr
from cryptolake.ops._time import guess_step

segments_of_diffs = st.lists(st.lists(st.sampled_from([0, 1, 2, 3, 4, 6, 12, 60]), max_size=40),
                             min_size=1, max_size=4)


def _ticks(parts):
    t, seg = [], [0]
    for k, diffs in enumerate(parts):
        t.extend((1000 * k + np.r_[0, np.cumsum(diffs)]).tolist())
        seg.append(len(t))
    return np.array(t, np.int64), np.array(seg, np.int64)


def _case(parts):
    """(ticks, segments, the positive diffs inside segments) by numpy."""
    t, seg = _ticks(parts)
    d = np.concatenate([np.diff(t[a:b]) for a, b in zip(seg[:-1], seg[1:])] + [[]])
    d = d.astype(np.int64)
    return t, seg, d[d > 0]


@settings(max_examples=300, deadline=None)
@given(parts=segments_of_diffs)
def test_min_step_and_all_multiples_equal_numpy(parts):
    t, seg, d = _case(parts)
    assert kr.min_step(t, seg) == (d.min() if len(d) else 0)
    for step in (1, 2, 3, 5):
        assert kr.all_multiples(t, seg, step) == bool((d % step == 0).all())


@settings(max_examples=300, deadline=None)
@given(parts=segments_of_diffs)
def test_a_guess_is_the_unambiguous_mode(parts):
    t, seg, d = _case(parts)
    if not len(d):
        with pytest.raises(ValueError, match="fewer than two bars"):
            guess_step(t, seg, "s")
        return
    vals, counts = np.unique(d, return_counts=True)
    top = vals[counts == counts.max()]
    small = d.min()
    rest = counts[(vals != top.max()) & (vals != small)]
    smaller_divides = (small < top.max() and (d % small == 0).all()
                       and (d == small).sum() > (rest.max() if len(rest) else 0))
    tie = len(top) > 1 and 2 * counts.max() <= len(d)
    if smaller_divides or tie:
        with pytest.raises(ValueError, match="ambiguous.*pass freq="):
            guess_step(t, seg, "s")
    else:
        assert guess_step(t, seg, "s") == top[0]
