"""The deferred kernel calls of `add_indicators` (ops/indicators.py) and their fusion.

A `Job` is one indicator's kernel call on its input arrays, writing its output arrays; `fuse`
replaces each group of jobs that a fuser registered in `_fuse.FUSERS` covers (one job per
kernel of the registered tuple, all on the same input arrays) by one `Fused` job, which hands
every segment (rows a .. b-1: one symbol, or the whole series) to the fuser at once.
"""
from __future__ import annotations

from ._fuse import FUSERS


class Job:
    """One indicator's kernel call, deferred by `add_indicators` so that all of them run
    together: per symbol group on a many-symbol frame, side by side on one series."""
    __slots__ = ("kernel", "cols", "params", "outs", "nout")

    def __init__(self, kernel, cols, params, outs, nout):
        self.kernel, self.cols, self.params, self.outs, self.nout = kernel, cols, params, outs, nout

    def run(self, a, b: int | None = None) -> None:
        """Rows a .. b-1 (one symbol, or the whole series); `run(segments)` runs each
        (a, b) of a list in turn."""
        if b is None:
            for x, y in a:
                self.run(x, y)
        elif b > a:
            sl = tuple([o[a:b] for o in self.outs])
            self.kernel(*[c[a:b] for c in self.cols], *self.params,
                        sl[0] if self.nout == 1 else sl)


class Fused:
    """Jobs computed in one pass by the fuser registered for their kernels (`_fuse`)."""
    __slots__ = ("fuser", "jobs")

    def __init__(self, fuser, jobs):
        self.fuser, self.jobs = fuser, jobs

    def run(self, a, b: int | None = None) -> None:
        if b is None:
            for x, y in a:
                self.run(x, y)
        elif b > a:
            self.fuser(self.jobs, a, b)


def same_inputs(x: list, y: list) -> bool:
    return len(x) == len(y) and all(
        p is q or (p.shape == q.shape and p.strides == q.strides
                   and p.__array_interface__["data"][0] == q.__array_interface__["data"][0])
        for p, q in zip(x, y, strict=True))


def fuse(jobs: list) -> list:
    """The jobs with every group that a registered fuser covers (one job per kernel of its
    tuple, all on the same input arrays) replaced by one `Fused` job, in the place of the
    group's first job."""
    if len(jobs) < 2 or not FUSERS:
        return jobs
    out: list = list(jobs)
    for kernels, fuser in FUSERS.items():
        while True:
            group = find_group(out, kernels)
            if group is None:
                break
            first = min(out.index(j) for j in group)
            fused = Fused(fuser, group)
            out = [fused if k == first else j for k, j in enumerate(out)
                   if k == first or all(j is not g for g in group)]
    return out


def find_group(jobs: list, kernels: tuple):
    """One plain job per kernel of `kernels` (in that order), all on the same inputs."""
    plain = [j for j in jobs if isinstance(j, Job)]
    for lead in plain:
        if lead.kernel is not kernels[0]:
            continue
        group = [lead]
        for k in kernels[1:]:
            match = next((j for j in plain if j.kernel is k and all(j is not g for g in group)
                          and same_inputs(j.cols, lead.cols)), None)
            if match is None:
                break
            group.append(match)
        if len(group) == len(kernels):
            return group
    return None
