"""Firestore ledger under concurrent completions (needs the emulator: bash .ci/emulators.sh start).

21 processors of one phase complete at the same moment (one thread each) for P partitions at
once. Measured on the Firestore emulator, in the same run, for two designs:

* pipectl: the real :class:`framework.orchestrator.Orchestrator` on
  :class:`framework.backends.firestore.FirestoreStateStore`: one ledger document per
  (transition, partition), one immutable document per completion, one per trigger.
* single document: every completion of every partition in ONE document (read it, add the
  completion, decide the trigger, write it back, in a transaction): the hot-document design.

Printed per design and partition count: completions/s, time from the first completion to the
last trigger, transaction retries, triggers published (must equal P: exactly one each).

    python bench/bench_firestore.py [--processors 21] [--partitions 1 4] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.backends import gcp_emulators  # noqa: E402
from framework.backends.firestore import FirestoreStateStore  # noqa: E402

PROJECT_ID = gcp_emulators.EMULATOR_PROJECT


def write_project(root: Path, processors: int) -> Path:
    """A two-phase project: `raw` with N processors (rule: all) -> `analytics`."""
    lines = ["version: 1", "project: bench", "partition: {column: game_date, type: DATE}",
             "entity_kinds:", "  player: {key: player_lookup, type: STRING}",
             "sources:", "  - name: landing", "    table: landing.rows", "    entity: player", "    columns:",
             "      - {name: game_date, type: DATE, mode: REQUIRED}", "      - {name: player_lookup, type: STRING, mode: REQUIRED}",
             "phases:",
             "  - name: raw", "    order: 2", "    dataset: nba_raw", "    transition:",
             "      completion_topic: raw-complete", "      trigger_topic: analytics-trigger", "      rule: all",
             "  - name: analytics", "    order: 3", "    dataset: nba_analytics", "processors:"]
    names = [f"raw_p{i:02d}" for i in range(processors)] + ["summary"]
    (root / "sql").mkdir(parents=True, exist_ok=True)
    for name in names:
        phase = "analytics" if name == "summary" else "raw"
        inputs = "[raw_p00]" if name == "summary" else "[{source: landing}]"
        lines += [f"  - name: {name}", f"    phase: {phase}", "    entity: player", f"    inputs: {inputs}",
                  "    output:", f"      table: {name}", "      columns:",
                  "        - {name: game_date, type: DATE, mode: REQUIRED}", "        - {name: player_lookup, type: STRING, mode: REQUIRED}",
                  f"    transform: {{sql: sql/{name}.sql}}"]
        src = "{{ ref('raw_p00') }}" if name == "summary" else "{{ source('landing') }}"
        (root / "sql" / f"{name}.sql").write_text(f"SELECT game_date, player_lookup FROM {src} t WHERE t.game_date = {{{{ partition }}}}\n")
    topics = ["version: 1", "topics:",
              "  - name: raw-complete", "    contract: completion", "    producers: [phase:raw]", "    consumers: [orchestrator:raw]",
              "    dead_letter_topic: dead-letter",
              "    subscriptions: [{name: raw-complete-orch, consumer: 'orchestrator:raw'}]",
              "  - name: analytics-trigger", "    contract: trigger", "    producers: [orchestrator:raw]", "    consumers: [phase:analytics]",
              "    dead_letter_topic: dead-letter",
              "    subscriptions: [{name: analytics-trigger-sub, consumer: 'phase:analytics'}]",
              "  - name: dead-letter", "    contract: dead_letter", "    consumers: [external:ops]"]
    (root / "processors.yaml").write_text("\n".join(lines) + "\n")
    (root / "topics.yaml").write_text("\n".join(topics) + "\n")
    return root


class RecordingBus:
    """Publishes into a list with the time of each publish (the bench measures the ledger)."""

    supports_push = False

    def __init__(self) -> None:
        self.published: list[tuple[float, str, bytes]] = []
        self.lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: Any = None) -> str:
        with self.lock:
            self.published.append((time.perf_counter(), topic, data))
            return str(len(self.published))

    def close(self) -> None:
        pass


def _store(concurrency: str) -> FirestoreStateStore:
    return FirestoreStateStore(PROJECT_ID, prefix=f"bench{uuid.uuid4().hex[:8]}_", concurrency=concurrency)


def _redeliver(handle: Callable[[], Any], counter: list[int]) -> Any:
    """Deliver until handled, as Pub/Sub redelivers a message whose handler failed (here: a
    transaction still contended after its attempts). Counts the redeliveries."""
    from framework.errors import BackendError

    while True:
        try:
            return handle()
        except BackendError:
            counter[0] += 1
            time.sleep(random.uniform(0.5, 1.5))


def run_pipectl(project: Any, processors: list[str], partitions: list[str], concurrency: str) -> dict[str, Any]:
    from framework.orchestrator import Orchestrator, encode, make_envelope

    store = _store(concurrency)
    bus = RecordingBus()
    orch = Orchestrator(project, store, bus)
    jobs = [encode(make_envelope(kind="completion", processor_name=p, phase="raw", partition=d, partition_column="game_date",
                                 status="success", record_count=1, entities_changed={"player": [f"{p}-x"]}))
            for d in partitions for p in processors]
    redeliveries = [0]

    def deliver(job: bytes) -> Any:
        return _redeliver(lambda: orch.handle_completion(job), redeliveries)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        decisions = list(pool.map(deliver, jobs))
    end = time.perf_counter()
    store.close()
    triggers = [t for t in bus.published if t[1] == "analytics-trigger"]
    return {"seconds": end - start, "to_last_trigger": (max(t[0] for t in triggers) - start) if triggers else None,
            "triggers": len(triggers), "attempts": store.stats["attempts"], "retries": store.stats["retries"],
            "redeliveries": redeliveries[0], "published_by": sum(1 for d in decisions if d.published)}


def run_single_document(processors: list[str], partitions: list[str], concurrency: str) -> dict[str, Any]:
    """Baseline: all completions of all partitions in one document."""
    store = _store(concurrency)
    bus = RecordingBus()
    expected = set(processors)

    def complete(job: tuple[str, str]) -> None:
        processor, partition = job

        def txn_fn(txn: Any) -> bool:
            doc = txn.get("ledger", "all") or {"partitions": {}}
            part = doc["partitions"].setdefault(partition, {"completions": {}, "triggered": False})
            part["completions"][processor] = {"status": "success", "at": time.time()}
            fire = not part["triggered"] and expected <= set(part["completions"])
            part["triggered"] = part["triggered"] or fire
            txn.set("ledger", "all", doc)
            return fire

        if store.run_transaction(txn_fn):
            bus.publish("analytics-trigger", json.dumps({"partition": partition}).encode())

    jobs = [(p, d) for d in partitions for p in processors]
    redeliveries = [0]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        list(pool.map(lambda job: _redeliver(lambda: complete(job), redeliveries), jobs))
    end = time.perf_counter()
    store.close()
    triggers = bus.published
    return {"seconds": end - start, "to_last_trigger": (max(t[0] for t in triggers) - start) if triggers else None,
            "triggers": len(triggers), "attempts": store.stats["attempts"], "retries": store.stats["retries"],
            "redeliveries": redeliveries[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processors", type=int, default=21)
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", nargs="+", default=["optimistic"], choices=["optimistic", "pessimistic"],
                        help="Firestore transaction modes to measure (pessimistic is slow on the emulator: ~2 s lock timeouts)")
    args = parser.parse_args()
    gcp_emulators.use_emulators()
    missing = gcp_emulators.down(("firestore",))
    if missing:
        print(gcp_emulators.explain_down(missing), file=sys.stderr)
        return 1
    from framework.project import load

    with tempfile.TemporaryDirectory() as tmp:
        project = load(write_project(Path(tmp), args.processors))
    processors = [f"raw_p{i:02d}" for i in range(args.processors)]
    print(f"Firestore emulator {gcp_emulators.endpoint('firestore').base_url}: {args.processors} processors completing "
          f"concurrently per partition (one thread per completion), repeat {args.repeat}")
    print(f"{'design':<18}{'txn mode':<13}{'partitions':>10}{'completions/s':>15}{'to last trigger s':>19}{'attempts':>10}{'redeliv.':>10}{'triggers':>10}")
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for mode in args.concurrency:
        for n_parts in args.partitions:
            for rep in range(args.repeat):
                partitions = [f"2031-{1 + (rep % 12):02d}-{1 + i:02d}" for i in range(n_parts)]
                for design, fn in (("pipectl", lambda: run_pipectl(project, processors, partitions, mode)),
                                   ("single-document", lambda: run_single_document(processors, partitions, mode))):
                    r = fn()
                    r["completions_per_s"] = len(processors) * n_parts / r["seconds"]
                    results.setdefault((design, mode, n_parts), []).append(r)
                    ok = "OK" if r["triggers"] == n_parts else f"WRONG (expected {n_parts})"
                    print(f"{design:<18}{mode:<13}{n_parts:>10}{r['completions_per_s']:>15.2f}"
                          f"{r['to_last_trigger'] or float('nan'):>19.2f}{r['attempts']:>10}{r['redeliveries']:>10}{r['triggers']:>8} {ok}", flush=True)
    print("\nratio pipectl vs single-document (median over repeats):")
    for mode in args.concurrency:
        for n_parts in args.partitions:
            p = results[("pipectl", mode, n_parts)]
            s = results[("single-document", mode, n_parts)]
            tp = statistics.median(r["to_last_trigger"] or float("nan") for r in p)
            ts = statistics.median(r["to_last_trigger"] or float("nan") for r in s)
            cp = statistics.median(r["completions_per_s"] for r in p)
            cs = statistics.median(r["completions_per_s"] for r in s)
            print(f"  {mode}, {n_parts} partition(s): completions/s {cp:.1f} vs {cs:.1f} (x{cp / cs:.2f}); "
                  f"time to last trigger {tp:.2f}s vs {ts:.2f}s (x{ts / tp:.2f} faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
