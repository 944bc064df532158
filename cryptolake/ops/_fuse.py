"""Indicators that share inputs, computed in one pass inside `add_indicators`.

A fuser is registered for a tuple of kernels (e.g. `(K.rolling_mean, K.bbands)`): when the
jobs that `add_indicators` collected hold one job for each of those kernels on the same
input columns, `_execute` (ops/indicators.py) runs them as one job through the fuser instead
of one after the other. The fuser computes one whole segment (one symbol, or the whole
series) of every job it was given:

    fuser(jobs, a, b)   # jobs in the registered kernel order; rows a .. b-1 of each

where each job has `.cols` (input arrays, shared), `.params` (its kernel's parameters) and
`.outs` (its output arrays, written in place at rows a .. b-1). A fuser must write exactly
what the separate kernel calls write, bit for bit (tests compare them).
"""
from __future__ import annotations

from typing import Callable

# (kernel, kernel, ...) -> fuser(jobs, a, b)
FUSERS: dict[tuple[Callable, ...], Callable] = {}


def fuses(*kernels: Callable) -> Callable:
    """Register the decorated function as the fuser of these kernels (in this order)."""
    def register(fn: Callable) -> Callable:
        FUSERS[tuple(kernels)] = fn
        return fn
    return register
