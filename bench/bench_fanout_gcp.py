"""Where the predictions fan-out's time goes on the emulators (needs: bash .ci/emulators.sh start).

A full example day on the emulators took 384 s, 312 s of it in the predictions fan-out
(``player_prop_predictions``: one task per player, 4 workers). This bench takes the fan-out
apart, each part measured in the same run, rounds interleaved, min and median printed:

1. publish the N task messages on Pub/Sub: one at a time waiting for each message id
   (pipectl before this change) vs ``publish_many`` (every message submitted, then the ids
   awaited: the client batches them);
2. the task documents on Firestore: ``TaskTracker.create`` plus ``started``/``done`` per
   entity, with 4 worker threads;
3. the per-entity warehouse work on the BigQuery emulator: the real predictions merge
   (``runner_io.transform_and_write`` for one player; its input tables exist and are empty,
   so the jobs are the real ones and only their data is small). Before: merge + a row count
   per task, one task at a time (the runner's lock). Now: the merge alone in 4 threads (no
   lock for ``concurrent_jobs = True`` warehouses: BigQuery), one row count at the end;
4. the whole ``run_fanout`` as ``pipectl run`` now runs it (4 workers, one final count).

    python bench/bench_fanout_gcp.py [--entities 40] [--repeat 2]

Prints per part: total seconds (min / median over rounds), per entity, and BigQuery jobs per
entity; then the projection for 450 players.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from framework.backends import gcp_emulators  # noqa: E402

gcp_emulators.use_emulators()

from framework.backends.bigquery import BigQueryWarehouse  # noqa: E402
from framework.backends.firestore import FirestoreStateStore  # noqa: E402
from framework.backends.protocols import SubscriptionConfig, TopicConfig  # noqa: E402
from framework.backends.pubsub import PubSubBus  # noqa: E402
from framework.project import load  # noqa: E402
from framework.plan.resources import framework_tables  # noqa: E402
from framework.run import runner_io as io  # noqa: E402
from framework.run.fanout import TaskTracker, run_fanout  # noqa: E402
from projects import copy_example  # noqa: E402

PROC = "player_prop_predictions"
DATE = "2025-01-15"


class Counting:
    """Counts warehouse jobs (query / execute_script) per thread-safe counter."""

    def __init__(self, wh: Any):
        self.wh, self.jobs, self._lock = wh, 0, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.wh, name)
        if name in ("query", "execute_script", "insert_rows"):
            def counted(*a: Any, **k: Any) -> Any:
                with self._lock:
                    self.jobs += 1
                return attr(*a, **k)
            return counted
        return attr


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    missing = gcp_emulators.down()
    if missing:
        sys.exit(gcp_emulators.explain_down(missing))
    uid = uuid.uuid4().hex[:6]
    gcp = f"bench-fanout-{uid}"
    root = copy_example(Path(tempfile.mkdtemp()) / "p", templates=True)
    project = load(root)
    proc = project.processors[PROC]
    wh = BigQueryWarehouse(gcp, timeout=120)
    bus = PubSubBus(gcp)
    store = FirestoreStateStore(gcp, prefix=f"b{uid}_")
    tables = {t.fqn: t for t in framework_tables(project)}
    for p in project.processors.values():
        if p.output is not None:
            tables[p.output.fqn] = p.output
    for s in project.sources.values():
        tables[s.table.fqn] = s.table
    for ds in sorted({t.dataset for t in tables.values()}):
        wh.create_dataset(ds)
    for t in tables.values():
        wh.create_table(t)
    bus.create_topic(TopicConfig("tasks"))
    bus.create_subscription(SubscriptionConfig("tasks-workers", "tasks", ack_deadline_seconds=120, max_delivery_attempts=5))
    entities = [f"player{i:03d}" for i in range(args.entities)]
    n = len(entities)
    results: dict[str, list[float]] = {}
    jobs_per_entity = 0.0

    def drain() -> None:  # the publish parts' messages are not tasks: consume them before run_fanout
        got = 0
        while got < n:
            batch = bus.pull("tasks-workers", max_messages=100)
            if batch:
                bus.ack("tasks-workers", [m.ack_id for m in batch])
            got += len(batch)

    def publish_one_by_one() -> None:
        for e in entities:
            bus.publish("tasks", e.encode(), {"run_id": "x"})

    def publish_many() -> None:
        bus.publish_many("tasks", [(e.encode(), {"run_id": "x"}) for e in entities])

    def firestore_tasks() -> None:
        tracker = TaskTracker(store, f"run-{uuid.uuid4().hex[:6]}")
        tracker.create(entities, PROC, DATE)

        def one(e: str) -> None:
            tracker.started(e, 1)
            tracker.done(e, 1, 1)

        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(one, entities))
        tracker.purge()

    counting = Counting(wh)

    def merge(e: str) -> None:  # before: the merge, then a row count per task
        io.transform_and_write(counting, project, proc, DATE, [e], "bench")

    def merge_only(e: str) -> None:  # now: the merge; the runner counts all entities once at the end
        io.transform_and_write(counting, project, proc, DATE, [e], "bench", count=False)

    lock = threading.Lock()

    def bq_serial() -> None:  # what the runner's lock did: one entity's jobs at a time
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda e: _locked(lock, merge, e), entities))

    def bq_concurrent() -> None:
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(merge_only, entities))
        io.count_entity_rows(wh, project, proc, DATE, entities)

    def whole_fanout() -> None:
        run_fanout(bus, store, run_id=f"run-{uuid.uuid4().hex[:6]}", processor=PROC, partition=DATE, entities=entities,
                   task_topic="tasks", subscription="tasks-workers",
                   execute=lambda e, attempt: io.transform_and_write(wh, project, proc, DATE, [e], "bench", count=False),
                   workers=args.workers, max_attempts=3, timeout=3600)
        io.count_entity_rows(wh, project, proc, DATE, entities)

    parts = [("publish one by one", publish_one_by_one), ("publish_many", publish_many),
             ("firestore task docs (4 threads)", firestore_tasks),
             ("bigquery merge + count per task, serialised (before)", bq_serial),
             ("bigquery merge, 4 threads, one count (now)", bq_concurrent),
             ("run_fanout (4 workers)", whole_fanout)]
    try:
        for _ in range(args.repeat):  # interleaved rounds
            for name, fn in parts:
                before = counting.jobs
                results.setdefault(name, []).append(timed(fn))
                if name.startswith("bigquery merge + count"):
                    jobs_per_entity = (counting.jobs - before) / n
                if name.startswith("publish"):
                    drain()
    finally:
        bus.close()
        wh.close()
        store.close()
    print(f"fan-out parts on the emulators, {n} entities, {args.workers} workers, {args.repeat} interleaved round(s); "
          f"2-core machine shared with other work")
    print(f"{'part':55} {'min s':>8} {'median s':>9} {'ms/entity':>10} {'x450 s':>8}")
    for name, _ in parts:
        vals = results[name]
        lo, med = min(vals), statistics.median(vals)
        print(f"{name:55} {lo:8.2f} {med:9.2f} {1000 * med / n:10.1f} {450 * med / n:8.1f}")
    print(f"warehouse calls per entity before (predictions merge script + row count): {jobs_per_entity:.1f}; now 1")
    ser, con = statistics.median(results[parts[3][0]]), statistics.median(results[parts[4][0]])
    print(f"bigquery serialised / concurrent: x{ser / con:.2f}; publish one-by-one / publish_many: "
          f"x{statistics.median(results[parts[0][0]]) / statistics.median(results[parts[1][0]]):.2f}")


def _locked(lock: threading.Lock, fn: Callable[[str], None], arg: str) -> None:
    with lock:
        fn(arg)


if __name__ == "__main__":
    main()
