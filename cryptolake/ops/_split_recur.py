"""Splitters for recurrences: speculate from a guessed state, then verify (see `_split`)."""
from __future__ import annotations
