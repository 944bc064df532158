"""Splitters for window kernels that restart on fixed blocks of rows (see `_split`)."""
from __future__ import annotations
