"""The ingest process SIGKILLed at seeded points of fetch, bronze write, silver commit and
manifest upsert (cryptolake.faults.checkpoint), then re-run: the lake is exact (0 lost,
0 doubled, no row of no file) and every bronze file verifies.

A dry run with CRYPTOLAKE_FAULT_COUNT learns how often each site is reached; a seeded RNG
picks the kill points (site, n) from those visits. CI runs 20 of them; the `faults_full`
sweep (make test-faults) runs every visit on a bigger archive and chains of two kills
before the healing run.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import queue
import random
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

from .conftest import check_and_record, compare, expected_rows, subprocess_env

TODAY = dt.date(2026, 11, 26)
TABLE = "um_klines_1h"
# A zygote: one process imports cryptolake once, then forks one child per ingest (the import
# costs seconds, the fork nothing). Each child is a real process that SIGKILLs itself at its
# kill point; the zygote reports the child's exit (-9 when killed). One JSON job per line.
ZYGOTE = """
import json, os, sys, datetime as dt, cryptolake as cl
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)              # the child's prints never mix with the zygote's answers
        try:
            os.environ.update(job["env"])
            lake = cl.Lake(job["lake"], archive=cl.BinanceArchive(job["archive"], retries=0))
            lake.ingest("um", "klines", None, interval="1h", start=job["start"], end=job["end"],
                        progress=False, today=dt.date(2026, 11, 26))
        except BaseException as e:
            print("child failed:", repr(e), file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print("@@rc", json.dumps(rc), flush=True)
"""


class Zygote:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=subprocess_env())

    def run(self, **job) -> int:
        self.p.stdin.write(json.dumps(job) + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            assert line, "the zygote died"
            if line.startswith("@@rc "):
                return json.loads(line[5:])

    def close(self):
        self.p.stdin.close()
        self.p.wait(30)


def build_archive(root, symbols, days, monthly=()):
    root.mkdir(parents=True, exist_ok=True)
    b = ArchiveBuilder(root.as_uri())
    keys = [b.klines("um", s, "1h", d, seed=i) for i, s in enumerate(symbols) for d in days]
    keys += [b.klines("um", s, "1h", m, seed=i) for i, s in enumerate(symbols) for m in monthly]
    return b, keys


def visits(zygote, tmp_path, archive_url, start, end) -> collections.Counter:
    """How often a clean ingest reaches each checkpoint."""
    log = tmp_path / "visits.txt"
    rc = zygote.run(lake=str(tmp_path / "dry-lake"), archive=archive_url, start=start, end=end,
                    env={"CRYPTOLAKE_FAULT_COUNT": str(log)})
    assert rc == 0, rc
    return collections.Counter(log.read_text().split())


def kill_points(counts: collections.Counter, n: int | None, seed: int) -> list[tuple[str, int]]:
    every = [(site, i) for site, c in sorted(counts.items()) for i in range(1, c + 1)]
    rng = random.Random(seed)
    if n is None or n >= len(every):
        return every
    return sorted(rng.sample(every, n))


def sweep(tmp_path, builder, keys, start, end, points: list[list[tuple[str, int]]], kind: str):
    """For each chain of kill points: kill an ingest at each point in turn (on one lake), check
    the wreck holds no doubled or foreign row, then re-run to heal and check the lake exact."""
    want = expected_rows(builder, keys)
    url = builder.url

    def wreck(zygote, i, chain):
        lake_dir = tmp_path / f"lake-{i}"
        for j, (site, n) in enumerate(chain):
            rc = zygote.run(lake=str(lake_dir), archive=url, start=start, end=end,
                            env={"CRYPTOLAKE_FAULT_KILL_AT": f"{site}:{n}"})
            # the first kill must land; a later one may find less work left and not be reached
            assert rc == -signal.SIGKILL or (j > 0 and rc == 0), f"{site}:{n}: exit {rc}"
        return lake_dir

    zygotes = [Zygote(), Zygote()]           # two killed ingests at a time (separate lakes)
    free: queue.Queue = queue.Queue()
    for z in zygotes:
        free.put(z)

    def on_a_free_zygote(ic):                # one thread per zygote at a time
        z = free.get()
        try:
            return wreck(z, *ic)
        finally:
            free.put(z)
    try:
        with ThreadPoolExecutor(2) as ex:
            lakes = list(ex.map(on_a_free_zygote, enumerate(points)))
    finally:
        for z in zygotes:
            z.close()
    failures = []
    for chain, lake_dir in zip(points, lakes):
        lake = cl.Lake(str(lake_dir), archive=cl.BinanceArchive(url))
        after_kill = compare(lake, TABLE, want)
        assert after_kill["doubled"] == after_kill["extra"] == after_kill["wrong"] == 0, (chain, after_kill)
        r = lake.ingest("um", "klines", None, interval="1h", start=start, end=end, progress=False,
                        today=TODAY)
        healed = cl.Lake(str(lake_dir))
        site = "+".join(s for s, _ in chain)
        try:
            check_and_record(f"SIGKILL at {site}", healed, TABLE, want, healed=r.ok)
        except AssertionError as e:
            failures.append((chain, str(e)))
            continue
        v = healed.bronze.verify()
        assert (v["status"] == "ok").all(), (chain, v[v["status"] != "ok"])
        m = healed.bronze.files()
        assert len(m) == len(keys) and m["in_silver"].all() and m["key"].is_unique, (chain, m)
        stats = healed.silver[TABLE].partition_stats()
        assert int(stats["rows"].sum()) == len(want), (chain, stats)
    assert not failures, failures


DAYS = ["2024-03-30", "2024-03-31", "2024-04-01", "2024-04-02"]


def test_twenty_seeded_kill_points_then_a_rerun_heals(tmp_path):
    b, keys = build_archive(tmp_path / "archive", ["AAAUSDT", "BBBUSDT"], DAYS)
    z = Zygote()
    counts = visits(z, tmp_path, b.url, DAYS[0], DAYS[-1])
    z.close()
    assert set(counts) == {"fetch", "bronze_write", "silver_commit", "silver_committed",
                           "manifest_upsert"}, counts
    points = kill_points(counts, 20, seed=11)
    assert len(points) == 20
    print("kill points:", json.dumps(points))
    sweep(tmp_path, b, keys, DAYS[0], DAYS[-1], [[p] for p in points], "kill")


@pytest.mark.faults_full
def test_full_sweep_every_kill_point_and_chains_of_two(tmp_path):
    """Every visit of every site on 3 symbols (a closed month's monthly file plus daily files
    across the month end), then 20 seeded chains of two kills before the healing run."""
    days = ["2024-04-01", "2024-04-02", "2024-04-03"]
    b, keys = build_archive(tmp_path / "archive", ["AAAUSDT", "BBBUSDT", "CCCUSDT"], days,
                            monthly=["2024-03"])
    z = Zygote()
    counts = visits(z, tmp_path, b.url, "2024-03-01", days[-1])
    z.close()
    points = kill_points(counts, None, seed=0)
    rng = random.Random(12)
    chains = [[p] for p in points] + [sorted(rng.sample(points, 2)) for _ in range(20)]
    sweep(tmp_path, b, keys, "2024-03-01", days[-1], chains, "kill-full")
