"""Crash points for the fault-injection suite (tests/faults): a no-op unless asked.

`checkpoint(site)` is called at the points of an ingest where a crash matters (after a
fetch, between a bronze file and its .CHECKSUM, before and after a silver commit, before a
manifest upsert). With ``CRYPTOLAKE_FAULT_KILL_AT="<site>:<n>"`` the process SIGKILLs itself
the n-th time (1-based) it reaches `site` -- no cleanup, no finally blocks, as a power cut or
the OOM killer would. With ``CRYPTOLAKE_FAULT_COUNT=<path>`` every visit appends the site's
name to that file (to learn how often a run reaches each site before choosing kill points).
"""
from __future__ import annotations

import os
import signal
import threading

SITES = ("fetch", "bronze_write", "silver_commit", "silver_committed", "manifest_upsert")

_lock = threading.Lock()
_seen: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get("CRYPTOLAKE_FAULT_KILL_AT", "")
    if ":" not in spec:
        return None
    site, _, n = spec.rpartition(":")
    return (site, int(n)) if n.isdigit() else None


def checkpoint(site: str) -> None:
    """Count a visit to `site`; die here (SIGKILL) if this is the visit asked for."""
    count_to, target = os.environ.get("CRYPTOLAKE_FAULT_COUNT"), _target()
    if not count_to and target is None:
        return
    with _lock:
        _seen[site] = n = _seen.get(site, 0) + 1
        if count_to:
            with open(count_to, "a") as f:
                f.write(site + "\n")
        if target == (site, n):
            os.kill(os.getpid(), signal.SIGKILL)
