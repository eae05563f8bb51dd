"""The orchestrator on the Firestore ledger: no lost and no double trigger when every
processor of a phase completes at the same moment (with duplicates), for several partitions
at once, in both transaction modes."""
from __future__ import annotations

import json
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from framework.backends.firestore import FirestoreStateStore
from framework.backends.gcp_emulators import EMULATOR_PROJECT
from framework.project import load
from framework.orchestrator import Orchestrator, encode, make_envelope

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from bench_firestore import write_project  # noqa: E402  (the bench's two-phase fixture project)


class Bus:
    supports_push = False

    def __init__(self) -> None:
        self.published: list[dict] = []
        self.lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: dict | None = None) -> str:
        with self.lock:
            self.published.append(json.loads(data))
            return str(len(self.published))

    def close(self) -> None:
        pass


@pytest.mark.parametrize("concurrency,processors,partitions", [("optimistic", 12, 3), ("pessimistic", 4, 2)])
def test_exactly_one_trigger_per_partition_under_concurrent_completions(tmp_path: Path, uid: str, concurrency: str,
                                                                       processors: int, partitions: int) -> None:
    project = load(write_project(tmp_path, processors))
    store = FirestoreStateStore(EMULATOR_PROJECT, prefix=f"{uid}_", concurrency=concurrency)
    bus = Bus()
    orch = Orchestrator(project, store, bus)
    names = [f"raw_p{i:02d}" for i in range(processors)]
    days = [f"2032-03-{d + 1:02d}" for d in range(partitions)]
    envs = [make_envelope(kind="completion", processor_name=p, phase="raw", partition=d, partition_column="game_date",
                          status="success", record_count=1, entities_changed={"player": [f"{p}-{d}"]})
            for d in days for p in names]
    deliveries = envs + random.Random(7).sample(envs, len(envs) // 3)  # duplicates (redeliveries)
    random.Random(uid).shuffle(deliveries)
    try:
        with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
            decisions = list(pool.map(lambda env: orch.handle_completion(encode(env)), deliveries))
    finally:
        store.close()
    triggers = sorted(bus.published, key=lambda e: e["partition"])
    assert [t["partition"] for t in triggers] == days  # one per partition, none lost, none doubled
    for trig in triggers:
        assert sorted(trig["entities_changed"]["player"]) == sorted(f"{p}-{trig['partition']}" for p in names)
    assert sum(1 for d in decisions if d.action == "duplicate") == len(envs) // 3  # each extra delivery changed nothing
