"""Completions processed per second with exactly-once triggering on the SQLite ledger.

Runs, in one go and on the same machine:
  * baseline: a bare SQLite StateStore transaction per completion (read one document, write
    it back) -- the floor cost of "one transaction per message";
  * the orchestrator in one process: every completion validated, resolved, recorded, the rule
    evaluated, and one trigger per partition published and marked;
  * the orchestrator in several processes on one ledger file, completions shuffled and each
    delivered twice (duplicates), checking exactly one trigger per partition.

Usage: python bench/bench_orchestrator.py [--partitions 300] [--processes 1 2 4]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def baseline(tmp: Path, n: int) -> float:
    store = SQLiteStateStore(tmp / "baseline.sqlite")

    def step(i):
        def fn(txn):
            doc = txn.get("bench", f"k{i % 500}") or {"n": 0}
            txn.set("bench", f"k{i % 500}", {"n": doc["n"] + 1})
        return fn

    t0 = time.perf_counter()
    for i in range(n):
        store.run_transaction(step(i))
    return n / (time.perf_counter() - t0)


def _worker(project, db, bus_path, msgs, barrier, out):
    orch = Orchestrator(project, SQLiteStateStore(db), CountingBus(bus_path), publish_grace=3600)
    barrier.wait(timeout=60)
    for m in msgs:
        orch.handle_completion(m)
    out.put(os.getpid())


def run_processes(project, tmp: Path, msgs: list[bytes], processes: int, tag: str) -> tuple[float, list[str]]:
    db, bus_path = str(tmp / f"ledger-{tag}.sqlite"), tmp / f"bus-{tag}.txt"
    SQLiteStateStore(db).close()
    if processes == 1:
        orch = Orchestrator(project, SQLiteStateStore(db), CountingBus(bus_path), publish_grace=3600)
        t0 = time.perf_counter()
        for m in msgs:
            orch.handle_completion(m)
        elapsed = time.perf_counter() - t0
    else:
        ctx = mp.get_context("fork")
        barrier, out = ctx.Barrier(processes + 1), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(project, db, bus_path, msgs[i::processes], barrier, out)) for i in range(processes)]
        for p in procs:
            p.start()
        barrier.wait(timeout=60)
        t0 = time.perf_counter()
        for _ in procs:
            out.get(timeout=600)
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join(timeout=60)
    ids = bus_path.read_text().split() if bus_path.exists() else []
    return elapsed, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partitions", type=int, default=300)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        project = write_project(tmp)
        unique = len(RAW) * args.partitions
        base = baseline(tmp, unique)
        print(f"baseline: bare SQLite read+write transaction        {base:9.0f} txn/s")
        results = {}
        for copies, label in [(1, "unique"), (2, "each delivered twice")]:
            msgs = messages(args.partitions, copies)
            for procs in args.processes:
                elapsed, ids = run_processes(project, tmp, msgs, procs, f"{label[:3]}-{procs}")
                exact = len(ids) == len(set(ids)) == args.partitions
                rate = len(msgs) / elapsed
                results[(label, procs)] = rate
                print(f"orchestrator, {procs} process(es), {label:<21} {rate:9.0f} completions/s "
                      f"({len(msgs)} msgs, {elapsed:6.2f}s, triggers {len(ids)}/{args.partitions}, "
                      f"exactly-once {'yes' if exact else 'NO'}; {rate / base:.2f}x baseline)")
                if not exact:
                    raise SystemExit("exactly-once violated")
        print(json.dumps({"baseline_txn_per_s": round(base), "cpu_count": os.cpu_count(),
                          "completions_per_s": {f"{k[0]}/{k[1]}p": round(v) for k, v in results.items()}}))


if __name__ == "__main__":
    main()
