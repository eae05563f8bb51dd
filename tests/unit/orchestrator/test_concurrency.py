"""Many processes deliver the completions of a phase, with duplicates and in random order,
against one SQLite ledger: exactly one trigger per partition, every time."""
from __future__ import annotations

import json
import multiprocessing as mp
import random

import pytest

from orch_support import RAW, FileBus, completion, write_project
from framework.backends.sqlite_state import SQLiteStateStore
from framework.orchestrator import Orchestrator
from framework.alerts import MemorySink
from framework.orchestrator.ledger import trigger_id

PROCESSES = 8
PARTITIONS = 20  # 20 independent runs of the race, interleaved
COPIES = 3  # every completion delivered 3 times


def _worker(project, db, bus_path, messages, barrier, out_path):
    store = SQLiteStateStore(db)
    orch = Orchestrator(project, store, FileBus(bus_path), alerts=MemorySink(), publish_grace=3600)
    barrier.wait(timeout=30)
    actions = [orch.handle_completion(m).action for m in messages]
    with open(out_path, "w") as fh:
        json.dump(actions, fh)


def _race(tmp_path, seed, partitions=PARTITIONS):
    rng = random.Random(seed)
    project = write_project(tmp_path)
    db, bus_path = str(tmp_path / f"ledger-{seed}.sqlite"), tmp_path / f"bus-{seed}.jsonl"
    SQLiteStateStore(db).close()
    days = [f"2026-12-{d:02d}" for d in range(1, partitions + 1)]
    messages = [completion(n, partition=day, execution_id=f"{day}-{n}", entities_changed={"player": [n]})
                for day in days for n in RAW] * COPIES
    rng.shuffle(messages)
    shares = [messages[i::PROCESSES] for i in range(PROCESSES)]
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    outs = [tmp_path / f"out-{seed}-{i}.json" for i in range(PROCESSES)]
    procs = [ctx.Process(target=_worker, args=(project, db, bus_path, shares[i], barrier, outs[i])) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0, f"worker exited with {p.exitcode}"
    actions = [a for o in outs for a in json.loads(o.read_text())]
    return project, days, actions, FileBus(bus_path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exactly_one_trigger_per_partition_under_concurrent_duplicated_delivery(tmp_path, seed):
    project, days, actions, bus = _race(tmp_path, seed)
    transition = project.phase("raw").transition
    ids = bus.trigger_ids("analytics-trigger")
    assert sorted(ids) == sorted(trigger_id(transition, d, 1) for d in days)  # one each, none twice
    assert actions.count("triggered") == PARTITIONS
    assert actions.count("duplicate") == PARTITIONS * len(RAW) * (COPIES - 1)
    for env in bus.triggers():
        assert sorted(env["entities_changed"]["player"]) == RAW


@pytest.mark.parametrize("seed", range(20))
def test_exactly_one_trigger_when_eight_processes_race_on_one_partition(tmp_path, seed):
    project, days, actions, bus = _race(tmp_path, 100 + seed, partitions=1)
    assert bus.trigger_ids() == [trigger_id(project.phase("raw").transition, days[0], 1)]
    assert actions.count("triggered") == 1 and actions.count("recorded") == len(RAW) - 1
