"""Completions per second with exactly-once triggering on the SQLite ledger, against bare SQLite.

For 1, 2 and 4 processes on one ledger file, in interleaved rounds (min and median of
``--rounds`` >= 5), on the same machine:

  * baseline: plain ``sqlite3`` (no pipectl code), same file settings as the ledger (WAL,
    synchronous=NORMAL, busy timeout), one ``BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT`` per
    completion on a row of its partition -- the floor cost of "one transaction per message";
  * first deliveries: every completion once, shuffled, split over the processes: envelope
    validated, processor resolved, completion recorded in a ledger transaction, the rule
    evaluated, one trigger per partition published and marked;
  * redeliveries: the same completions again (reshuffled) on that ledger, timed apart
    because a duplicate is cheaper (recognised, nothing written) and would flatter the rate.

Exactly one trigger per partition is checked after both passes.

Usage: python bench/bench_orchestrator.py [--partitions 300] [--processes 1 2 4] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import machine  # noqa: E402
from framework.backends.sqlite_state import SQLiteStateStore  # noqa: E402
from framework.manifest import load_project  # noqa: E402
from framework.orchestrator import Orchestrator, encode, make_envelope  # noqa: E402

RAW = [f"r{i}" for i in range(1, 6)]


def write_project(root: Path):
    def proc(name, phase, inputs):
        return {"name": name, "phase": phase, "entity": "player", "inputs": inputs, "transform": {"sql": "x.sql"},
                "output": {"table": f"{name}_out", "columns": [{"name": "game_date", "type": "DATE"},
                                                              {"name": "player_lookup", "type": "STRING"}]}}
    doc = {"version": 1, "project": "bench", "partition": {"column": "game_date", "type": "DATE"},
           "entity_kinds": {"player": {"key": "player_lookup"}},
           "phases": [{"name": "raw", "order": 1, "dataset": "b_raw", "transition": {"completion_topic": "raw-complete",
                                                                 "trigger_topic": "analytics-trigger", "critical": ["r1"]}},
                      {"name": "analytics", "order": 2, "dataset": "b_an"}],
           "processors": [proc(n, "raw", []) for n in RAW] + [proc("a1", "analytics", RAW)]}
    (root / "x.sql").write_text("SELECT 1\n")
    (root / "processors.yaml").write_text(yaml.safe_dump(doc))
    (root / "topics.yaml").write_text(yaml.safe_dump({"version": 1, "topics": [
        {"name": "raw-complete", "contract": "completion"}, {"name": "analytics-trigger", "contract": "trigger"}]}))
    project, diags = load_project(root)
    assert project is not None and not diags.errors, [str(d) for d in diags.errors]
    return project


class CountingBus:
    """Appends trigger ids to a file (shared by processes)."""

    supports_push = False

    def __init__(self, path: Path):
        self.path = path

    def publish(self, topic, data, attributes=None):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (attributes["trigger_id"] + "\n").encode())
        finally:
            os.close(fd)
        return "1"


def messages(partitions: int, copies: int, seed: int = 7) -> list[bytes]:
    days = [f"d{i:05d}" for i in range(partitions)]
    msgs = [encode(make_envelope(processor_name=n, phase="raw", partition=d, status="success", execution_id=f"{d}-{n}",
                                 correlation_id=f"c-{d}", entities_changed={"player": [f"{n}-{k}" for k in range(20)]}))
            for d in days for n in RAW] * copies
    random.Random(seed).shuffle(msgs)
    return msgs


def _chunks(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def _timed_parallel(target, chunks: list[list], args: tuple) -> float:
    """Run ``target(chunk, *args)`` in one process per chunk (the caller itself for one);
    seconds from the common start to the last finish."""
    if len(chunks) == 1:
        t0 = time.perf_counter()
        target(chunks[0], *args)
        return time.perf_counter() - t0
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(len(chunks) + 1), ctx.Queue()

    def run(chunk):
        barrier.wait(timeout=60)
        target(chunk, *args)
        out.put(os.getpid())

    procs = [ctx.Process(target=run, args=(c,)) for c in chunks]
    for p in procs:
        p.start()
    barrier.wait(timeout=60)
    t0 = time.perf_counter()
    for _ in procs:
        out.get(timeout=600)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise SystemExit(f"worker failed with exit code {p.exitcode}")
    return elapsed


def _bare_sqlite(keys: list[str], db: str) -> None:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")
    for k in keys:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT n FROM ledger WHERE k = ?", (k,)).fetchone()
        conn.execute("UPDATE ledger SET n = ? WHERE k = ?", (row[0] + 1, k))
        conn.execute("COMMIT")
    conn.close()


def baseline(tmp: Path, keys: list[str], processes: int, tag: str) -> float:
    db = str(tmp / f"bare-{tag}.sqlite")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE ledger (k TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
    conn.executemany("INSERT INTO ledger VALUES (?, 0)", [(k,) for k in sorted(set(keys))])
    conn.close()
    return len(keys) / _timed_parallel(_bare_sqlite, _chunks(keys, processes), (db,))


def _deliver(msgs: list[bytes], project, db: str, bus_path: Path) -> None:
    orch = Orchestrator(project, SQLiteStateStore(db), CountingBus(bus_path), publish_grace=3600)
    for m in msgs:
        orch.handle_completion(m)


def orchestrator(project, tmp: Path, msgs: list[bytes], processes: int, tag: str, seed: int) -> tuple[float, float, list[str]]:
    """(first-delivery rate, redelivery rate, trigger ids published)."""
    db, bus_path = str(tmp / f"ledger-{tag}.sqlite"), tmp / f"bus-{tag}.txt"
    SQLiteStateStore(db).close()
    first = len(msgs) / _timed_parallel(_deliver, _chunks(msgs, processes), (project, db, bus_path))
    again = list(msgs)
    random.Random(seed).shuffle(again)
    dup = len(again) / _timed_parallel(_deliver, _chunks(again, processes), (project, db, bus_path))
    return first, dup, (bus_path.read_text().split() if bus_path.exists() else [])


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.0f} /s (best {max(values):6.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partitions", type=int, default=300)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        project = write_project(tmp)
        msgs = messages(args.partitions, 1)
        keys = [f"d{i % args.partitions:05d}" for i in range(len(msgs))]
        random.Random(3).shuffle(keys)
        rates: dict[tuple[str, int], list[float]] = {}
        for r in range(args.rounds):
            for procs in args.processes:
                tag = f"{r}-{procs}"
                rates.setdefault(("bare", procs), []).append(baseline(tmp, keys, procs, tag))
                first, dup, ids = orchestrator(project, tmp, msgs, procs, tag, seed=r)
                if not (len(ids) == len(set(ids)) == args.partitions):
                    raise SystemExit(f"exactly-once violated: {len(ids)} triggers ({len(set(ids))} distinct) for {args.partitions} partitions")
                rates.setdefault(("first", procs), []).append(first)
                rates.setdefault(("dup", procs), []).append(dup)
        print(f"machine: {machine()}; {len(msgs)} completions ({args.partitions} partitions x {len(RAW)}), "
              f"{args.rounds} interleaved rounds; rates: median (best); ratio of medians to bare SQLite with as many processes")
        for procs in args.processes:
            bare = statistics.median(rates[("bare", procs)])
            print(f"{procs} process(es): bare SQLite txn     {_stats(rates[('bare', procs)])}")
            for what, label in (("first", "first deliveries"), ("dup", "redeliveries    ")):
                med = statistics.median(rates[(what, procs)])
                print(f"{procs} process(es): {label}     {_stats(rates[(what, procs)])}  {med / bare:5.2f}x bare SQLite; "
                      f"exactly one trigger per partition: yes")
        print(json.dumps({"cpu_count": os.cpu_count(), "rounds": args.rounds,
                          "median_per_s": {f"{k[0]}/{k[1]}p": round(statistics.median(v)) for k, v in rates.items()}}))


if __name__ == "__main__":
    main()
